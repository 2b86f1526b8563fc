"""Tiny randomly initialised diffusers video pipelines built from config (no download), saved and loaded back.

One builder per family, `tiny_<family>(root=None, **variant)`: torch.manual_seed(0), every model tiny (1 layer,
2 heads, 4-16 channels; 32 where a model hard-codes 32-group norms: Mochi's VAE, SVD's UNet and VAE), its
tokenizer(s) and text or image encoder(s) built offline, all components in eval mode, `save_pretrained(root)`
when `root` is given. `FAMILIES` maps a name to (builder, variant, a call like the real one); `build(name, root)`
and `family_call(name)` read it. Scheduler configs follow the released ones; each builder's docstring names
where its config comes from and any departure (the historical AnimateDiff fixture, Wan shift 7, LTX static).

What each family does (diffusers 0.42.1, CPU). "call" is FAMILIES[name][2], run with num_inference_steps=2,
output_type="latent"; "legal" is what the pipeline's check_inputs demands. "z" is how the pipeline-space latent
(what output_type="latent" returns and latents= means) is made from the VAE's encoding z_vae.

animatediff, animatediff_pag, animatediff_sdxl, text_to_video_sd
    pipeline  AnimateDiffPipeline, AnimateDiffPAGPipeline, AnimateDiffSDXLPipeline, TextToVideoSDPipeline
    call      prompt="a cat", num_frames=4, height=16, width=16 (legal: h, w multiples of 8)
    latent    (1, 4, 4, 8, 8) = (b, c, t, h, w); per-frame image VAE: pipe.vae_scale_factor = 2, t unchanged
    latents=  (b, c, t, h, w), multiplied by scheduler.init_noise_sigma (1.0)
    scheduler DDIMScheduler; set_timesteps(n, device) takes no sigmas/timesteps/mu. The pipeline calls
              set_timesteps(n); SDXL calls retrieve_timesteps with the call's timesteps=/sigmas=.
              2 steps: 501, 1 (leading); SDXL (linspace): 999, 0
    z         z_vae * vae.config.scaling_factor (0.18215)

cogvideox_5b, cogvideox_2b, cogvideox_1.5 (tiny_cogvideox(version=...); version=None is the older fixture)
    pipeline  CogVideoXPipeline
    call      prompt="a cat", num_frames=9, height=32, width=32 (legal: h, w multiples of 8; frames unchecked)
    latent    (1, 3, 4, 4, 4) = (b, t, c, h, w); 1.5: (1, 4, 4, 4, 4), t PADDED from 3 to 4.
              pipe.vae_scale_factor_spatial = 8, pipe.vae_scale_factor_temporal = 4, causal first frame;
              1.5: pipe.transformer.config.patch_size_t = 2 (None for 1.0)
    latents=  (b, t, c, h, w) with the padded t for 1.5, multiplied by init_noise_sigma (1.0). With an odd
              latent frame count 1.5 adds `additional_frames`; output_type="latent" returns them, decoding
              drops the FIRST additional_frames latent frames.
    scheduler CogVideoXDDIMScheduler (trailing, zero terminal SNR, v-prediction; snr_shift_scale 1.0 for
              5b/1.5, 3.0 for 2b and version=None); set_timesteps takes no sigmas/timesteps/mu; the
              pipeline uses retrieve_timesteps with the call's timesteps=. 2 steps: 999, 499
    z         z_vae * scaling_factor (5b, 1.5: 0.7; 2b: 1.15258426), permuted to (b, t, c, h, w)

wan, wan_unipc (tiny_wan(scheduler="flow_euler" | "unipc"))
    pipeline  WanPipeline
    call      prompt="a cat", num_frames=9, height=32, width=32 (legal: h, w multiples of 16; frames are
              rounded down to 4k + 1 with a warning)
    latent    (1, 4, 3, 4, 4) = (b, c, t, h, w); pipe.vae_scale_factor_spatial = 8,
              pipe.vae_scale_factor_temporal = 4, causal first frame; transformer patch (1, 2, 2)
    latents=  (b, c, t, h, w), used as is
    scheduler wan: FlowMatchEulerDiscreteScheduler(shift=7), set_timesteps takes sigmas, timesteps, mu.
              wan_unipc: UniPCMultistepScheduler(use_flow_sigmas, flow_prediction, flow_shift=3), takes
              sigmas and mu, NOT timesteps. The pipeline calls set_timesteps(n).
              2 steps: wan 1000, 46.76 (the shifted sigma_min is shifted again: 0.0468, not 0.00696);
              wan_unipc 999, 750
    z         (z_vae - vae.config.latents_mean) / vae.config.latents_std, per channel (not 0/1 here)

hunyuan_video
    pipeline  HunyuanVideoPipeline (Llama text_encoder + CLIP text_encoder_2, embedded guidance, no CFG)
    call      prompt="a cat", num_frames=9, height=32, width=32 (legal: h, w multiples of 16)
    latent    (1, 4, 3, 4, 4) = (b, c, t, h, w); pipe.vae_scale_factor_spatial = 8,
              pipe.vae_scale_factor_temporal = 4, causal first frame
    latents=  (b, c, t, h, w), used as is
    scheduler FlowMatchEulerDiscreteScheduler(shift=7); takes sigmas, timesteps, mu. The pipeline passes
              sigmas = linspace(1, 0, n + 1)[:-1] (or the call's sigmas=). 2 steps: 1000, 875
    z         z_vae * scaling_factor (0.476986)

ltx, ltx_dynamic (tiny_ltx(dynamic_shifting=...))
    pipeline  LTXPipeline
    call      prompt="a cat", num_frames=9, height=32, width=32 (legal: h, w multiples of 32)
    latent    (1, 192, 8) PACKED = (b, t*h*w, c*p_t*p*p) with t, h, w = 3, 8, 8;
              pipe.vae_spatial_compression_ratio = 4 (released 32),
              pipe.vae_temporal_compression_ratio = 4 (released 8), causal first frame;
              pipe.transformer_spatial_patch_size = pipe.transformer_temporal_patch_size = 1
    latents=  PACKED, used as is. The pipeline's own draw is randn (b, c, t, h, w) packed by
              LTXPipeline._pack_latents(x, p, p_t): tokens t-major, then h, then w; features c-major
    scheduler FlowMatchEulerDiscreteScheduler; ltx: default config; ltx_dynamic: released config
              (use_dynamic_shifting, base/max shift 0.95/2.05, shift_terminal 0.1), for which mu is required.
              Takes sigmas, timesteps, mu. The pipeline passes sigmas = linspace(1, 1/n, n) and mu from the
              token count (ignored when not dynamic). 2 steps: ltx 1000, 500; ltx_dynamic 1000, 100
    z         (z_vae - vae.latents_mean) * scaling_factor / vae.latents_std (buffers; not 0/1 here), packed

mochi
    pipeline  MochiPipeline
    call      prompt="a cat", num_frames=13, height=32, width=32 (legal: h, w multiples of 8)
    latent    (1, 12, 3, 4, 4) = (b, c, t, h, w); pipe.vae_spatial_scale_factor = 8 and
              pipe.vae_temporal_scale_factor = 6 are constants in the pipeline (not read from the VAE),
              pipe.patch_size = 2, causal first frame: 13 frames -> (13 - 1) // 6 + 1 = 3
    latents=  (b, c, t, h, w), used as is
    scheduler FlowMatchEulerDiscreteScheduler(invert_sigmas=True); takes sigmas, timesteps, mu. The pipeline
              passes its linear-quadratic sigmas (threshold 0.025). Inverted: scheduler.sigmas are
              1 - (noise level) and the timesteps 1000 * (1 - noise level) run UP from 0; the transformer
              gets that t. 2 steps: 0, 25
    z         (z_vae - vae.config.latents_mean) * scaling_factor / vae.config.latents_std (released values)

latte
    pipeline  LattePipeline
    call      prompt="a cat", video_length=4, height=16, width=16 (legal: h, w multiples of 8; with more
              than one frame video_length must equal transformer.config.video_length, 16 released, 4 here)
    latent    (1, 4, 4, 8, 8) = (b, c, t, h, w); per-frame image VAE: pipe.vae_scale_factor = 2
    latents=  (b, c, t, h, w), multiplied by init_noise_sigma (1.0)
    scheduler DDIMScheduler (leading); no sigmas/timesteps/mu; retrieve_timesteps with the call's
              timesteps=. 2 steps: 500, 0
    z         z_vae * vae.config.scaling_factor (0.18215)

svd
    pipeline  StableVideoDiffusionPipeline (image-to-video; CFG from min_guidance_scale 1 to max 3 over frames)
    call      image=<PIL 16x16>, num_frames=4, height=16, width=16 (legal: h, w multiples of 8)
    latent    (1, 4, 4, 8, 8) = (b, t, c, h, w); pipe.vae_scale_factor = 2; the VAE encodes single images
              (AutoencoderKLTemporalDecoder: image encoder, temporal decoder)
    latents=  (b, t, c, h, w), multiplied by init_noise_sigma = sqrt(sigma_max^2 + 1) = 700.0007 (leading)
    scheduler EulerDiscreteScheduler (Karras sigmas 0.002..700, v-prediction, timestep_type "continuous":
              timesteps are 0.25 ln sigma); takes sigmas and timesteps, not mu; retrieve_timesteps with the
              call's sigmas=. 2 steps: 1.64, -1.55
    z         frames: z_vae * scaling_factor (0.18215); the conditioning image: vae.encode(image).mode(),
              unscaled, concatenated on channels inside the loop (unet in_channels 8 = 4 + 4)

latents= check: in every family, passing the pipeline's own draw randn_tensor(shape, generator) gives exactly
the same result as passing nothing (tests/test_tiny_pipelines.py); SVD first draws the image's noise
augmentation, randn of (1, 3, H, W), from the same generator.

Timings (CPU, one torch thread, after a first pass over all families that pays ~6 s of imports): build +
save_pretrained + from_pretrained + 2-step latent call take 0.06-0.37 s per family (AnimateDiff PAG 0.8 s);
tests/test_tiny_pipelines.py takes ~9 s. With 2 threads on the shared 2-core machine the same calls run 2-10x
slower (thread contention), hence the smoke test's one-thread fixture. Parameters: 21 k (Wan) to 154 k; Mochi
0.63 M and SVD 0.93 M (32-channel norms).
"""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import torch

