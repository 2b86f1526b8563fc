"""FreqPrior as published (fudan-zvg/FreqPrior, AnimationFreqPriorPipeline.__call__ and freq_mix_noise_3d),
reproduced on the weight-free reference model with AnimateDiff's DDIM (25 steps, leading, mid_step 321).

The reference loop below is written straight from the official code, step by step (their torch/NumPy calls
replaced by draws from one torch.Generator in the order our sampler draws them): it shares nothing with
freqscope but the reference model and the filter mask."""

import math

import diffusers
import pytest
import torch

from freqscope.filters import lowpass_filter
from freqscope.freeinit import DenoiserSampler, FreeInitOptions, sample
from freqscope.priors import FreqPrior
from freqscope.reference import GaussianVideoModel

ANIMATEDIFF_DDIM = dict(
    beta_schedule="linear", beta_start=0.00085, beta_end=0.012, steps_offset=1, clip_sample=False
)


def _official_mix(x, noise, LPF, output_type):
    """freq_mix_noise_3d: fftshifted spectra, variance-preserving weights, real ± imaginary part."""
    dims = (-3, -2, -1)
    xf = torch.fft.fftshift(torch.fft.fftn(x, dim=dims), dim=dims)
    nf = torch.fft.fftshift(torch.fft.fftn(noise, dim=dims), dim=dims)
    mixed = xf * LPF + nf * (1 - LPF.square()).sqrt()
    out = torch.fft.ifftn(torch.fft.ifftshift(mixed, dim=dims), dim=dims)
    return out.real + out.imag if output_type == "+" else out.real - out.imag


def _official_freqprior(model, scheduler, shape, LPF, *, num_iters, steps, ratio, mid_step, g):
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps
    assert mid_step in timesteps
    latents = torch.randn(shape, generator=g) * scheduler.init_noise_sigma
    outputs = []
    for it in range(num_iters):
        if it == 0:
            initial_noise = latents.clone()
        else:
            alpha_bar1 = scheduler.alphas_cumprod[scheduler.config.num_train_timesteps - 1]
            alpha_bar2 = scheduler.alphas_cumprod[mid_step]
            s = alpha_bar1 / alpha_bar2
            z_T = s**0.5 * latents + (1 - s) ** 0.5 * initial_noise
            eta1, eta2 = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
            x1 = (ratio * z_T + (1 - ratio**2) ** 0.5 * eta1) / (1 + ratio**2) ** 0.5
            x2 = (ratio * z_T + (1 - ratio**2) ** 0.5 * eta2) / (1 + ratio**2) ** 0.5
            y1, y2 = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
            latents = (_official_mix(x1, y1, LPF, "+") + _official_mix(x2, y2, LPF, "-")) / 2**0.5
        mid_latent = None
        for t in timesteps:  # save_intermediate=True: every pass runs to the end
            if t == mid_step:
                mid_latent = latents.clone()
            out = model(scheduler.scale_model_input(latents, t), t, scheduler)
            latents = scheduler.step(out, t, latents).prev_sample
        outputs.append(latents)
        if it != num_iters - 1:
            latents = mid_latent
    return outputs


# Odd sizes too: on an even grid the mixed spectrum is Hermitian, the inverse FFT's imaginary part is 0 and
# FreqPrior's "real + imaginary" / "real − imaginary" parts could be swapped unnoticed.
@pytest.mark.parametrize(
    "steps,mid_step,shape", [(25, 321, (1, 4, 8, 16, 16)), (50, 321, (1, 4, 8, 16, 16)), (25, 321, (1, 4, 9, 15, 15))]
)
def test_freqprior_reproduces_the_official_algorithm(steps, mid_step, shape):
    S = torch.rand(*shape[1:], generator=torch.Generator().manual_seed(5)) * 3
    S[:, 0, 0, 0] = 40.0  # a strong DC, as real latents have
    model = GaussianVideoModel(S)
    LPF = lowpass_filter(shape[-3:], method="butterworth", d_s=0.25, d_t=0.25, order=4)
    ref = _official_freqprior(
        model,
        diffusers.DDIMScheduler(**ANIMATEDIFF_DDIM),
        shape,
        LPF,
        num_iters=3,
        steps=steps,
        ratio=0.8,
        mid_step=mid_step,
        g=torch.Generator().manual_seed(0),
    )
    res = sample(
        DenoiserSampler(model, diffusers.DDIMScheduler(**ANIMATEDIFF_DDIM)),
        shape,
        prior=FreqPrior(mid_step=mid_step),
        num_iters=3,
        num_inference_steps=steps,
        freeinit=FreeInitOptions(diffuse_timestep=999),  # the official code diffuses to t = N − 1
        generator=torch.Generator().manual_seed(0),
    )
    assert len(res.passes) == 3
    for ours, theirs in zip(res.passes, ref):
        assert torch.allclose(ours.latents, theirs, atol=1e-4, rtol=1e-4)
    assert res.info["mid_step"] == mid_step and res.info["ratio"] == 0.8
    assert res.passes[1].alpha_bar == pytest.approx(0.0015789629, rel=1e-6)  # AnimateDiff's ᾱ₉₉₉


def test_freqprior_noise_is_unit_white_for_white_input():
    """The two-part mix keeps unit variance when z_t is itself unit white noise: high frequencies come from
    y₁, y₂; low ones from (x₁ + x₂)/√2 = (2c·z + n·(η₁ + η₂))/√2, c = r/√(1+r²), n = √(1−r²)/√(1+r²),
    of variance 2c² + n² = 1."""
    from freqscope.freeinit import freqprior_noise

    shape = (16, 4, 8, 16, 16)
    z = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    L = lowpass_filter(shape[-3:])
    out = freqprior_noise(z, L, ratio=0.8, generator=torch.Generator().manual_seed(2))
    spec = torch.fft.fftshift(torch.fft.fftn(out, dim=(-3, -2, -1), norm="ortho"), dim=(-3, -2, -1))
    p = (spec.abs() ** 2).mean(dim=(0, 1))
    assert p[L < 1e-3].mean().item() == pytest.approx(1.0, abs=0.03)
    assert p[L > 0.5].mean().item() == pytest.approx(1.0, abs=0.05)
    assert math.isfinite(out.std().item())
