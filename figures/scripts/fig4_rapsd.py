"""Fig. 4 — radially averaged power spectrum of a clean real clip and of its noised versions at several
timesteps (SD schedule, log-log): the noise floor rises over the spectrum from high to low frequencies.
Headline: at t = 999 only frequencies below |f| = 0.023 stay above the noise floor (bikes.mp4).
"""

import numpy as np
import torch

from _common import CLIPS, SIZE, headline, save
from freqscope import get_schedule, rapsd, read_video
from freqscope.plotting import band_colors, new_figure

path, start = CLIPS[0]
x, _ = read_video(path, frames=16, size=SIZE, start=start)
sched = get_schedule("sd")
eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
fig, ax = new_figure(width=3.5, height=2.6)
r, p0 = rapsd(x)
ax.loglog(r.numpy(), p0.numpy(), color="k", label="clean $z_0$")
for t, c in zip([250, 500, 750, 999], band_colors(5)[1:]):
    _, p = rapsd(sched.a[t].float() * x + sched.s[t].float() * eps)
    ax.loglog(r.numpy(), p.numpy(), color=c, label=f"$z_t$, t = {t}")
    ax.axhline((sched.s[t] ** 2).item(), color=c, linestyle=":", linewidth=0.7)
ax.set_xlabel("spatio-temporal frequency |f| (Nyquist = 1)")
ax.set_ylabel("power $|F z|^2$ per bin")
ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="SD schedule")
ax.set_title(
    "Radially averaged power spectrum of a clip and its noisy versions\n(dotted: the noise floor $1-\\bar\\alpha_t$)"
)
save(fig, "fig4_rapsd")
signal = (sched.alpha_bar[999] * p0).numpy()
above = r.numpy()[signal > (1 - sched.alpha_bar[999]).item()]
headline("fig4", f"t=999: signal above the noise floor for |f| < {np.max(above) if len(above) else 0:.3f}")