WORDS = ("a", "boat", "cat", "the", "on", "sea")


# ---- tokenizers and text encoders, built offline --------------------------------------------------------


def tiny_tokenizer(root: Path | None = None):
    """A CLIP tokenizer with a handful of tokens (unknown words map to <|endoftext|>); its vocab.json and
    merges.txt are written to `root`, or to a temporary folder removed once the tokenizer has read them."""
    from transformers import CLIPTokenizer

    if root is None:
        with tempfile.TemporaryDirectory(prefix="tiny_tok_") as tmp:
            return tiny_tokenizer(Path(tmp))
    root.mkdir(parents=True, exist_ok=True)
    words = ["<|startoftext|>", "<|endoftext|>"] + [w + "</w>" for w in WORDS]
    (root / "vocab.json").write_text(json.dumps({w: i for i, w in enumerate(words)}))
    (root / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(
        str(root / "vocab.json"), str(root / "merges.txt"), unk_token="<|endoftext|>", model_max_length=77
    )


def tiny_clip_text(hidden: int = 8, projection: bool = False):
    """A one-layer CLIP text encoder (vocabulary 16, 77 positions); `projection` gives the SDXL
    `CLIPTextModelWithProjection` whose `text_embeds` have `hidden` features."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_attention_heads=2,
        num_hidden_layers=1,
        vocab_size=16,
        max_position_embeddings=77,
        projection_dim=hidden,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg)


def tiny_t5_tokenizer(max_length: int = 512):
    """A T5 (sentencepiece-unigram) tokenizer over `WORDS`: <pad>=0, </s>=1 appended, <unk>=2."""
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("▁" + w, -1.0) for w in WORDS] + [("▁", -2.0)]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=max_length)


def tiny_t5_encoder(d_model: int = 8, umt5: bool = False):
    """A one-layer T5 (or UMT5, as Wan uses) encoder with `d_model` features."""
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    kw = dict(d_model=d_model, d_ff=2 * d_model, d_kv=4, num_layers=1, num_heads=2, vocab_size=16, dropout_rate=0.0)
    kw.update(relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return UMT5EncoderModel(UMT5Config(**kw)) if umt5 else T5EncoderModel(T5Config(**kw))


def tiny_llama_tokenizer():
    """A Llama (BPE) tokenizer: letters, '▁' and one merge chain per word of `WORDS`; right padding with
    </s> as the pad token, as HunyuanVideo's tokenizer is loaded."""
    from transformers import LlamaTokenizer

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for c in "▁" + string.ascii_lowercase:
        vocab[c] = len(vocab)
    merges = []
    for w in WORDS:
        s = "▁"
        for c in w:
            merges.append((s, c))
            s += c
            vocab.setdefault(s, len(vocab))
    tok = LlamaTokenizer(vocab=vocab, merges=list(dict.fromkeys(merges)), padding_side="right")
    tok.pad_token = tok.eos_token
    return tok


def tiny_llama(hidden: int = 16, vocab_size: int = 64):
    """A two-layer Llama (HunyuanVideo reads the hidden state two layers from the top)."""
    from transformers import LlamaConfig, LlamaModel

    cfg = LlamaConfig(
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_hidden_layers=2,
        vocab_size=vocab_size,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    return LlamaModel(cfg)


def _finish(pipe, root: Path | None):
    """Eval mode, as `from_pretrained` returns it (T5's dropout would otherwise make calls random)."""
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.eval()
    pipe.set_progress_bar_config(disable=True)
    if root is not None:
        pipe.save_pretrained(root)
    return pipe


def _tiny_vae_2d():
    """An SD-style image VAE, 2× spatial compression, 4 latent channels."""
    import diffusers

    return diffusers.AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=4,
        latent_channels=4,
        sample_size=16,
    )


# ---- 1. AnimateDiff (SD 1.5, SDXL, PAG) -----------------------------------------------------------------


def _animatediff_parts(scheduler: str, text: bool, sdxl: bool = False):
    import diffusers

    torch.manual_seed(0)
    unet_kw = {}
    if sdxl:  # two text encoders (8 + 8 features) and SDXL's micro-conditioning (6 time ids)
        unet_kw = dict(
            cross_attention_dim=16,
            addition_embed_type="text_time",
            addition_time_embed_dim=4,
            projection_class_embeddings_input_dim=6 * 4 + 8,
            use_linear_projection=True,
        )
    unet = diffusers.UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        norm_num_groups=4,
        attention_head_dim=2,
        **({"cross_attention_dim": 8} | unet_kw),
    )
    motion = diffusers.MotionAdapter(
        block_out_channels=(8, 16),
        motion_layers_per_block=1,
        motion_norm_num_groups=4,
        motion_num_attention_heads=2,
        motion_max_seq_length=32,
        use_motion_mid_block=not sdxl,
    )
    vae = _tiny_vae_2d()
    cfg = {"beta_schedule": "linear", "beta_start": 0.00085, "beta_end": 0.012, "steps_offset": 1}
    if sdxl:
        cfg["timestep_spacing"] = "linspace"
    if scheduler == "ddim":
        sch = diffusers.DDIMScheduler(**cfg, clip_sample=False)
    elif scheduler == "euler":
        sch = diffusers.EulerDiscreteScheduler(**cfg)
    else:
        raise ValueError(scheduler)
    tok = enc = None
    if text:
        tok, enc = tiny_tokenizer(), tiny_clip_text()
    return dict(unet=unet, motion_adapter=motion, vae=vae, scheduler=sch, text_encoder=enc, tokenizer=tok)


