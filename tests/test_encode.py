"""Encoders on tiny randomly initialised diffusers autoencoders (saved with save_pretrained, loaded back)."""

import json

import pytest
import torch

from freqscope.encode import PixelEncoder, VAEEncoder, load_encoder


@pytest.fixture(scope="module")
def frames():
    return torch.rand(1, 3, 9, 32, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_pixel_is_identity_and_downsample_is_area_mean(frames):
    assert torch.equal(PixelEncoder()(frames), frames)
    z = PixelEncoder(downsample=4)(frames)
    assert z.shape == (1, 3, 9, 8, 12)
    assert torch.allclose(z[0, :, :, 1, 2], frames[0, :, :, 4:8, 8:12].mean(dim=(-2, -1)))


def test_image_vae_encodes_each_frame_with_scaling(vaes, frames):
    import diffusers

    enc = load_encoder(vae=str(vaes["kl"]), batch_size=4)
    z = enc(frames)
    assert enc.kind == "image" and z.shape == (1, 4, 9, 16, 24)
    model = diffusers.AutoencoderKL.from_pretrained(vaes["kl"])
    with torch.no_grad():
        ref = model.encode(frames[0, :, 3][None]).latent_dist.mean * 0.18215
    assert torch.allclose(z[:, :, 3], ref, atol=1e-5)
    assert enc.info.scaling["scaling_factor"] == 0.18215 and enc.info.source == str(vaes["kl"])


def test_tiny_autoencoder(vaes, frames):
    import diffusers

    enc = load_encoder("vae", vae=str(vaes["tiny"]))
    z = enc(frames)
    model = diffusers.AutoencoderTiny.from_pretrained(vaes["tiny"])
    with torch.no_grad():
        ref = model.encode(frames[0, :, 0][None]).latents
    assert z.shape == (1, 4, 9, 4, 6) and torch.allclose(z[:, :, 0], ref, atol=1e-5)


def test_video_vae_cogvideox_compresses_time(vaes, frames):
    enc = load_encoder(vae=str(vaes["cogvideox"]))
    z = enc(frames)
    assert enc.kind == "video" and enc.info.temporal_compression == 4
    assert z.shape == (1, 4, 3, 4, 6)  # 1 + 2·4 frames → 3 latent frames
    with pytest.warns(UserWarning, match="first 9 of 11 frames"):
        z2 = enc(torch.cat([frames, frames[:, :, :2]], dim=2))
    assert torch.allclose(z2, z, atol=1e-5)


def test_video_vae_wan_per_channel_statistics(vaes, frames):
    import diffusers

    enc = load_encoder(vae=str(vaes["wan"]))
    z = enc(frames)
    model = diffusers.AutoencoderKLWan.from_pretrained(vaes["wan"])
    with torch.no_grad():
        mu = model.encode(frames).latent_dist.mean
    m = torch.tensor([0.1, 0.2, -0.1, 0.0]).view(1, -1, 1, 1, 1)
    s = torch.tensor([1.5, 2.0, 1.0, 0.5]).view(1, -1, 1, 1, 1)
    assert z.shape == (1, 4, 3, 4, 6) and torch.allclose(z, (mu - m) / s, atol=1e-5)


def test_sample_posterior_is_seeded(vaes, frames):
    enc = VAEEncoder.load(vaes["kl"], sample_posterior=True)
    a = enc(frames, generator=torch.Generator().manual_seed(1))
    b = enc(frames, generator=torch.Generator().manual_seed(1))
    mean = VAEEncoder.load(vaes["kl"])(frames)
    assert torch.equal(a, b) and not torch.allclose(a, mean)


def test_subfolder(vaes, tmp_path, frames):
    import shutil

    shutil.copytree(vaes["kl"], tmp_path / "pipe" / "vae")
    enc = load_encoder(vae=str(tmp_path / "pipe"), vae_subfolder="vae")
    assert enc(frames).shape == (1, 4, 9, 16, 24)
    with pytest.raises(ValueError, match="no autoencoder config.json"):
        load_encoder(vae=str(tmp_path / "pipe"))


def test_bad_vae_sources(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no autoencoder config.json"):
        load_encoder(vae=str(tmp_path / "empty"))
    (tmp_path / "sched").mkdir()
    (tmp_path / "sched" / "config.json").write_text(json.dumps({"_class_name": "DDIMScheduler"}))
    with pytest.raises(ValueError, match="not a diffusers autoencoder"):
        load_encoder(vae=str(tmp_path / "sched"))
    (tmp_path / "noweights").mkdir()
    (tmp_path / "noweights" / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    with pytest.raises(ValueError, match="cannot load"):
        load_encoder(vae=str(tmp_path / "noweights"))
    with pytest.raises(FileNotFoundError, match="neither a local folder nor a hub id"):
        load_encoder(vae="./does/not/exist")
    with pytest.raises(ValueError, match="not in the local cache and the hub is offline"):
        load_encoder(vae="nobody/no-such-vae-offline")  # HF_HUB_OFFLINE=1 in tests
    with pytest.raises(ValueError, match="unknown encoder"):
        load_encoder("clip")
    with pytest.raises(ValueError, match="needs `vae`"):
        load_encoder("vae")


def test_nan_from_encoder_is_an_error(vaes, tmp_path, frames):
    import diffusers

    model = diffusers.AutoencoderKL.from_pretrained(vaes["kl"])
    with torch.no_grad():
        model.quant_conv.weight.fill_(float("nan"))
    model.save_pretrained(tmp_path / "nan")
    with pytest.raises(ValueError, match="NaN/Inf"):
        load_encoder(vae=str(tmp_path / "nan"))(frames)


@pytest.mark.parametrize("name", ["kl", "wan"])
def test_decode_inverts_the_scaling(vaes, frames, name):
    import diffusers

    enc = load_encoder(vae=str(vaes[name]))
    z = enc(frames)
    x = enc.decode(z)
    model = getattr(diffusers, enc.info.class_name).from_pretrained(vaes[name])
    with torch.no_grad():
        if name == "kl":
            ref = model.decode(z[:, :, 0] / 0.18215).sample
            assert x.shape == (1, 3, 9, 32, 48) and torch.allclose(x[:, :, 0], ref.clamp(-1, 1), atol=1e-5)
        else:
            m = torch.tensor([0.1, 0.2, -0.1, 0.0]).view(1, -1, 1, 1, 1)
            s = torch.tensor([1.5, 2.0, 1.0, 0.5]).view(1, -1, 1, 1, 1)
            ref = model.decode(z * s + m).sample
            assert torch.allclose(x, ref.clamp(-1, 1), atol=1e-5)
