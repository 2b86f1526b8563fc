"""Fig. 1 — band decomposition across timesteps (as FreeInit's Fig. 2), pixel space, bikes.mp4.

Rows t = 0, 250, 500, 750, 999 (SD schedule); columns: the noisy frame z_t, its low band (d < 0.25)
and its high band (d ≥ 0.25), each reconstructed back to pixels (frame 8 of 16).
Headline: SNR at t = 999: DC +12.2 dB, (0, 0.25) −9.8 dB, [0.25, max] −43.2 dB.
"""

import torch

from _common import CLIPS, headline, save
from freqscope import band_snr, bandpass, get_schedule, make_bands, read_video
from freqscope.plotting import new_figure

path, start = CLIPS[0]
x, _ = read_video(path, frames=16, size=(72, 128), start=start)  # (1, 3, 16, 72, 128) in [-1, 1]
sched = get_schedule("sd")
bands = make_bands(tuple(x.shape[-3:]), (0.25,))  # DC, (0, 0.25), [0.25, max]
eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
ts = [0, 250, 500, 750, 999]

fig, axes = new_figure(len(ts), 3, width=3.5, height=3.9)
for r, t in enumerate(ts):
    z_t = sched.a[t].float() * x + sched.s[t].float() * eps
    parts = bandpass(z_t, bands)  # (3 bands, 1, 3, 16, H, W)
    panels = [z_t, parts[0] + parts[1], parts[2]]
    for c, p in enumerate(panels):
        img = p[0, :, 8].permute(1, 2, 0)
        img = (img - img.min()) / (img.max() - img.min())  # each panel scaled to its own range
        axes[r, c].imshow(img.numpy())
        axes[r, c].set_xticks([])
        axes[r, c].set_yticks([])
    axes[r, 0].set_ylabel(f"t = {t}")
for c, title in enumerate(["noisy $z_t$", "low: $d<0.25$", "high: $d\\geq0.25$"]):
    axes[0, c].set_title(title)
save(fig, "fig1_band_decomposition")

snr = band_snr(x, bands, sched).snr_db[:, 999]
headline("fig1", f"t=999 SNR: DC {snr[0]:.1f} dB, (0, 0.25) {snr[1]:.1f} dB, [0.25, max] {snr[2]:.1f} dB")
