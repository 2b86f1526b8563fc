"""Fig. 3 — SNR at t = 999 (SD schedule) over spatial × temporal frequency, with the 0 dB contour;
power averaged over 6 real clips (pixel space, 16 frames, 128×224).
Headline: only cells with f_t = 0 and f_s < 0.039 are above 0 dB (0.3 % of the grid).
"""

import torch
from matplotlib import patheffects

from _common import CLIPS, SIZE, headline, save
from freqscope import get_schedule, read_video, to_db
from freqscope.bands import spatiotemporal_power
from freqscope.plotting import new_figure

grids = [spatiotemporal_power(read_video(p, frames=16, size=SIZE, start=st)[0], n_spatial=128) for p, st in CLIPS]
f_t, edges, _ = grids[0]
power = torch.stack([g[2] for g in grids]).mean(0)  # (n_t, n_spatial)
snr_db = to_db(get_schedule("sd").snr[999] * power)

fig, ax = new_figure(width=3.5, height=2.6)
f_s = 0.5 * (edges[1:] + edges[:-1])
im = ax.pcolormesh(f_s.numpy(), f_t.numpy(), snr_db.numpy(), cmap="cividis", shading="nearest")
cs = ax.contour(f_s.numpy(), f_t.numpy(), snr_db.numpy(), levels=[0.0], colors="white", linewidths=2.0)
cs.set_path_effects([patheffects.withStroke(linewidth=3.5, foreground="black")])  # visible on any colour
ax.annotate(
    "SNR > 0 dB",
    xy=(0.02, 0.02),
    xytext=(0.09, 0.3),
    color="white",
    fontsize=8,
    fontweight="bold",
    arrowprops={"arrowstyle": "->", "color": "white", "linewidth": 1.2},
    path_effects=[patheffects.withStroke(linewidth=2.5, foreground="black")],
)
ax.set_xlim(0, 0.3)  # the signal survives only near the origin; higher f_s is uniformly far below 0 dB
ax.grid(False)
ax.set_xlabel("spatial frequency $\\sqrt{f_h^2+f_w^2}$ (Nyquist = 1)")
ax.set_ylabel("temporal frequency $|f_t|$ (Nyquist = 1)")
fig.colorbar(im, ax=ax, label="SNR at t = 999 (dB)")
ax.set_title("Where the clip's signal survives at t = 999\n(Stable Diffusion schedule; white line: 0 dB)")
save(fig, "fig3_snr_heatmap")
above = (snr_db > 0) & ~snr_db.isnan()
headline(
    "fig3",
    f"above 0 dB: {100 * above.sum() / (~snr_db.isnan()).sum():.1f} % of cells, "
    f"f_s < {f_s[above.any(0)].max():.3f}, |f_t| <= {f_t[above.any(1)].max():.3f}",
)
