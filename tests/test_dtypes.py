"""Dtypes that work for each model family (issue 16, item 2), checked on the CPU where a CPU can show them:
each family's documented dtypes on CUDA, ``force_upcast`` read from the loaded model and honoured, latents
handed to flow pipelines in float32, and a finite check after every encode and every pass."""

from __future__ import annotations

import json

import diffusers
import pytest
import torch

from conftest import tiny_vaes
from freqscope.encode import VAE_DTYPES, VAEEncoder, force_upcast, vae_dtype
from freqscope.freeinit import FreeInitOptions, sample
from freqscope.pipeline_adapter import PIPELINE_FAMILIES, adapter_for, latent_shape, pipeline_dtypes, pipeline_vae
from freqscope.samplers import PipelineSampler
from tiny_pipelines import build, family_call

BF16, FP16, FP32 = torch.bfloat16, torch.float16, torch.float32


@pytest.mark.parametrize(
    "cls,expected",
    [
        ("AnimateDiffPipeline", (FP16, None)),
        ("CogVideoXPipeline", (BF16, None)),
        ("WanPipeline", (BF16, FP32)),
        ("HunyuanVideoPipeline", (BF16, FP16)),  # float16 transformers give NaN: its card loads it in bf16
        ("LTXPipeline", (BF16, None)),
        ("MochiPipeline", (BF16, None)),
        ("StableVideoDiffusionPipeline", (FP16, None)),
        ("SomeFuturePipeline", (FP16, None)),
    ],
)
def test_each_family_loads_in_its_documented_dtypes_on_cuda(cls, expected):
    assert pipeline_dtypes(cls, "cuda") == expected
    assert pipeline_dtypes(cls, "cpu") == (FP32, None)
    assert pipeline_dtypes(cls, "cuda", BF16) == (BF16, None)  # `dtype` overrides, the VAE too
    fam = next((f for f in PIPELINE_FAMILIES if cls in f.classes), None)
    assert fam is None or fam.dtype_source  # every family says where its dtype comes from


def test_force_upcast_is_read_as_the_loaded_model_has_it(tmp_path):
    """SD's VAE config has no force_upcast key; AutoencoderKL then defaults it to True (diffusers registers it),
    so it runs in float32 on CUDA, not float16 (which overflows: diffusers #7188)."""
    folder = tiny_vaes(tmp_path)["kl"]
    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("force_upcast", None)
    cfg_path.write_text(json.dumps(cfg))
    config = diffusers.AutoencoderKL.load_config(folder)
    assert "force_upcast" not in config and force_upcast(diffusers.AutoencoderKL, config)
    assert vae_dtype(diffusers.AutoencoderKL, config, "cuda") == FP32
    assert vae_dtype(diffusers.AutoencoderKL, {**config, "force_upcast": False}, "cuda") == FP16
    assert vae_dtype(diffusers.AutoencoderKL, config, "cuda", FP16) == FP16  # `dtype` still overrides
    assert vae_dtype(diffusers.AutoencoderKLWan, {}, "cuda") == VAE_DTYPES["AutoencoderKLWan"][0] == FP32
    loaded = diffusers.AutoencoderKL.from_pretrained(folder)
    assert loaded.config.force_upcast is True  # what the pipeline's VAE carries, read by VAEEncoder


def test_a_float16_pipeline_vae_that_asks_for_force_upcast_computes_in_float32():
    """AnimateDiff's SD VAE in a float16 pipeline: freqscope's encode and decode run it in float32 and hand it
    back in float16 (the pipeline keeps its own)."""
    pipe = build("animatediff").to(FP16)
    enc = pipeline_vae(pipe)
    assert enc.upcast and enc.dtype == FP16
    seen = []
    hook = pipe.vae.encoder.register_forward_pre_hook(
        lambda m, args: seen.append((args[0].dtype, m.conv_in.weight.dtype))
    )
    try:
        z = enc(torch.rand(1, 3, 2, 32, 32) * 2 - 1)
        x = enc.decode(z)
    finally:
        hook.remove()
    assert seen and set(seen) == {(FP32, FP32)}  # frames and weights in float32
    assert torch.isfinite(x).all() and x.dtype == FP32
    assert next(pipe.vae.parameters()).dtype == FP16


def _tiny_pass(pipe, name, **kw):
    call = family_call(name)
    size = {k: call.pop(k) for k in ("num_frames", "height", "width")}
    call.pop("image", None)
    shape = latent_shape(pipe, **size)
    sampler = PipelineSampler(pipe, **call, **size)
    return sampler, shape, sample(sampler, shape, num_iters=1, num_inference_steps=2, **kw)


def test_flow_pipelines_get_float32_latents_others_their_denoisers_dtype():
    """Wan denoises in float32 (its prepare_latents casts the given latents to float32): the initial noise must
    reach it unrounded, not cast to the bfloat16 transformer's dtype first."""
    pipe = build("wan").to(BF16)
    seen = []
    original = pipe.prepare_latents

    def record(*args, **kwargs):
        latents = kwargs.get("latents", args[-1] if args else None)
        seen.append(latents.dtype)
        return original(*args, **kwargs)

    pipe.prepare_latents = record
    try:
        sampler, _, res = _tiny_pass(pipe, "wan", freeinit=FreeInitOptions())
    finally:
        del pipe.prepare_latents
    assert seen and set(seen) == {FP32} and sampler.latents_dtype == FP32 and sampler.denoiser_dtype == BF16
    assert torch.isfinite(res.latents).all()
    ad = build("animatediff").to(FP16)
    assert not adapter_for(ad).float32_latents and PipelineSampler(ad).latents_dtype == FP16


def test_a_pass_that_gives_nan_says_which_model_and_dtype_and_what_to_try():
    pipe = build("wan")
    with torch.no_grad():
        next(pipe.transformer.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match=r"pass 0 of WanPipeline in float32 gave \d+ NaN/Inf .* try `dtype` bfloat16"):
        _tiny_pass(pipe, "wan")


def test_an_encode_or_decode_that_gives_nan_names_the_vae_and_its_dtype(tmp_path):
    enc = VAEEncoder.load(tiny_vaes(tmp_path)["kl"])
    with torch.no_grad():
        next(enc.model.decoder.parameters()).fill_(float("nan"))
    z = enc(torch.rand(1, 3, 2, 32, 32) * 2 - 1)  # the encoder is intact
    msg = r"decoding with the VAE AutoencoderKL \(.*\) in float32 produced .* try `dtype`"
    with pytest.raises(ValueError, match=msg):
        enc.decode(z)
    with torch.no_grad():
        next(enc.model.encoder.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match=r"encoding with the VAE AutoencoderKL .* in float32 produced"):
        enc(torch.rand(1, 3, 2, 32, 32) * 2 - 1)