def tiny_animatediff(root: Path | None = None, *, scheduler: str = "ddim", text: bool = True):
    """AnimateDiff (SD 1.5) with a 2-block UNet + motion adapter (cross-attention dim 8), a tiny VAE (factor 2).

    Scheduler: the AnimateDiff docs' DDIM (linear β 0.00085..0.012, steps_offset 1, clip_sample off; the
    docs also set timestep_spacing="linspace", kept at "leading" here as the existing tests expect)."""
    import diffusers

    parts = _animatediff_parts(scheduler, text)
    pipe = diffusers.AnimateDiffPipeline(**parts, feature_extractor=None, image_encoder=None)
    return _finish(pipe, root)


def tiny_animatediff_sdxl(root: Path | None = None, *, scheduler: str = "ddim"):
    """AnimateDiff SDXL: two CLIP text encoders (the second with projection), SDXL's text-time
    micro-conditioning, a motion adapter without mid block (as diffusers' AnimateDiffSDXL tests build it).

    Scheduler: the AnimateDiffSDXLPipeline docs' DDIM (SDXL base's scheduler with clip_sample=False,
    timestep_spacing="linspace", beta_schedule="linear", steps_offset=1)."""
    import diffusers

    parts = _animatediff_parts(scheduler, text=True, sdxl=True)
    pipe = diffusers.AnimateDiffSDXLPipeline(
        **parts,
        text_encoder_2=tiny_clip_text(projection=True),
        tokenizer_2=tiny_tokenizer(),
        image_encoder=None,
        feature_extractor=None,
    )
    return _finish(pipe, root)


