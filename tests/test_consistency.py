"""Temporal-consistency metrics: static, flickering and drifting videos; a real (tiny) image embedder."""

import pytest
import torch

from freqscope.consistency import (
    consistency_metrics,
    embedding_consistency,
    first_frame_cosine,
    frame_cosine,
    hf_image_embedder,
    temporal_flickering,
)


def test_static_video_is_perfectly_consistent():
    x = torch.rand(1, 3, 1, 16, 16).expand(1, 3, 8, 16, 16) * 2 - 1
    assert frame_cosine(x) == pytest.approx(1) and first_frame_cosine(x) == pytest.approx(1)
    assert temporal_flickering(x) == pytest.approx(1)


def test_flicker_lowers_the_scores():
    a = torch.full((1, 3, 8, 16, 16), -0.5)
    a[:, :, 1::2] = 0.5  # alternating brightness
    assert temporal_flickering(a) == pytest.approx((255 - 127.5) / 255, abs=0.01)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 3, 8, 16, 16, generator=g)
    assert abs(frame_cosine(noise)) < 0.1


def test_drift_separates_first_frame_from_frame_to_frame():
    g = torch.Generator().manual_seed(1)
    steps = torch.randn(1, 3, 16, 16, 16, generator=g) * 0.3
    x = torch.randn(1, 3, 1, 16, 16, generator=g) + steps.cumsum(dim=2)  # a random walk over frames
    assert frame_cosine(x) > first_frame_cosine(x)


def test_embedder_from_a_saved_vision_model(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=32, patch_size=8
    )
    transformers.ViTModel(cfg).save_pretrained(tmp_path / "vit")
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "vit")
    embed = hf_image_embedder(str(tmp_path / "vit"))
    static = (torch.rand(1, 3, 1, 24, 40) * 2 - 1).expand(1, 3, 4, 24, 40)
    assert embedding_consistency(static, embed) == pytest.approx(1, abs=1e-5)
    m = consistency_metrics(static, static, embed=embed)
    assert set(m) >= {"latent_frame_cosine", "pixel_frame_cosine", "temporal_flickering", "embedding_consistency"}
    with pytest.raises(ValueError, match="cannot load the image embedder"):
        hf_image_embedder(str(tmp_path / "missing"))


def test_needs_two_frames():
    with pytest.raises(ValueError, match="t >= 2"):
        frame_cosine(torch.randn(1, 3, 1, 8, 8))
