"""VAE round trips of a real clip on tiny randomly initialised diffusers autoencoders (saved, loaded by path).

``vaes`` (conftest) gives the image VAE ``kl`` (AutoencoderKL, 2× space, ``sample_size`` 32: tiles of 32 px),
``cogvideox`` and ``wan``; ``more_vaes`` adds HunyuanVideo and LTX-Video (0.9.1+ style: a timestep-conditioned
decoder), configs as in tests/tiny_pipelines.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from freqscope.roundtrip import RoundTrip, load_roundtrip
from freqscope.video import read_video
from tiny_pipelines import save_models, tiny_hunyuan_vae

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="session")
def clip(bikes) -> torch.Tensor:
    x, _ = read_video(bikes, frames=17, size=64)
    return x  # (1, 3, 17, 64, 144), real frames


@pytest.fixture(scope="session")
def more_vaes(tmp_path_factory) -> dict[str, Path]:
    import diffusers

    root = tmp_path_factory.mktemp("roundtrip_vaes")
    torch.manual_seed(0)
    models = {
        "hunyuan": tiny_hunyuan_vae(),
        "ltx": diffusers.AutoencoderKLLTXVideo(
            latent_channels=8,
            block_out_channels=(8,) * 4,
            decoder_block_out_channels=(8,) * 4,
            layers_per_block=(1,) * 5,
            decoder_layers_per_block=(1,) * 5,
            spatio_temporal_scaling=(True, True, False, False),
            decoder_spatio_temporal_scaling=(True, True, False, False),
            decoder_inject_noise=(False,) * 5,
            upsample_residual=(False,) * 4,
            upsample_factor=(1,) * 4,
            timestep_conditioning=True,
            patch_size=1,
            patch_size_t=1,
        ),
    }
    return save_models(root, models)


@pytest.fixture(scope="session")
def paths(vaes, more_vaes) -> dict[str, Path]:
    return {**vaes, **more_vaes}


@pytest.mark.parametrize(
    "name, t, size, used",
    [
        ("wan", 11, (64, 144), (9, 64, 144)),  # 1 + 4k frames
        ("wan", 13, (60, 140), (13, 56, 136)),  # sides cut to multiples of 8
        ("cogvideox", 13, (64, 64), (9, 64, 64)),  # 1 + 8k: 13 frames would be 4 latents, decoded to 16
        ("hunyuan", 17, (32, 32), (17, 32, 32)),  # 5 latent frames: decoded in temporal tiles
        ("ltx", 11, (62, 64), (9, 60, 64)),  # LTX's own ratios (4× time, 4× space), timestep-conditioned decoder
        ("kl", 11, (32, 63), (11, 32, 62)),  # image VAE: every frame
    ],
)
def test_reference_and_reconstruction_are_aligned(paths, clip, name, t, size, used):
    x = clip[:, :, :t, : size[0], : size[1]]
    rt = load_roundtrip(paths[name])
    ref, rec = rt(x)
    T, H, W = used
    assert ref.shape == rec.shape == (1, 3, T, H, W)
    assert torch.equal(ref, x[:, :, :T, :H, :W])  # the reference is the frames' prefix, untouched
    assert rec.dtype == torch.float32 and rec.device.type == "cpu"
    assert rec.abs().max() <= 1 and torch.isfinite(rec).all()
    assert rt.frames_used(t) == T and rt.info["frames_used"] == [T, H, W]


def test_round_trip_is_deterministic(paths, clip):
    for name in ("wan", "kl"):
        rt = load_roundtrip(paths[name])
        x = clip[:, :, :9, :32, :64]
        a, b = rt(x), rt(x)
        assert torch.equal(a[1], b[1]), name


def test_image_vae_round_trips_each_frame_alone(paths, clip):
    import diffusers

    x = clip[:, :, :6, :32, :64]
    rt = load_roundtrip(paths["kl"], batch_size=4)
    _, rec = rt(x)
    model = diffusers.AutoencoderKL.from_pretrained(paths["kl"]).eval()
    with torch.no_grad():
        frame = x[0, :, 3][None]  # (1, 3, H, W)
        alone = model.decode(model.encode(frame).latent_dist.mean).sample.clamp(-1, 1)
    assert torch.allclose(rec[:, :, 3], alone, atol=1e-5)
    # Frame independence: changing frame 3 changes frame 3 only.
    y = x.clone()
    y[:, :, 3] = y[:, :, 3].flip(-1)
    _, rec_y = rt(y)
    changed = (rec_y - rec).abs().amax(dim=(0, 1, 3, 4)) > 0  # (t,)
    assert changed.tolist() == [False, False, False, True, False, False]


def test_tiling_uses_diffusers_tiles_and_reports_the_seams(paths, clip):
    x = clip[:, :, :2]  # 64 × 144: larger than the 32-px tiles
    plain = load_roundtrip(paths["kl"])
    tiled = load_roundtrip(paths["kl"], tiling=True)
    ref, rec = tiled(x)
    assert ref.shape == rec.shape and not torch.allclose(rec, plain(x)[1], atol=1e-3)
    # AutoencoderKL keeps 32 − int(32 · 0.25) = 24 px of each tile: the seams are 24 px apart.
    assert tiled.structure["height"] == tiled.structure["width"] == {"spatial_compression_ratio": 2, "tile_stride": 24}
    assert tiled.info["tiling"] and tiled.info["tiles"]["width"] == {"tile": 32, "stride": 24}
    assert "tile_stride" not in plain.structure["width"] and not plain.info["tiling"]
    # Wan's default tiles: 256 px every 192 px (diffusers' AutoencoderKLWan.enable_tiling).
    assert load_roundtrip(paths["wan"], tiling=True).structure["width"]["tile_stride"] == 192


def test_structure_names_each_vae_s_periods(paths):
    s = {name: load_roundtrip(paths[name]).structure for name in ("kl", "wan", "cogvideox", "hunyuan", "ltx")}
    assert s["kl"]["time"] == {"temporal_compression_ratio": 1, "causal_first_frame": False, "independent_frames": True}
    for name in ("wan", "cogvideox", "hunyuan", "ltx"):
        assert s[name]["time"]["temporal_compression_ratio"] == 4 and s[name]["time"]["causal_first_frame"], name
        assert not s[name]["time"]["independent_frames"]
    assert s["wan"]["time"]["decode_chunk"] == 4  # one latent frame per decoder call
    assert s["cogvideox"]["time"]["decode_chunk"] == 8  # num_latent_frames_batch_size = 2 latent frames
    assert s["hunyuan"]["time"]["tile_stride"] == 12  # framewise decoding by default: 16-frame tiles every 12
    assert "decode_chunk" not in s["ltx"]["time"] and s["ltx"]["height"] == {"spatial_compression_ratio": 4}
    assert s["wan"]["width"] == {"spatial_compression_ratio": 8}


def test_bad_clips_are_one_line_errors(paths, clip):
    wan, cog = load_roundtrip(paths["wan"]), load_roundtrip(paths["cogvideox"])
    cases = [
        (wan, clip[:, :, :3], r"3 frames are too few for AutoencoderKLWan, which needs at least 5"),
        (cog, clip[:, :, :7], r"7 frames are too few for AutoencoderKLCogVideoX, which needs at least 9 \(1 \+ k·8\)"),
        (wan, clip[:, :, :5, :4], r"4×144 is smaller than AutoencoderKLWan's spatial factor 8"),
        (wan, clip[0], r"`frames` must be \(b, 3, t, H, W\), got shape \(3, 17, 64, 144\)"),
    ]
    for rt, x, message in cases:
        with pytest.raises(ValueError, match=message) as e:
            rt(x)
        assert "\n" not in str(e.value)


def test_sampled_posteriors_are_refused(paths):
    from freqscope.encode import VAEEncoder

    with pytest.raises(ValueError, match="posterior mean"):
        RoundTrip(VAEEncoder.load(paths["kl"], sample_posterior=True))