def tiny_animatediff_pag(root: Path | None = None, *, scheduler: str = "ddim"):
    """AnimateDiff with perturbed-attention guidance on the mid block's self-attention (the default
    `pag_applied_layers`), otherwise the SD 1.5 pipeline above (same seed, same weights)."""
    import diffusers

    parts = _animatediff_parts(scheduler, text=True)
    pipe = diffusers.AnimateDiffPAGPipeline(**parts, feature_extractor=None, image_encoder=None)
    return _finish(pipe, root)


# ---- 2. TextToVideoSD -----------------------------------------------------------------------------------


def tiny_text_to_video_sd(root: Path | None = None):
    """ModelScope text-to-video: UNet3DConditionModel, an SD image VAE (factor 2), CLIP text.

    Scheduler: damo-vilab/text-to-video-ms-1.7b's DDIM (scaled_linear β 0.00085..0.012, clip_sample and
    set_alpha_to_one off, steps_offset 1), as diffusers' TextToVideoSD tests build it."""
    import diffusers

    torch.manual_seed(0)
    unet = diffusers.UNet3DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=8,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    sch = diffusers.DDIMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = diffusers.TextToVideoSDPipeline(
        vae=_tiny_vae_2d(), text_encoder=tiny_clip_text(), tokenizer=tiny_tokenizer(), unet=unet, scheduler=sch
    )
    return _finish(pipe, root)


