"""The tiny pipelines of every family: saved with save_pretrained, loaded offline, called as a user would.

The expected latent shapes follow from each family's compression rule at the registry's call size (the table
at the top of tiny_pipelines.py); `latents=` is checked to be the pipeline's own initial noise."""

from __future__ import annotations

import warnings

import pytest
import torch

from tiny_pipelines import FAMILIES, build, family_call

# (b, c, t, h, w) unless said otherwise; t = (frames - 1) // temporal ratio + 1 for causal video VAEs
EXPECTED = {
    "animatediff": (1, 4, 4, 8, 8),  # 4 frames, 16 px / 2
    "animatediff_sdxl": (1, 4, 4, 8, 8),
    "animatediff_pag": (1, 4, 4, 8, 8),
    "text_to_video_sd": (1, 4, 4, 8, 8),
    "cogvideox_5b": (1, 3, 4, 4, 4),  # (b, t, c, h, w): 9 frames -> 3, 32 px / 8
    "cogvideox_2b": (1, 3, 4, 4, 4),
    "cogvideox_1.5": (1, 4, 4, 4, 4),  # 3 latent frames padded to a multiple of patch_size_t = 2
    "wan": (1, 4, 3, 4, 4),
    "wan_unipc": (1, 4, 3, 4, 4),
    "hunyuan_video": (1, 4, 3, 4, 4),
    "ltx": (1, 3 * 8 * 8, 8),  # packed tokens (b, t·h·w, c): 9 frames -> 3, 32 px / 4
    "ltx_dynamic": (1, 3 * 8 * 8, 8),
    "mochi": (1, 12, 3, 4, 4),  # 13 frames -> (13 - 1) // 6 + 1 = 3
    "latte": (1, 4, 4, 8, 8),  # video_length 4, 16 px / 2
    "svd": (1, 4, 4, 8, 8),  # (b, t, c, h, w)
}


PIPELINE = {
    "animatediff": "AnimateDiffPipeline",
    "animatediff_sdxl": "AnimateDiffSDXLPipeline",
    "animatediff_pag": "AnimateDiffPAGPipeline",
    "text_to_video_sd": "TextToVideoSDPipeline",
    "cogvideox_5b": "CogVideoXPipeline",
    "cogvideox_2b": "CogVideoXPipeline",
    "cogvideox_1.5": "CogVideoXPipeline",
    "wan": "WanPipeline",
    "wan_unipc": "WanPipeline",
    "hunyuan_video": "HunyuanVideoPipeline",
    "ltx": "LTXPipeline",
    "ltx_dynamic": "LTXPipeline",
    "mochi": "MochiPipeline",
    "latte": "LattePipeline",
    "svd": "StableVideoDiffusionPipeline",
}


def test_every_family_has_an_expected_shape():
    assert set(EXPECTED) == set(FAMILIES) == set(PIPELINE)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="session")
def saved_families(tmp_path_factory):
    """Each family built and saved once per session, on demand."""
    root = tmp_path_factory.mktemp("families")
    saved = {}

    def get(name):
        if name not in saved:
            saved[name] = build(name, root / name)
        return root / name

    return get


def _latents(out) -> torch.Tensor:
    return out.frames if hasattr(out, "frames") else out[0]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_loads_offline_and_samples(name, saved_families):
    import diffusers

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = diffusers.DiffusionPipeline.from_pretrained(saved_families(name))
        pipe.set_progress_bar_config(disable=True)
        call = dict(family_call(name), num_inference_steps=2, output_type="latent")
        out = _latents(pipe(**call, generator=torch.Generator().manual_seed(0)))
        assert type(pipe).__name__ == PIPELINE[name]
        assert tuple(out.shape) == EXPECTED[name]
        assert torch.isfinite(out).all()
        # latents= takes the pipeline's own initial noise (in its own layout; packed for LTX; SVD draws the
        # image's noise augmentation first), unscaled: the pipeline multiplies by init_noise_sigma itself
        g = torch.Generator().manual_seed(0)
        if name == "svd":
            torch.randn(1, 3, call["height"], call["width"], generator=g)
        if name.startswith("ltx"):
            b, _, c = out.shape
            noise = pipe._pack_latents(torch.randn(b, c, 3, 8, 8, generator=g))
        else:
            noise = torch.randn(out.shape, generator=g)
        again = _latents(pipe(**call, latents=noise, generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(again, out, rtol=0, atol=0)
