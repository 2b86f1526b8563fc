"""Fig. 7 — whole-signal SNR of common schedules over training time, terminal values in the legend.
Headline: terminal SNR SD −23.3 dB, AnimateDiff −28.0 dB, DDPM linear −43.9 dB, cosine −86.1 dB;
zero-terminal-SNR and flow matching reach −∞ (pure noise) at the last step.
"""

import math

from _common import headline, save
from freqscope import get_schedule, to_db
from freqscope.plotting import OKABE_ITO, new_figure

schedules = [
    ("SD (scaled linear)", get_schedule("sd")),
    ("AnimateDiff (linear)", get_schedule("animatediff")),
    ("DDPM linear", get_schedule("linear")),
    ("cosine", get_schedule("cosine")),
    ("SD, zero terminal SNR", get_schedule("sd", zero_terminal_snr=True)),
    ("flow matching, shift 1", get_schedule("flow", shift=1.0)),
    ("flow matching, shift 3", get_schedule("flow", shift=3.0)),
]
fig, ax = new_figure(width=3.5, height=2.6)
terminal = {}
for (name, s), c in zip(schedules, OKABE_ITO):
    db = to_db(s.snr)
    terminal[name] = db[-1].item()
    u = (s.timesteps.double() / (s.num_train_timesteps - 1)).numpy()
    ax.plot(
        u, db.numpy(), color=c, label=f"{name}: {'−∞' if math.isinf(terminal[name]) else f'{terminal[name]:.1f}'} dB"
    )
ax.axhline(0, color="0.3", linestyle="--", linewidth=0.8)
ax.set_ylim(-60, 40)
ax.set_xlabel("training time t / (N − 1)")
ax.set_ylabel("SNR $\\bar\\alpha_t/(1-\\bar\\alpha_t)$ (dB)")
ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="schedule: SNR at the last timestep")
ax.set_title("Whole-signal SNR of common noise schedules over training time")
save(fig, "fig7_terminal_snr")
headline("fig7", ", ".join(f"{k} {v:.1f} dB" for k, v in terminal.items()))