# ---- 3. CogVideoX (1.0: 5b-like and 2b-like; 1.5) -------------------------------------------------------

# CogVideoXDDIMScheduler configs as released (THUDM/CogVideoX-{2b,5b,1.5-5B} scheduler_config.json): both
# zero terminal SNR, v-prediction, trailing spacing, set_alpha_to_one, steps_offset 0; 2b has
# snr_shift_scale 3.0 (diffusers' scripts/convert_cogvideox_to_diffusers.py hard-codes it), 5b and 1.5 1.0.
COGVIDEOX_SCHEDULER = dict(
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    beta_end=0.012,
    clip_sample=False,
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
    set_alpha_to_one=True,
    steps_offset=0,
    timestep_spacing="trailing",
)


def tiny_cogvideox(root: Path | None = None, *, version: str | None = None, text: bool = False):
    """CogVideoX with a one-layer transformer, a tiny video VAE (8× space, 4× time, causal first frame) and
    its own scheduler: zero terminal SNR, v-prediction, latents in (b, t, c, h, w).

    `version=None` is the historical fixture (the scheduler keeps the class default snr_shift_scale=3.0,
    i.e. 2b's shift; no tokenizer unless `text`). "5b": released 5b scheduler (snr_shift_scale 1.0). "2b":
    released 2b scheduler (snr_shift_scale 3.0). "1.5": CogVideoX 1.5 (temporal patch `patch_size_t=2`,
    RoPE, snr_shift_scale 1.0; the pipeline pads the latent frames to a multiple of 2). `text` (implied by
    a `version`) adds a T5 tokenizer + one-layer T5 encoder (8 features). The transformer takes 16 text
    tokens when `version` is None (pass 16-token `prompt_embeds`, or max_sequence_length=16), else 226 as
    released (the pipeline's default max_sequence_length)."""
    import diffusers

    torch.manual_seed(0)
    v15 = version == "1.5"
    if version not in (None, "5b", "2b", "1.5"):
        raise ValueError(f"version must be None, '5b', '2b' or '1.5', got {version!r}")
    transformer = diffusers.CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16 if v15 else 8,
        in_channels=4,
        out_channels=4,
        time_embed_dim=4,
        text_embed_dim=8,
        num_layers=1,
        sample_width=8,
        sample_height=8,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16 if version is None else 226,
        **(dict(patch_size_t=2, use_rotary_positional_embeddings=True, patch_bias=False) if v15 else {}),
    )
    # scaling_factor: 2b 1.15258426 (also the class default), 5b and 1.5 0.7 (diffusers' conversion script)
    vae = diffusers.AutoencoderKLCogVideoX(
        block_out_channels=(8,) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
        **({"scaling_factor": 0.7} if version in ("5b", "1.5") else {}),
    )
    if version is None:
        sch = diffusers.CogVideoXDDIMScheduler(
            rescale_betas_zero_snr=True,
            prediction_type="v_prediction",
            timestep_spacing="trailing",
            beta_schedule="scaled_linear",
            beta_start=0.00085,
            beta_end=0.012,
            clip_sample=False,
        )
    else:
        shift = 3.0 if version == "2b" else 1.0
        sch = diffusers.CogVideoXDDIMScheduler(**COGVIDEOX_SCHEDULER, snr_shift_scale=shift)
    tok = enc = None
    if text or version is not None:
        tok, enc = tiny_t5_tokenizer(max_length=226), tiny_t5_encoder(8)
    pipe = diffusers.CogVideoXPipeline(tokenizer=tok, text_encoder=enc, vae=vae, transformer=transformer, scheduler=sch)
    return _finish(pipe, root)


# ---- 4. Wan T2V -----------------------------------------------------------------------------------------

# Per-channel latent statistics, deliberately not (0, 1), so that code which forgets the pipeline's latent
# normalisation ((z - mean) / std) is caught; the released VAE has 16 such channels.
WAN_LATENTS_MEAN = (-0.2, 0.1, 0.3, -0.05)
WAN_LATENTS_STD = (0.5, 1.5, 0.8, 1.2)


