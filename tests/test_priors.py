"""Initial-noise priors: variances and frame correlations as their papers define them."""

import math

import pytest
import torch

from freqscope.priors import gaussian_noise, offset_noise, pyoco_mixed_noise, pyoco_progressive_noise

SHAPE = (4, 4, 16, 32, 32)


def _corr(x, lag):
    a, b = x[:, :, lag:], x[:, :, :-lag]
    return float((a * b).mean() / (a.std() * b.std()))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_pyoco_mixed(alpha):
    x = pyoco_mixed_noise(SHAPE, alpha=alpha, generator=torch.Generator().manual_seed(0))
    assert x.var().item() == pytest.approx(1.0, abs=0.02)
    rho = alpha**2 / (1 + alpha**2)
    assert _corr(x, 1) == pytest.approx(rho, abs=0.02) and _corr(x, 5) == pytest.approx(rho, abs=0.02)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_pyoco_progressive(alpha):
    x = pyoco_progressive_noise(SHAPE, alpha=alpha, generator=torch.Generator().manual_seed(0))
    assert x.var().item() == pytest.approx(1.0, abs=0.03)
    r = alpha / math.sqrt(1 + alpha**2)
    assert _corr(x, 1) == pytest.approx(r, abs=0.02) and _corr(x, 3) == pytest.approx(r**3, abs=0.03)


def test_offset_noise_raises_dc():
    s = 0.5
    x = offset_noise((64, 4, 4, 8, 8), strength=s, generator=torch.Generator().manual_seed(0))
    assert x.var().item() == pytest.approx(1 + s**2, rel=0.1)
    means = x.mean(dim=(2, 3, 4))  # per (b, c): ≈ the offset
    assert means.var().item() == pytest.approx(s**2 + 1 / 256, rel=0.2)


def test_seeded_and_shape_checked():
    for f in (gaussian_noise, offset_noise, pyoco_mixed_noise, pyoco_progressive_noise):
        a = f(SHAPE, generator=torch.Generator().manual_seed(3))
        b = f(SHAPE, generator=torch.Generator().manual_seed(3))
        assert torch.equal(a, b) and a.shape == SHAPE
        with pytest.raises(ValueError, match=r"\(b, c, t, h, w\)"):
            f((4, 16, 32))


def test_noise_is_drawn_on_the_generators_device_then_moved():
    """As diffusers' randn_tensor: a CPU generator seeds any target device with the same numbers (here the
    'meta' device stands in for CUDA, which this machine lacks; the values are checked on the CPU draw)."""
    from freqscope.priors import randn

    ref = torch.randn((2, 3, 4, 5, 6), generator=torch.Generator().manual_seed(7))
    assert torch.equal(gaussian_noise((2, 3, 4, 5, 6), generator=torch.Generator().manual_seed(7)), ref)
    moved = randn((2, 3, 4, 5, 6), generator=torch.Generator().manual_seed(7), device="meta")
    assert moved.device.type == "meta" and moved.shape == ref.shape
    for f in (offset_noise, pyoco_mixed_noise, pyoco_progressive_noise):
        assert f(SHAPE, generator=torch.Generator().manual_seed(1), device="meta").device.type == "meta"
