"""Fig. 2 — per-band SNR vs timestep (as FreeInit's Fig. 3): mean ± spread over 6 real clips
(pixel space, 16 frames, 128×224), SD and AnimateDiff schedules side by side; 0 dB line and crossings.
Headline (SD): the (0, 0.125) band crosses 0 dB at t = 993 and ends at −0.3 dB (spread −2.3/+1.5 dB: the SNR
of the mean power ∓ one s.d. over clips); DC stays at +19.4 dB (clips averaged in linear power).
"""

import torch

from _common import CLIPS, SIZE, headline, save
from freqscope import PixelEncoder, analyze_video, get_schedule, summarize
from freqscope.plotting import band_colors, new_figure

fig, axes = new_figure(1, 2, width=7.0, height=2.6, sharey=True)
NAMES = {"sd": "Stable Diffusion schedule", "animatediff": "AnimateDiff schedule"}
for ax, preset in zip(axes, ["sd", "animatediff"]):
    sched = get_schedule(preset)
    s = summarize([analyze_video(p, PixelEncoder(), sched, frames=16, size=SIZE, start=st) for p, st in CLIPS], sched)
    t = sched.timesteps.numpy()
    for i, (name, c) in enumerate(zip(s.band_names, band_colors(len(s.band_names)))):
        y = s.snr_db[i].numpy()
        ax.plot(t, y, color=c, label=name)
        # The spread: the SNR of the mean band power ± one s.d. of the power over clips.
        ax.fill_between(t, s.snr_db_lo[i].numpy(), s.snr_db_hi[i].numpy(), color=c, alpha=0.2, linewidth=0)
        if s.crossing[i] is not None:
            ax.plot([s.crossing[i]], [0], "o", color=c, markersize=3)
    ax.axhline(0, color="0.3", linestyle="--", linewidth=0.8)
    ax.set_title(f"{NAMES[preset]}\n(whole-signal SNR at t = 999: {10 * torch.log10(sched.snr[-1]).item():.1f} dB)")
    ax.set_xlabel("training timestep t")
    if preset == "sd":
        headline(
            "fig2",
            f"SD: band {s.band_names[1]} crosses 0 dB at t = {s.crossing[1]}, "
            f"SNR at t=999 {s.snr_db[1, 999]:.1f} dB ({s.spread_db[0][1]:+.1f}/{s.spread_db[1][1]:+.1f}); "
            f"DC {s.snr_db[0, 999]:.1f} dB",
        )
axes[0].set_ylabel("SNR of the mean band power (dB)\nshaded: power ± s.d. over 6 clips")
axes[1].legend(title="frequency band\n(Nyquist = 1)", loc="upper left", bbox_to_anchor=(1.02, 1.0))
save(fig, "fig2_snr_vs_timestep")