def tiny_wan(root: Path | None = None, *, scheduler: str = "flow_euler", shift: float | None = None):
    """Wan 2.1 T2V: WanTransformer3DModel (1 layer, 2 heads of 6), AutoencoderKLWan (8× space, 4× time,
    causal first frame, 4 latent channels), UMT5 encoder (8 features), T5 tokenizer.

    scheduler="flow_euler": FlowMatchEulerDiscreteScheduler(shift=7) (the issue's case; `shift` overrides).
    scheduler="unipc": the released Wan-AI/Wan2.1-T2V-1.3B-Diffusers scheduler, UniPCMultistepScheduler with
    prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0 (diffusers' Wan docs and examples:
    3.0 for 480P, 5.0 for 720P; `shift` overrides)."""
    import diffusers

    torch.manual_seed(0)
    vae = diffusers.AutoencoderKLWan(
        base_dim=4,
        z_dim=4,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=list(WAN_LATENTS_MEAN),
        latents_std=list(WAN_LATENTS_STD),
    )
    transformer = diffusers.WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=6,
        in_channels=4,
        out_channels=4,
        text_dim=8,
        freq_dim=8,
        ffn_dim=16,
        num_layers=1,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    if scheduler == "flow_euler":
        sch = diffusers.FlowMatchEulerDiscreteScheduler(shift=7.0 if shift is None else shift)
    elif scheduler == "unipc":
        sch = diffusers.UniPCMultistepScheduler(
            prediction_type="flow_prediction",
            use_flow_sigmas=True,
            num_train_timesteps=1000,
            flow_shift=3.0 if shift is None else shift,
        )
    else:
        raise ValueError(f"scheduler must be 'flow_euler' or 'unipc', got {scheduler!r}")
    pipe = diffusers.WanPipeline(
        tokenizer=tiny_t5_tokenizer(),
        text_encoder=tiny_t5_encoder(8, umt5=True),
        vae=vae,
        transformer=transformer,
        scheduler=sch,
    )
    return _finish(pipe, root)


# ---- 5. HunyuanVideo ------------------------------------------------------------------------------------


def save_models(root: Path, models: dict) -> dict[str, Path]:
    """Each model of ``models`` saved with ``save_pretrained`` under ``root / name``; name → folder."""
    out = {}
    for name, m in models.items():
        m.save_pretrained(root / name)
        out[name] = root / name
    return out


def tiny_hunyuan_vae(**overrides):
    """A tiny random HunyuanVideo causal VAE (8× spatial, 4× temporal compression, 4 latent channels)."""
    import diffusers

    cfg = dict(
        latent_channels=4,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        block_out_channels=(8,) * 4,
        layers_per_block=1,
        norm_num_groups=4,
        spatial_compression_ratio=8,
        temporal_compression_ratio=4,
    )
    return diffusers.AutoencoderKLHunyuanVideo(**{**cfg, **overrides})


def tiny_hunyuan_video(root: Path | None = None):
    """HunyuanVideo: a 1+1-layer dual/single-stream transformer, its causal video VAE (8× space, 4× time),
    a 2-layer Llama text encoder (16 features) + CLIP text encoder_2 (pooled, 8 features).

    Scheduler: FlowMatchEulerDiscreteScheduler(shift=7.0), diffusers'
    scripts/convert_hunyuan_video_to_diffusers.py default `--flow_shift 7.0`."""
    import diffusers

    torch.manual_seed(0)
    transformer = diffusers.HunyuanVideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=10,
        num_layers=1,
        num_single_layers=1,
        num_refiner_layers=1,
        patch_size=1,
        patch_size_t=1,
        guidance_embeds=True,
        text_embed_dim=16,
        pooled_projection_dim=8,
        rope_axes_dim=(2, 4, 4),
    )
    vae = tiny_hunyuan_vae(mid_block_add_attention=True)
    sch = diffusers.FlowMatchEulerDiscreteScheduler(shift=7.0)
    tok = tiny_llama_tokenizer()
    pipe = diffusers.HunyuanVideoPipeline(
        text_encoder=tiny_llama(16, vocab_size=len(tok)),
        tokenizer=tok,
        transformer=transformer,
        vae=vae,
        scheduler=sch,
        text_encoder_2=tiny_clip_text(8),
        tokenizer_2=tiny_tokenizer(),
    )
    return _finish(pipe, root)


# ---- 6. LTX-Video ---------------------------------------------------------------------------------------

# Lightricks/LTX-Video's released scheduler (diffusers' scripts/convert_ltx_to_diffusers.py).
LTX_DYNAMIC_SCHEDULER = dict(
    use_dynamic_shifting=True,
    base_shift=0.95,
    max_shift=2.05,
    base_image_seq_len=1024,
    max_image_seq_len=4096,
    shift_terminal=0.1,
)


