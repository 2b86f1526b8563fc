"""Device discipline (docs/architecture.md, Devices; issue 16), checked "on CUDA" on a CPU-only machine.

Under :func:`fake_cuda.fake_cuda` models and tensors put on ``cuda`` say so, and a device mix or a ``.numpy()``
of a device tensor fails as on a GPU. Each command of the issue runs there with ``--device cuda``, ``--plot``
and ``--json``: ``snr`` with a VAE (one clip, two clips, a dataset) and ``freeinit`` (a pipeline and the
reference model); where the library is called, every tensor of the result must be on the CPU.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fake_cuda import fake_cuda

from conftest import tiny_vaes, write_clip
from freqscope.cli import main

# ---- what the results may hold -----------------------------------------------------------------------------


def device_tensors(obj, where: str = "result") -> list[str]:
    """Where in ``obj`` (dataclasses, lists, tuples, dicts) a tensor is not on the CPU; read under the harness.
    Models, schedulers and encoders (not dataclasses) are not results and are not walked."""
    if isinstance(obj, torch.Tensor):
        return [f"{where} on {obj.device}"] if obj.device.type != "cpu" else []
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [p for f in dataclasses.fields(obj) for p in device_tensors(getattr(obj, f.name), f"{where}.{f.name}")]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in device_tensors(v, f"{where}[{i}]")]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in device_tensors(v, f"{where}[{k!r}]")]
    return []


# ---- fixtures: tiny clips, a tiny VAE, a tiny pipeline ----------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("device_clips")
    rng = np.random.default_rng(0)
    return [write_clip(folder / f"c{i}.mp4", rng.integers(0, 256, (9, 32, 32, 3), dtype=np.uint8)) for i in (0, 1)]


@pytest.fixture(scope="module")
def kl_vae(tmp_path_factory) -> Path:
    return tiny_vaes(tmp_path_factory.mktemp("device_vaes"))["kl"]


@pytest.fixture(scope="module")
def wan(tmp_path_factory) -> Path:
    from tiny_pipelines import build

    root = tmp_path_factory.mktemp("device_pipes") / "wan"
    build("wan", root)
    return root


def cli(*args) -> None:
    """``freqscope ARGS --device cuda -q`` in this process, under the harness; any error fails the test."""
    with fake_cuda():
        r = CliRunner().invoke(main, [*map(str, args), "--device", "cuda", "-q"])
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    assert r.exit_code == 0, r.output


PIPELINE = "--prompt a --frames 9 --height 16 --width 16 --steps 4 --num-iters 2".split()


# ---- the harness itself: it catches what a GPU would --------------------------------------------------------


def test_harness_catches_device_mixes_and_numpy():
    with fake_cuda():
        x = torch.zeros(3, device="cuda")
        assert torch.cuda.is_available() and x.device == torch.device("cuda", 0) and (x * 2).is_cuda
        assert (x + torch.tensor(1.0)).is_cuda  # a 0-dim CPU tensor mixes, as on CUDA
        with pytest.raises(RuntimeError, match="same device"):
            x + torch.ones(3)
        with pytest.raises(RuntimeError, match="same device"):
            torch.stack([x, torch.ones(3)])
        with pytest.raises(TypeError, match="cuda:0 device type tensor to numpy"):
            x.numpy()
        with pytest.raises(TypeError, match="numpy"):
            np.asarray(x + 1)
        back = x.cpu()
        assert back.device.type == "cpu" and back.numpy().shape == (3,) and x.to("cpu").device.type == "cpu"
        lin = torch.nn.Linear(3, 2).to("cuda")  # a model's parameters move
        assert lin.weight.device.type == "cuda" and lin(x).is_cuda
        with pytest.raises(RuntimeError, match="same device"):
            lin(torch.ones(3))
        g = torch.Generator("cuda").manual_seed(0)
        assert g.device.type == "cuda" and torch.randn(2, generator=g, device="cuda").is_cuda
        with pytest.raises(RuntimeError, match="generator"):
            torch.randn(2, generator=torch.Generator().manual_seed(0), device="cuda")
    assert not torch.cuda.is_available() and torch.Generator is torch._C.Generator  # all undone


def test_harness_shows_the_plot_gap_crash_of_issue_16(tmp_path):
    """``plot_gap`` given gaps left on the GPU fails as the issue says (``.numpy()`` of a CUDA tensor)."""
    from freqscope.bands import make_bands
    from freqscope.freeinit_job import run_reference
    from freqscope.freeinit_report import plot_gap

    run = run_reference(torch.randn(1, 3, 4, 8, 8), num_iters=2, num_inference_steps=2)
    with fake_cuda():
        for r in run.runs:
            r.gap_db = r.gap_db.to("cuda")
        with pytest.raises(TypeError, match="numpy"):
            plot_gap(make_bands((4, 8, 8), (0.25, 0.5)), run.runs, tmp_path / "g.png")


# ---- snr with a VAE: one clip, two clips, a dataset ---------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2])
def test_snr_vae_cli_on_cuda(clips, kl_vae, tmp_path, n):
    j, p, c = tmp_path / "s.json", tmp_path / "s.png", tmp_path / "s.csv"
    videos = [a for clip in clips[:n] for a in ("--video", clip)]
    cli("snr", *videos, "--vae", kl_vae, "--frames", 4, "--json", j, "--plot", p, "--csv", c)
    d = json.loads(j.read_text())
    assert d["n_clips"] == n and d["encoder"]["name"] == "vae" and p.read_bytes()[:4] == b"\x89PNG"


def test_snr_vae_results_are_cpu_tensors(clips, kl_vae, tmp_path):
    """The encoder runs on the device; the clips' SNR, the summary and the kept latent come back on the CPU
    (today: ``ClipResult.snr``, its bands and ``z0`` stayed on the latent's device)."""
    from freqscope.report import plot_snr, write_band_videos, write_csv, write_json
    from freqscope.snr_job import clip_schedule, snr

    with fake_cuda():
        run = snr(
            [str(c) for c in clips],
            [clip_schedule()],
            read={"frames": 4},
            seeds=2,
            encoder={"vae": str(kl_vae)},
            device="cuda",
        )
        assert run.encoder.device.type == "cuda"  # the model did run on the device
        assert device_tensors(run.summaries, "summaries") == []
        assert device_tensors(run.clips, "clips") == []
        write_json(run.summaries[0], tmp_path / "s.json")
        write_csv(run.summaries[0], tmp_path / "s.csv")
        plot_snr(run.summaries[0], tmp_path / "s.png")
    with fake_cuda():  # band videos: the kept latent, decoded on the device
        run = snr(
            [str(clips[0])],
            [clip_schedule()],
            read={"frames": 4},
            band_videos=True,
            encoder={"vae": str(kl_vae)},
            device="cuda",
        )
        first = run.clips[0]
        assert first.z0 is not None and device_tensors(first, "clip") == []
        assert write_band_videos(first.z0, first.bands, tmp_path, decode=run.encoder.decode)


def test_band_snr_of_a_device_latent_is_on_the_cpu():
    """band_snr (closed form and real noise draws) measures on the latent's device, returns CPU tensors."""
    from freqscope.bands import make_bands
    from freqscope.noise_schedule import get_schedule
    from freqscope.snr import band_snr

    with fake_cuda():
        z0 = torch.randn(1, 4, 4, 8, 8).to("cuda")
        bands = make_bands((4, 8, 8), (0.25, 0.5), device="cuda")
        res = band_snr(z0, bands, get_schedule("sd"), seeds=2, generator=torch.Generator().manual_seed(0))
        assert device_tensors(res) == [] and res.sampled_db_mean is not None


def test_snr_dataset_with_vae_on_cuda(clips, kl_vae, tmp_path):
    j, p = tmp_path / "d.json", tmp_path / "d.png"
    results = tmp_path / "r.parquet"
    cli(
        "snr",
        "--video",
        clips[0].parent,
        "--results",
        results,
        "--vae",
        kl_vae,
        "--frames",
        4,
        *("--json", j),
        *("--plot", p),
    )
    assert json.loads(j.read_text())["n_clips"] == 2 and p.read_bytes()[:4] == b"\x89PNG"

    from freqscope.snr_job import clip_schedule, snr

    with fake_cuda():
        run = snr(
            [str(clips[0].parent)],
            [clip_schedule()],
            read={"frames": 4},
            dataset={"results": str(results)},
            encoder={"vae": str(kl_vae)},
            device="cuda",
        )
        assert run.dataset is not None and run.dataset.resumed == 2  # resumed from the run above
        assert device_tensors(run.summaries, "summaries") == []


# ---- compare: sets in a VAE's latent space, pairs through a VAE's round trip --------------------------------------


def test_compare_sets_in_a_vae_latent_space_on_cuda(clips, kl_vae, tmp_path):
    j = tmp_path / "c.json"
    cli("compare", "--real", clips[0], "--generated", clips[1], "--vae", kl_vae, "--frames", 4, "--json", j,
        "--plot", tmp_path / "c.png", "--bootstrap", 50)
    d = json.loads(j.read_text())
    assert d["mode"] == "sets" and all(np.isfinite([b["delta_db"] for b in d["bands"] if b["n_bins"]]))


def test_compare_pairs_through_a_vae_on_cuda(clips, kl_vae, tmp_path):
    """The VAE runs on the device; the pairs' FFTs and error sums come back to the CPU accumulator."""
    j = tmp_path / "p.json"
    cli("compare", "--reference", clips[0].parent, "--vae", kl_vae, "--frames", 4, "--json", j,
        "--plot", tmp_path / "p.png", "--csv", tmp_path / "p.csv")
    d = json.loads(j.read_text())
    assert d["mode"] == "paired" and d["counts"]["pairs"] == 2 and len(d["frames"]["error"]) == 4


def test_pair_accumulator_takes_device_clips_and_keeps_cpu_sums():
    from freqscope.compare import PairAccumulator

    g = torch.Generator().manual_seed(0)
    ref = torch.rand(2, 3, 4, 16, 16, generator=g) * 2 - 1
    test = ref + 0.1 * torch.randn(ref.shape, generator=g)
    on_cpu = PairAccumulator()
    on_cpu.add(ref, test)
    with fake_cuda():
        acc = PairAccumulator()
        acc.add(ref.to("cuda"), test.to("cuda"))
        result = acc.result()
        assert device_tensors(vars(acc), "accumulator") == [] and device_tensors(result) == []
    assert result.bands == on_cpu.result().bands and result.frame_error == on_cpu.result().frame_error


# ---- freeinit: a pipeline and the reference model ------------------------------------------------------------


def test_freeinit_pipeline_cli_plot_and_json_on_cuda(clips, wan, tmp_path):
    """Issue 16: ``freeinit --plot`` with a pipeline on CUDA raised in ``plot_gap`` (gaps left on the GPU)."""
    j, p = tmp_path / "f.json", tmp_path / "f.png"
    cli("freeinit", "--video", clips[0], "--pipeline", wan, *PIPELINE, "--out-dir", tmp_path, "--plot", p, "--json", j)
    d = json.loads(j.read_text())
    assert len(d["runs"][0]["gap_db"]) == 2 and len(d["videos"]) == 2 and p.read_bytes()[:4] == b"\x89PNG"


def test_freeinit_pipeline_results_are_cpu_tensors(clips, wan, tmp_path):
    """The pipeline samples on the device; the clip's band power, every gap, every pass latent and the mask come
    back on the CPU (today all of them stayed on the GPU)."""
    from freqscope.freeinit_job import run_freeinit
    from freqscope.freeinit_report import plot_gap, run_to_dict

    with fake_cuda():
        run = run_freeinit(
            str(clips[0]),
            pipeline=str(wan),
            device="cuda",
            read_options={"frames": 9},
            height=16,
            width=16,
            num_iters=2,
            num_inference_steps=4,
            call_kwargs={"prompt": "a"},
            out_dir=str(tmp_path),
        )
        assert device_tensors(run, "run") == []
        plot_gap(run.bands, run.runs, tmp_path / "g.png")
        assert json.dumps(run_to_dict(run))
    from freqscope.video import read_video

    x, _ = read_video(tmp_path / "freeinit_pass1.mp4")
    assert x.shape[-2:] == (16, 16)


def test_decoded_pass_videos_are_kept_as_uint8_on_the_cpu():
    """ConsistencyObserver measures a pass's video where it is decoded and keeps it as 8-bit pixels on the CPU
    (today: float32 on the GPU, ~388 MB per pass for Wan at 480×832×81)."""
    from freqscope.freeinit_job import ConsistencyObserver

    with fake_cuda():
        video = torch.rand(1, 3, 4, 8, 8).to("cuda") * 2 - 1
        cons = ConsistencyObserver(decode=lambda z: video, uint8=True)
        cons({"stage": "end", "x": torch.randn(1, 4, 4, 2, 2).to("cuda")})
        (kept,) = cons.videos
        assert kept.device.type == "cpu" and kept.dtype == torch.uint8 and kept.shape == video.shape
        assert torch.equal(kept, ((video.cpu() + 1) * 127.5).round().to(torch.uint8))
        assert "pixel_frame_cosine" in cons.metrics[0]


def test_freeinit_reference_cli_on_cuda(clips, tmp_path):
    j, p = tmp_path / "r.json", tmp_path / "r.png"
    args = "--size 16 --frames 4 --steps 4 --num-iters 2".split()
    cli("freeinit", "--video", clips[0], *args, "--plot", p, "--json", j)
    d = json.loads(j.read_text())
    assert d["scheduler"]["class"] == "DDIMScheduler" and len(d["runs"][0]["gap_db"]) == 2


def test_freeinit_pipeline_with_model_offload_and_vae_tiling_on_cuda(clips, wan, tmp_path):
    """Under model offload the VAE's weights sit on the CPU until diffusers' hook moves them: freqscope hands it
    its frames on the pipeline's execution device (it used the weights' device: frames and weights apart)."""
    j, p = tmp_path / "o.json", tmp_path / "o.png"
    cli("freeinit", "--video", clips[0], "--pipeline", wan, *PIPELINE, "--offload", "model", "--vae-tiling",
        "--plot", p, "--json", j)  # fmt: skip
    assert len(json.loads(j.read_text())["runs"][0]["gap_db"]) == 2


def test_offload_applies_with_a_pipeline_only(clips):
    from freqscope.freeinit_job import run_freeinit

    with pytest.raises(ValueError, match="`offload` apply with `pipeline` only"):
        run_freeinit(str(clips[0]), offload="model")


def test_a_vae_batch_that_does_not_fit_goes_one_clip_at_a_time_with_the_cache_freed(clips, kl_vae, monkeypatch):
    """A video VAE runs out of GPU memory on a batch of clips: the cache is freed and the clips go one at a time
    (the rows equal a batch-of-one run's); a single clip that does not fit stops the run with the error, rather
    than every clip after it being skipped as unreadable."""
    from freqscope.dataset import run_dataset
    from freqscope.encode import load_encoder

    with fake_cuda():
        enc = load_encoder(vae=str(kl_vae), device="cuda")
        encode, freed = enc._encode, []

        def small_gpu(x, **kw):
            if x.shape[0] > 1:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")
            return encode(x, **kw)

        monkeypatch.setattr(enc, "_encode", small_gpu)
        monkeypatch.setattr(torch.cuda, "empty_cache", lambda: freed.append(True))
        rows = run_dataset([clips[0].parent], enc, read={"frames": 4}, batch_size=2, device="cuda").rows
        one = run_dataset([clips[0].parent], enc, read={"frames": 4}, batch_size=1, device="cuda").rows
        assert [r["status"] for r in rows] == ["ok", "ok"] and freed == [True]
        np.testing.assert_array_equal([r["band_power"] for r in rows], [r["band_power"] for r in one])
        monkeypatch.setattr(enc, "_encode", lambda x, **kw: small_gpu(torch.cat([x, x]), **kw))  # nothing fits
        with pytest.raises(torch.OutOfMemoryError):
            run_dataset([clips[0].parent], enc, read={"frames": 4}, batch_size=1, device="cuda")
