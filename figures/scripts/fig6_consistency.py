"""Fig. 6 — temporal consistency per FreeInit pass (reference model on bikes.mp4, DDIM 50 steps):
frame-to-frame and first-frame cosine similarity, and VBench temporal flickering, reused vs fresh noise.
Headline: frame-to-frame cosine 0.892 (pass 0) → 0.969 (pass 3) → 0.977 (pass 4) with reused noise.
"""

from _common import CLIPS, headline, save
from freqscope import read_video
from freqscope.experiment import REFERENCE_SIZE, run_reference
from freqscope.plotting import OKABE_ITO, new_figure

path, start = CLIPS[0]
x, _ = read_video(path, frames=16, size=REFERENCE_SIZE, start=start)
runs = {rn: run_reference(x, num_iters=5, renoise=rn)[2][0] for rn in ("reuse", "fresh")}
metrics = [
    ("pixel_frame_cosine", "frame-to-frame cos"),
    ("pixel_first_frame_cosine", "first-frame cos"),
    ("temporal_flickering", "temporal flickering"),
]
fig, axes = new_figure(1, 3, width=7.0, height=2.2)
for ax, (key, label) in zip(axes, metrics):
    for (rn, r), c in zip(runs.items(), OKABE_ITO[1:]):
        ax.plot(
            range(len(r.consistency)),
            [m[key] for m in r.consistency],
            "o-",
            color=c,
            markersize=3,
            label=f"FreeInit, {rn} noise",
        )
    ax.set_xlabel("sampling pass")
    ax.set_title(label)
axes[0].legend(fontsize="x-small")
save(fig, "fig6_consistency")
c = runs["reuse"].consistency
headline(
    "fig6",
    f"frame cos {c[0]['pixel_frame_cosine']:.3f} (pass 0) -> {c[3]['pixel_frame_cosine']:.3f} (pass 3), "
    f"{c[4]['pixel_frame_cosine']:.3f} (pass 4), reused noise",
)