def tiny_ltx(root: Path | None = None, *, dynamic_shifting: bool = False):
    """LTX-Video: a one-layer transformer on packed latent tokens, its causal video VAE (here 4× space,
    4× time, 8 latent channels), T5 text (8 features).

    `dynamic_shifting=False`: FlowMatchEulerDiscreteScheduler() (as diffusers' LTX tests). True: the released
    config (use_dynamic_shifting, base/max shift 0.95/2.05 over 1024..4096 tokens, shift_terminal 0.1); the
    pipeline passes its own `sigmas` and `mu`."""
    import diffusers

    torch.manual_seed(0)
    transformer = diffusers.LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        num_layers=1,
        caption_channels=8,
    )
    vae = diffusers.AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    # per-channel latent statistics (buffers saved with the weights; the class initialises them to 0 and 1)
    vae.latents_mean.copy_(torch.linspace(-0.2, 0.2, 8))
    vae.latents_std.copy_(torch.linspace(0.5, 1.5, 8))
    sch = diffusers.FlowMatchEulerDiscreteScheduler(**(LTX_DYNAMIC_SCHEDULER if dynamic_shifting else {}))
    pipe = diffusers.LTXPipeline(
        scheduler=sch,
        vae=vae,
        text_encoder=tiny_t5_encoder(8),
        tokenizer=tiny_t5_tokenizer(max_length=128),
        transformer=transformer,
    )
    return _finish(pipe, root)


# ---- 7. Mochi -------------------------------------------------------------------------------------------


def tiny_mochi(root: Path | None = None):
    """Mochi: a one-layer asymmetric transformer, its causal VAE (8× space, 6× time, 12 latent channels
    with per-channel latents_mean/std; the VAE's group norms need 32 channels), T5 text (8 features).

    Scheduler: FlowMatchEulerDiscreteScheduler(invert_sigmas=True) (diffusers'
    scripts/convert_mochi_to_diffusers.py); the pipeline passes its own linear-quadratic `sigmas`."""
    import diffusers

    torch.manual_seed(0)
    transformer = diffusers.MochiTransformer3DModel(
        patch_size=2,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=1,
        pooled_projection_dim=8,
        in_channels=12,
        out_channels=None,
        qk_norm="rms_norm",
        text_embed_dim=8,
        time_embed_dim=4,
        activation_fn="swiglu",
        max_sequence_length=16,
    )
    # initialised to zeros (RoPE off); ones as in diffusers' Mochi tests, so positions matter
    transformer.pos_frequencies.data = transformer.pos_frequencies.new_ones(transformer.pos_frequencies.shape)
    vae = diffusers.AutoencoderKLMochi(
        latent_channels=12,
        out_channels=3,
        encoder_block_out_channels=(32,) * 4,
        decoder_block_out_channels=(32,) * 4,
        layers_per_block=(1, 1, 1, 1, 1),
    )
    sch = diffusers.FlowMatchEulerDiscreteScheduler(invert_sigmas=True)
    pipe = diffusers.MochiPipeline(
        scheduler=sch,
        vae=vae,
        text_encoder=tiny_t5_encoder(8),
        tokenizer=tiny_t5_tokenizer(max_length=256),
        transformer=transformer,
    )
    return _finish(pipe, root)


# ---- 8. Latte -------------------------------------------------------------------------------------------


def tiny_latte(root: Path | None = None, *, video_length: int = 4):
    """Latte: a one-layer spatial+temporal transformer (learned σ: 8 output channels), an SD image VAE
    (factor 2), T5 text (8 features). The transformer's temporal position embedding is fixed to
    `video_length` frames (16 in Latte-1), so a call with more than one frame must use exactly that many.

    Scheduler: DDIMScheduler with linear β 0.0001..0.02, clip_sample off, as Latte's sample_t2v.py builds it
    (its `variance_type="learned_range"` is not a DDIM parameter and is dropped; without it the pipeline
    keeps the first 4 of the transformer's 8 output channels, the ε half)."""
    import diffusers

    torch.manual_seed(0)
    transformer = diffusers.LatteTransformer3DModel(
        sample_size=8,
        num_layers=1,
        patch_size=2,
        attention_head_dim=4,
        num_attention_heads=2,
        caption_channels=8,
        in_channels=4,
        cross_attention_dim=8,
        out_channels=8,
        attention_bias=True,
        activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000,
        norm_type="ada_norm_single",
        norm_elementwise_affine=False,
        norm_eps=1e-6,
        video_length=video_length,
    )
    sch = diffusers.DDIMScheduler(
        beta_schedule="linear",
        beta_start=0.0001,
        beta_end=0.02,
        clip_sample=False,
    )
    pipe = diffusers.LattePipeline(
        tokenizer=tiny_t5_tokenizer(max_length=120),
        text_encoder=tiny_t5_encoder(8),
        vae=_tiny_vae_2d(),
        transformer=transformer,
        scheduler=sch,
    )
    return _finish(pipe, root)


# ---- 9. StableVideoDiffusion ----------------------------------------------------------------------------

# stabilityai/stable-video-diffusion-img2vid(-xt)'s scheduler_config.json: EDM-style Euler on Karras sigmas.
SVD_SCHEDULER = dict(
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    beta_end=0.012,
    interpolation_type="linear",
    num_train_timesteps=1000,
    prediction_type="v_prediction",
    sigma_max=700.0,
    sigma_min=0.002,
    steps_offset=1,
    timestep_spacing="leading",
    timestep_type="continuous",
    use_karras_sigmas=True,
)


