"""What reading a pipeline's own grid costs: the probe call (stopped once set_timesteps returns) vs a pass.

    PYTHONPATH=.:tests python benchmarks/bench_grid_probe.py

Passes that start midway need the grid the pipeline sets for itself (its own sigmas, shift, ``mu``);
PipelineSampler reads it once per step count by starting a call that stops at ``set_timesteps``: the
prompt encoding and input checks run, no denoising step does. Tiny pipelines from tests/tiny_pipelines.py,
so the ratio here is an upper bound for real models, whose denoiser dominates a pass.
"""

from __future__ import annotations

import time

import torch

from freqscope.pipeline_adapter import adapter_for
from freqscope.samplers import PipelineSampler
from tiny_pipelines import build, family_call


def best(fn, n=5):
    out = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def main() -> None:
    for name in ("wan", "hunyuan_video", "animatediff"):
        pipe = build(name)
        call = family_call(name)
        shape = adapter_for(pipe).latent_shape(
            pipe, num_frames=call["num_frames"], height=call["height"], width=call["width"]
        )
        s = PipelineSampler(pipe, **call)
        init = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        steps = 10

        def probe():
            s._states.clear()
            s.grid(steps, shape)

        t_probe = best(probe)
        t_pass = best(lambda: s(init, num_inference_steps=steps), n=3)
        ratio = t_probe / t_pass
        print(f"{name:>14}: probe {t_probe * 1e3:7.1f} ms, 10-step pass {t_pass * 1e3:8.1f} ms, ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
