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


def _tiny_vit(folder, *, patch_size: int):
    """A randomly initialised 1-layer ViT (a DINO stand-in: the real weights cannot be downloaded), saved."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=32,
        patch_size=patch_size,
    )
    transformers.ViTModel(cfg).save_pretrained(folder)
    return transformers


def test_embedder_from_a_saved_vision_model(tmp_path):
    transformers = _tiny_vit(tmp_path / "vit", patch_size=8)
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


# --- VBench and FreeInit-paper protocols, each against a hand computation --------------------------------

# Three unit-ish embeddings with cos(e0,e1) = 0.6, cos(e1,e2) = 0.28, cos(e0,e2) = −0.6 (scaled: the
# metrics normalise first).
_E = torch.tensor([[[1.0, 0.0], [0.6, 0.8], [-0.6, 0.8]]]) * torch.tensor([[[1.0], [3.0], [0.5]]])


def test_vbench_consistency_clamps_each_cosine_at_zero():
    from freqscope.consistency import vbench_consistency

    # frame 1: (0.6 + 0.6)/2 = 0.6; frame 2: (0.28 + max(0, −0.6))/2 = 0.14; mean 0.37 (0.22 unclamped)
    assert vbench_consistency(_E) == pytest.approx(0.37, abs=1e-6)


def test_freeinit_first_frame_similarity_is_the_plain_mean_cosine_to_frame_0():
    from freqscope.consistency import first_frame_similarity

    assert first_frame_similarity(_E) == pytest.approx((0.6 - 0.6) / 2, abs=1e-6)


def test_vbench_normalisation_uses_vbench_constants():
    from freqscope.consistency import vbench_normalized

    # scripts/constant.py of Vchitect/VBench: subject consistency Min 0.1462, Max 1.0
    assert vbench_normalized("subject_consistency", 0.9) == pytest.approx((0.9 - 0.1462) / (1 - 0.1462))
    assert vbench_normalized("temporal_flickering", 0.6293) == pytest.approx(0)
    with pytest.raises(ValueError, match="no VBench normalisation"):
        vbench_normalized("sharpness", 0.5)


def _levels(levels, h=32, w=48):
    """Flat frames at the given 8-bit grey levels, as (1, 3, t, h, w) in [-1, 1]."""
    x = torch.tensor(levels, dtype=torch.float32).view(1, 1, -1, 1, 1).expand(1, 3, len(levels), h, w)
    return x / 127.5 - 1


def test_temporal_flickering_is_scored_on_the_encoded_video():
    # alternating grey 64 / 192: mean |Δ| = 128 → (255 − 128)/255, up to the codec's ±1-2 levels
    x = _levels([64, 192] * 4)
    assert temporal_flickering(x) == pytest.approx(127 / 255, abs=3 / 255)
    assert temporal_flickering(x, encode=False) == pytest.approx(127 / 255, abs=1e-6)
    assert temporal_flickering(_levels([100] * 8)) == pytest.approx(1, abs=1 / 255)


def _moving_texture(d: int, t: int = 8, h: int = 96, w: int = 160) -> torch.Tensor:
    """A smooth random texture translated by d pixels per frame (leftwards), (1, 3, t, h, w) in [-1, 1]."""
    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.avg_pool2d(torch.rand(1, 3, h, w + d * t, generator=g), 9, 1, 4)
    base = (base - base.mean()) / base.std() * 0.5
    return torch.stack([base[..., d * k : d * k + w] for k in range(t)], dim=2).clamp(-1, 1)


@pytest.mark.parametrize("d", [0, 2, 5])
def test_flow_recovers_a_known_translation(d):
    from freqscope.motion import flow_magnitude, optical_flow

    flow = optical_flow(_moving_texture(d))
    inner = flow[..., 16:-16, 16:-16]  # away from the borders, where content enters and leaves
    assert flow_magnitude(inner).mean().item() == pytest.approx(d, abs=0.05 * d + 0.02)
    if d:
        assert inner[:, :, 0].mean().item() < 0  # moving left: negative x displacement


def test_vbench_motion_rules_by_hand():
    from freqscope.motion import dynamic_degree, top_fraction_mean

    m = torch.arange(100.0).view(1, 1, 10, 10)
    assert top_fraction_mean(m, 0.05).item() == pytest.approx((95 + 96 + 97 + 98 + 99) / 5)
    # 256×256, 16 frames: threshold 6·256/256 = 6 px, at least round(4·16/16) = 4 moving pairs
    mag = torch.zeros(2, 15, 256, 256)
    mag[0, :4] = 6.5  # four pairs above 6 px everywhere: moving
    mag[1, :3] = 6.5  # three: not moving
    assert dynamic_degree(mag).tolist() == [True, False]


def test_static_filter_and_motion_metrics():
    from freqscope.motion import is_static, motion_metrics

    still, moving = _moving_texture(0), _moving_texture(6)
    assert is_static(still).item() and not is_static(moving).item()
    m0, m6 = motion_metrics(still), motion_metrics(moving)
    assert m0["flow_px"] < 0.05 < 5 < m6["flow_px"]
    # 96 px short side: threshold 6·96/256 = 2.25 px, so 6 px/frame moves
    assert (m0["dynamic_degree"], m6["dynamic_degree"]) == (0.0, 1.0)
    assert m6["flow_rel"] == pytest.approx(m6["flow_px"] / 96)


def test_vbench_transform_sizes_and_statistics():
    from freqscope.consistency import vbench_transform

    x = torch.zeros(2, 3, 90, 160)  # grey 127.5 → 128 after quantisation
    d = vbench_transform(x, "dino")
    assert d.shape == (2, 3, 224, 398)  # short side 224, aspect kept (int(224·160/90) = 398)
    assert d[0, 0, 0, 0].item() == pytest.approx((128 / 255 - 0.485) / 0.229, abs=1e-5)
    c = vbench_transform(x, "clip")
    assert c.shape == (2, 3, 224, 224)  # resized, then centre-cropped


def test_metrics_side_by_side_with_tiny_dino_and_clip(tmp_path):
    from freqscope.consistency import first_frame_similarity, vbench_consistency

    transformers = _tiny_vit(tmp_path / "dino", patch_size=16)
    ccfg = transformers.CLIPVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=224,
        patch_size=32, projection_dim=8,
    )
    transformers.CLIPVisionModelWithProjection(ccfg).save_pretrained(tmp_path / "clip")
    dino, clip = hf_image_embedder(str(tmp_path / "dino")), hf_image_embedder(str(tmp_path / "clip"))
    x = _moving_texture(3, t=4, h=32, w=48)
    e = dino(x[:, :, 0].expand(3, 3, 32, 48).contiguous())
    assert e.shape == (3, 16)
    assert clip(x[:, :, 0]).shape == (1, 8)
    m = consistency_metrics(x, x, embed=dino, embed_background=clip)
    assert {"subject_consistency", "background_consistency", "first_frame_similarity", "flow_px", "static"} <= set(m)
    assert 0 <= m["subject_consistency"] <= 1 and 0 <= m["background_consistency"] <= 1
    # the values themselves, from the embeddings of the frames: (b, t, d)
    frames = x.permute(0, 2, 1, 3, 4).reshape(4, 3, 32, 48)
    e_dino, e_clip = dino(frames)[None], clip(frames)[None]
    assert m["subject_consistency"] == pytest.approx(vbench_consistency(e_dino), abs=1e-6)
    assert m["background_consistency"] == pytest.approx(vbench_consistency(e_clip), abs=1e-6)
    assert m["first_frame_similarity"] == pytest.approx(first_frame_similarity(e_dino), abs=1e-6)
    assert m["flow_px"] == pytest.approx(3, rel=0.2)  # 3 px/frame (borders included)
    static = consistency_metrics(x[:, :, :1].expand_as(x), x[:, :, :1].expand_as(x), embed=dino)
    assert static["subject_consistency"] == pytest.approx(1, abs=1e-5)
    assert static["first_frame_similarity"] == pytest.approx(1, abs=1e-5)
