"""Tiny randomly initialised diffusers video pipelines built from config (no download), saved and loaded back."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def tiny_tokenizer(root: Path):
    """A CLIP tokenizer with a handful of tokens (unknown words map to <|endoftext|>)."""
    from transformers import CLIPTokenizer

    root.mkdir(parents=True, exist_ok=True)
    words = ["<|startoftext|>", "<|endoftext|>", "a</w>", "boat</w>", "cat</w>", "the</w>", "on</w>", "sea</w>"]
    (root / "vocab.json").write_text(json.dumps({w: i for i, w in enumerate(words)}))
    (root / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(
        str(root / "vocab.json"), str(root / "merges.txt"), unk_token="<|endoftext|>", model_max_length=77
    )


def tiny_animatediff(root: Path | None = None, *, scheduler: str = "ddim", text: bool = True):
    """AnimateDiff with a 2-block UNet + motion adapter (cross-attention dim 8), a tiny VAE (factor 2)."""
    import diffusers

    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8,
        norm_num_groups=4,
        attention_head_dim=2,
    )
    motion = diffusers.MotionAdapter(
        block_out_channels=(8, 16),
        motion_layers_per_block=1,
        motion_norm_num_groups=4,
        motion_num_attention_heads=2,
        motion_max_seq_length=32,
    )
    vae = diffusers.AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=4,
        latent_channels=4,
        sample_size=16,
    )
    cfg = {"beta_schedule": "linear", "beta_start": 0.00085, "beta_end": 0.012, "steps_offset": 1}
    if scheduler == "ddim":
        sch = diffusers.DDIMScheduler(**cfg, clip_sample=False)
    elif scheduler == "euler":
        sch = diffusers.EulerDiscreteScheduler(**cfg)
    else:
        raise ValueError(scheduler)
    tok = enc = None
    if text:
        from transformers import CLIPTextConfig, CLIPTextModel

        tok = tiny_tokenizer((root or Path("/tmp")) / "_tok")
        enc = CLIPTextModel(
            CLIPTextConfig(
                hidden_size=8,
                intermediate_size=16,
                num_attention_heads=2,
                num_hidden_layers=1,
                vocab_size=16,
                max_position_embeddings=77,
                projection_dim=8,
            )
        )
    pipe = diffusers.AnimateDiffPipeline(
        unet=unet,
        motion_adapter=motion,
        vae=vae,
        scheduler=sch,
        text_encoder=enc,
        tokenizer=tok,
        feature_extractor=None,
        image_encoder=None,
    )
    pipe.set_progress_bar_config(disable=True)
    if root is not None:
        pipe.save_pretrained(root)
    return pipe


def tiny_cogvideox():
    """CogVideoX with a one-layer transformer, a tiny video VAE (8× space, 4× time) and its own scheduler:
    zero terminal SNR, v-prediction, latents in (b, t, c, h, w)."""
    import diffusers

    torch.manual_seed(0)
    transformer = diffusers.CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=8,
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
        max_text_seq_length=16,
    )
    vae = diffusers.AutoencoderKLCogVideoX(
        block_out_channels=(8,) * 4, latent_channels=4, layers_per_block=1, norm_num_groups=4
    )
    sch = diffusers.CogVideoXDDIMScheduler(
        rescale_betas_zero_snr=True,
        prediction_type="v_prediction",
        timestep_spacing="trailing",
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
    )
    pipe = diffusers.CogVideoXPipeline(
        tokenizer=None, text_encoder=None, vae=vae, transformer=transformer, scheduler=sch
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