def tiny_svd(root: Path | None = None):
    """StableVideoDiffusion (image-to-video): UNetSpatioTemporalConditionModel, AutoencoderKLTemporalDecoder
    (image encoder, 2× space, temporal decoder), CLIPVisionModelWithProjection (224 px input, 8 features) +
    CLIPImageProcessor. These models hard-code 32-group norms, so their channels are 32.

    Scheduler: SVD_SCHEDULER (EulerDiscreteScheduler, v-prediction, Karras σ in [0.002, 700])."""
    import diffusers
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = diffusers.UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 32),
        layers_per_block=1,
        sample_size=8,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=8,
        num_attention_heads=(2, 2),
        projection_class_embeddings_input_dim=3 * 4,
        addition_time_embed_dim=4,
        num_frames=4,
    )
    vae = diffusers.AutoencoderKLTemporalDecoder(
        block_out_channels=(32, 32),
        down_block_types=("DownEncoderBlock2D",) * 2,
        latent_channels=4,
        layers_per_block=1,
    )
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=8,
            projection_dim=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=224,
            intermediate_size=16,
            patch_size=56,
        )
    )
    feature_extractor = CLIPImageProcessor(crop_size=224, size=224)
    pipe = diffusers.StableVideoDiffusionPipeline(
        vae=vae,
        image_encoder=image_encoder,
        unet=unet,
        scheduler=diffusers.EulerDiscreteScheduler(**SVD_SCHEDULER),
        feature_extractor=feature_extractor,
    )
    return _finish(pipe, root)


# ---- the registry: one entry per family and scheduler variant ---------------------------------------------


def _image(height: int, width: int):
    import PIL.Image

    return PIL.Image.new("RGB", (width, height), (120, 60, 200))


# name: (builder, builder kwargs, a call like the real one at a small legal size whose latent has 3 or 4
# frames and at least 4 x 4 pixels, so that no frequency axis is degenerate; add num_inference_steps,
# generator and output_type). The table at the top says what each returns.
FAMILIES: dict[str, tuple] = {
    "animatediff": (tiny_animatediff, {}, dict(prompt="a cat", num_frames=4, height=16, width=16)),
    "animatediff_sdxl": (tiny_animatediff_sdxl, {}, dict(prompt="a cat", num_frames=4, height=16, width=16)),
    "animatediff_pag": (tiny_animatediff_pag, {}, dict(prompt="a cat", num_frames=4, height=16, width=16)),
    "text_to_video_sd": (tiny_text_to_video_sd, {}, dict(prompt="a cat", num_frames=4, height=16, width=16)),
    "cogvideox_5b": (tiny_cogvideox, dict(version="5b"), dict(prompt="a cat", num_frames=9, height=32, width=32)),
    "cogvideox_2b": (tiny_cogvideox, dict(version="2b"), dict(prompt="a cat", num_frames=9, height=32, width=32)),
    "cogvideox_1.5": (tiny_cogvideox, dict(version="1.5"), dict(prompt="a cat", num_frames=9, height=32, width=32)),
    "wan": (tiny_wan, {}, dict(prompt="a cat", num_frames=9, height=32, width=32)),
    "wan_unipc": (tiny_wan, dict(scheduler="unipc"), dict(prompt="a cat", num_frames=9, height=32, width=32)),
    "hunyuan_video": (tiny_hunyuan_video, {}, dict(prompt="a cat", num_frames=9, height=32, width=32)),
    "ltx": (tiny_ltx, {}, dict(prompt="a cat", num_frames=9, height=32, width=32)),
    "ltx_dynamic": (tiny_ltx, dict(dynamic_shifting=True), dict(prompt="a cat", num_frames=9, height=32, width=32)),
    "mochi": (tiny_mochi, {}, dict(prompt="a cat", num_frames=13, height=32, width=32)),
    "latte": (tiny_latte, {}, dict(prompt="a cat", video_length=4, height=16, width=16)),
    "svd": (tiny_svd, {}, dict(image=None, num_frames=4, height=16, width=16)),
}


def family_call(name: str, **overrides) -> dict:
    """The call kwargs of FAMILIES[name] (SVD's conditioning image drawn at the call's size), updated
    with `overrides`; add num_inference_steps, generator and output_type."""
    call = dict(FAMILIES[name][2])
    if "image" in call:
        call["image"] = _image(call["height"], call["width"])
    call.update(overrides)
    return call


def build(name: str, root: Path | None = None):
    """The tiny pipeline of family `name` (a key of FAMILIES), saved to `root` if given."""
    builder, kwargs, _ = FAMILIES[name]
    return builder(root, **kwargs)
