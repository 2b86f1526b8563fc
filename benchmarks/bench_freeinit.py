"""FreeInit filters and re-initialisation: freqscope vs diffusers' FreeInitMixin, in one process.

    python benchmarks/bench_freeinit.py

diffusers builds its frequency mask with a Python triple loop over (t, h, w) voxels on every
re-initialisation; freqscope builds it from broadcast frequency grids once and caches it.
"""

from __future__ import annotations

import time

import torch
from diffusers.pipelines.free_init_utils import FreeInitMixin

from freqscope.filters import _lowpass, freq_mix, lowpass_filter


def timed(fn, n=1):
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    shape = (1, 4, 16, 64, 64)  # (b, c, t, h, w): AnimateDiff at 512×512, 16 frames
    mixin = FreeInitMixin()
    print(f"low-pass mask for a {shape} latent (butterworth, d_s = d_t = 0.25), {torch.get_num_threads()} threads")
    t_diff = timed(lambda: mixin._get_free_init_freq_filter(shape, "cpu", "butterworth", 4, 0.25, 0.25))

    def uncached():
        _lowpass.cache_clear()
        lowpass_filter(shape[-3:], method="butterworth")

    t_build = timed(uncached, n=5)
    t_cached = timed(lambda: lowpass_filter(shape[-3:], method="butterworth"), n=100)
    print(f"  diffusers (triple loop, every pass): {t_diff * 1e3:10.1f} ms")
    print(f"  freqscope, first build (vectorised): {t_build * 1e3:10.2f} ms   ({t_diff / t_build:,.0f}× faster)")
    print(f"  freqscope, cached:                   {t_cached * 1e6:10.1f} µs   ({t_diff / t_cached:,.0f}× faster)")

    g = torch.Generator().manual_seed(0)
    x, n = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    mask = lowpass_filter(shape[-3:], method="butterworth")
    full = mask.expand(shape)
    t_mix_diff = timed(lambda: mixin._apply_freq_filter(x, n, full), n=10)
    t_mix = timed(lambda: freq_mix(x, n, mask), n=10)
    print("frequency mixing of one latent (FFT, mix, inverse FFT)")
    print(f"  diffusers (fftshift both, mix, ifftshift): {t_mix_diff * 1e3:7.2f} ms")
    print(f"  freqscope (mask shifted once):            {t_mix * 1e3:7.2f} ms   ({t_mix_diff / t_mix:.2f}×)")
    print("re-initialisation overhead per FreeInit pass (mask + mix)")
    print(
        f"  diffusers: {(t_diff + t_mix_diff) * 1e3:9.1f} ms   freqscope: {(t_cached + t_mix) * 1e3:7.2f} ms   "
        f"({(t_diff + t_mix_diff) / (t_cached + t_mix):,.0f}×)"
    )


if __name__ == "__main__":
    main()
