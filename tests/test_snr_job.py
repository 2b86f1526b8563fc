"""The ``snr`` command's library side (freqscope.snr_job) and the CLI's one mapping of parameters to flags.

The library functions must give exactly what the lower-level calls they stand for give, and every default
the CLI shows must be the one in the library's signature.
"""

import ast
import inspect
import math
import re
from pathlib import Path

import click
import pytest
import torch

from freqscope.analysis import analyze_latent, analyze_video, summarize
from freqscope.cli import PARAM_FLAGS, main, to_flags
from freqscope.cli import library_default as _default
from freqscope.dataset import run_dataset
from freqscope.devices import DEVICE_RULE
from freqscope.encode import DTYPE_RULE, PixelEncoder, VAEEncoder, load_encoder, model_dtype, per_frame
from freqscope.freeinit_job import check_freeinit_options
from freqscope.noise_schedule import DEFAULT_PRESET, SHIFT_RULE, get_schedule
from freqscope.snr_job import (
    check_clip_args,
    check_dataset_args,
    check_read,
    clip_schedule,
    is_dataset_run,
    resolve_device,
    snr_clips,
    snr_dataset_run,
    snr_schedules,
    suffixed,
)
from freqscope.video import read_video


def test_to_flags_maps_parameters_to_flags():
    assert to_flags("give `fps` or `stride`, not both") == "give --fps or --stride, not both"
    assert to_flags("`videos` missing; `edges` bad; `band_videos` x") == "--video missing; --bands bad; --band-videos x"
    assert to_flags("`from_results` reads") == "--from-results reads"
    assert to_flags("no parameter here, `Upper` kept") == "no parameter here, `Upper` kept"
    for param, flag in PARAM_FLAGS.items():
        assert to_flags(f"`{param}`") == flag


@pytest.mark.parametrize(
    "fn, name, flag",
    [
        (read_video, "frames", "--frames"),
        (read_video, "stride", "--stride"),
        (load_encoder, "encoder", "--encoder"),
        (analyze_latent, "time_scale", "--time-scale"),
        (analyze_latent, "seeds", "--seeds"),
        (run_dataset, "batch_size", "--batch-size"),
    ],
)
def test_help_shows_the_library_default(fn, name, flag):
    value = inspect.signature(fn).parameters[name].default
    assert _default(fn, name) == str(value)
    ctx = click.Context(main.commands["snr"])
    option = next(p for p in main.commands["snr"].params if flag in p.opts)
    parsed = main.commands["snr"].make_context("snr", [], resilient_parsing=True)
    assert parsed.params[option.name] is None  # unset unless given: the library's default stands
    assert f"[default: {value}" in option.get_help_record(ctx)[1]


@pytest.mark.parametrize(
    "command, flag, rule",
    [("snr", "--device", DEVICE_RULE), ("freeinit", "--dtype", DTYPE_RULE), ("snr", "--shift", SHIFT_RULE)],
)
def test_help_shows_the_library_rule(command, flag, rule):
    """A default that is a rule (None in the signature) shows as the library's words for it, unset unless given."""
    cmd = main.commands[command]
    option = next(p for p in cmd.params if flag in p.opts)
    assert cmd.make_context(command, ["--video", "x"], resilient_parsing=True).params[option.name] is None
    help_text = " ".join(option.get_help_record(click.Context(cmd))[1].split())
    assert f"[default: {rule}" in help_text


def _library_messages():
    """(module:line, text) of every string in a ``raise`` or ``warnings.warn`` outside the CLI."""
    for path in sorted((Path(__file__).parent.parent / "freqscope").glob("*.py")):  # the cli/ package aside
        for node in ast.walk(ast.parse(path.read_text())):
            call = node.exc if isinstance(node, ast.Raise) else node
            is_warn = isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "warn"
            if (isinstance(node, ast.Raise) and call is not None) or is_warn:
                for c in ast.walk(call):
                    if isinstance(c, ast.Constant) and isinstance(c.value, str):
                        yield f"{path.name}:{node.lineno}", c.value


def test_library_errors_name_parameters_the_cli_maps_to_its_flags():
    """No library error or warning names a CLI flag; each parameter it names in backquotes is a flag's."""
    messages = list(_library_messages())
    assert len(messages) > 100  # the scan sees the package's messages
    flags = {o for cmd in main.commands.values() for p in cmd.params for o in p.opts if o.startswith("--")}
    named = 0
    for where, text in messages:
        assert not re.search(r"(?<![\w-])--[a-z]", text), f"{where} names a CLI flag: {text!r}"
        for name in re.findall(r"`([a-z][a-z0-9_]*)`", text):
            named += 1
            assert to_flags(f"`{name}`") in flags, f"{where}: `{name}` maps to no flag"
    assert named > 30


def test_clip_run_checks_and_schedule():
    check_clip_args(["a.mp4"], read={"fps": 8.0})
    with pytest.raises(ValueError, match="give `videos` PATH"):
        check_clip_args([], read={})
    with pytest.raises(ValueError, match="`weighted` and `batch_size` apply to dataset runs"):
        check_clip_args(["a.mp4"], read={}, batch_size=4)
    with pytest.raises(ValueError, match="give `fps` or `stride`"):
        check_clip_args(["a.mp4"], read={"fps": 8.0, "stride": 2})
    assert clip_schedule().name == DEFAULT_PRESET
    assert clip_schedule(["animatediff"]).name == "animatediff"
    with pytest.raises(ValueError, match="several `schedules`"):
        clip_schedule(["sd", "animatediff"])


def test_freeinit_checks_name_the_parameter():
    check_freeinit_options(pipeline="p", call_kwargs={"prompt": "a cat"}, size=(128, 128), out_dir="o")
    check_freeinit_options(sample_kwargs={"num_iters": "auto", "gap_tol": 0.5})
    with pytest.raises(ValueError, match="apply with `pipeline` only"):
        check_freeinit_options(call_kwargs={"prompt": "a cat"})
    with pytest.raises(ValueError, match="apply with `pipeline` only"):
        check_freeinit_options(size=(128, 256))
    with pytest.raises(ValueError, match="`gap_tol` and `max_iters` apply with `num_iters` auto"):
        check_freeinit_options(sample_kwargs={"num_iters": 3, "max_iters": 4})
    with pytest.raises(ValueError, match="give `fps` or `stride`"):
        check_freeinit_options(read_options={"fps": 8.0, "stride": 2})


def test_edges_default_shown_from_signature():
    edges = inspect.signature(analyze_latent).parameters["edges"].default
    assert _default(analyze_latent, "edges") == ",".join(map(str, edges))


def test_resolve_device_names_the_parameter():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match=r"^`device` 'nonsense': not a device"):
        resolve_device("nonsense")
    with pytest.raises(ValueError, match=r"`device` cuda:99"):
        resolve_device("cuda:99")
    with pytest.raises(ValueError, match=r"`device` cpu:1: not supported"):
        resolve_device("cpu:1")


def test_checks_name_the_parameter():
    check_read({"fps": 8.0})
    with pytest.raises(ValueError, match="give `fps` or `stride`"):
        check_read({"fps": 8.0, "stride": 2})
    with pytest.raises(ValueError, match="`seeds` and `band_videos`"):
        check_dataset_args(["a.mp4"], read={}, seeds=2)
    with pytest.raises(ValueError, match="`results` x.csv: give a .parquet"):
        check_dataset_args(["a.mp4"], read={}, results="x.csv")
    with pytest.raises(ValueError, match="`from_results` reads a finished run"):
        check_dataset_args(["a.mp4"], read={}, from_results="r.parquet")
    with pytest.raises(ValueError, match="give `videos`"):
        check_dataset_args([], read={})


@pytest.mark.parametrize(
    "videos, kw, expected",
    [
        (["a.mp4"], {}, False),
        (["a.mp4", "clips/"], {}, False),
        (["clips/*.mp4"], {}, True),
        (["list.csv"], {}, True),
        (["LIST.TXT"], {}, True),
        (["a.mp4"], {"results": "r.parquet"}, True),
        (["a.mp4"], {"workers": 0}, True),
        (["a.mp4"], {"schedules": ("sd", "flow")}, True),
        (["a.mp4"], {"schedules": ("sd",)}, False),
        ([], {"from_results": "r.parquet"}, True),
    ],
)
def test_is_dataset_run(videos, kw, expected):
    assert is_dataset_run(videos, **kw) is expected


def test_snr_schedules_default_and_order(tmp_path):
    (default,) = snr_schedules()
    assert default.name == get_schedule(DEFAULT_PRESET).name
    assert torch.equal(default.a, get_schedule(DEFAULT_PRESET).a)
    assert [s.name for s in snr_schedules(["animatediff", "flow"])] == [
        get_schedule("animatediff").name,
        get_schedule("flow").name,
    ]
    flow3 = snr_schedules(["flow"], shift=3.0)[0]
    assert flow3.name == "flow" and torch.equal(flow3.s, get_schedule("flow", shift=3.0).s)
    assert not torch.equal(flow3.s, get_schedule("flow").s)  # the shift reached the schedule


def test_suffixed():
    assert suffixed("out/snr.json", "sd", True) == "out/snr-sd.json"
    assert suffixed("out/snr.json", "sd", False) == "out/snr.json"
    assert suffixed("-", "sd", True) == "-" and suffixed(None, "sd", True) is None


def test_snr_clips_equals_analyze_video_and_summarize(numbered_clip):
    """The job is the lower-level calls, number for number (same seed, same noise draws)."""
    sched = get_schedule("sd")
    run = snr_clips([numbered_clip, numbered_clip], sched, seed=3, read={"frames": 8}, seeds=2, band_videos=True)
    gen = torch.Generator().manual_seed(3)
    enc = PixelEncoder()
    clips = [
        analyze_video(numbered_clip, enc, sched, generator=gen, frames=8, seeds=2, radial=i == 0) for i in range(2)
    ]
    ref = summarize(clips, sched)
    assert torch.equal(run.summaries[0].snr_db, ref.snr_db)
    assert torch.equal(run.clips[1].snr.sampled_db_mean, clips[1].snr.sampled_db_mean)
    assert run.clips[0].z0 is not None and run.clips[1].z0 is None
    assert run.rank == 0 and run.dataset is None and isinstance(run.encoder, PixelEncoder)
    assert run.clips[0].encoder["frames_used"] == 8


def test_encoder_info_is_not_changed_by_encoding():
    enc = PixelEncoder()
    before = enc.info.to_dict()
    enc(torch.zeros(1, 3, 5, 8, 8))
    assert enc.info.to_dict() == before and enc.info.frames_used is None
    assert enc.info_for(5).frames_used == 5


def test_video_vae_frames_used_is_one_plus_k_r(vaes):
    enc = load_encoder(vae=str(vaes["cogvideox"]))
    assert isinstance(enc, VAEEncoder) and enc.info.temporal_compression == 4
    assert [enc.frames_used(t) for t in (1, 4, 5, 8, 9, 10)] == [1, 1, 5, 5, 9, 9]
    with pytest.warns(UserWarning, match="using the first 5 of 8 frames"):
        z = enc(torch.zeros(1, 3, 8, 16, 16))
    assert z.shape[2] == 2 and enc.info.frames_used is None and enc.info_for(8).frames_used == 5


def test_per_frame_equals_a_loop_over_frames():
    x = torch.randn(2, 3, 5, 4, 6, generator=torch.Generator().manual_seed(0))
    fn = lambda f: torch.cat([f.mean(1, keepdim=True), f[:, :1] ** 2], dim=1)  # noqa: E731
    out = per_frame(fn, x, batch_size=3)
    ref = torch.stack([fn(x[:, :, i]) for i in range(x.shape[2])], dim=2)
    assert out.shape == (2, 2, 5, 4, 6) and torch.equal(out, ref)
    seen = []
    per_frame(lambda f: seen.append(len(f)) or f, x, batch_size=4)
    assert seen == [4, 4, 2] and math.fsum(seen) == 10


def test_model_dtype():
    assert model_dtype("cpu") == torch.float32 and model_dtype(torch.device("cuda", 0)) == torch.float16


def test_library_errors_name_parameters_the_cli_shows_flags():
    from freqscope.bands import parse_edges
    from freqscope.noise_schedule import get_schedule as schedule

    with pytest.raises(ValueError, match="^`edges` 'a,b': expected") as e:
        parse_edges("a,b")
    assert to_flags(str(e.value)).startswith("--bands 'a,b': expected")
    with pytest.raises(ValueError, match="^`shift` applies to flow matching") as e:
        schedule("sd", shift=2.0)
    assert to_flags(str(e.value)).startswith("--shift applies to flow matching")
    with pytest.raises(ValueError, match="^`vae` was given with `encoder` pixel") as e:
        load_encoder("pixel", vae="x")
    assert to_flags(str(e.value)) == "--vae was given with --encoder pixel; drop one of them"


def test_dataset_run_refuses_results_that_are_an_input(tmp_path):
    # The one output policy (io.check_outputs) guards library callers too: the same file by name or by link.
    clip = tmp_path / "run.parquet"
    clip.write_bytes(b"not empty")
    link = tmp_path / "link.parquet"
    link.symlink_to(clip)
    for results in (clip, link):
        with pytest.raises(ValueError, match="`results` .* is an input"):
            snr_dataset_run([str(clip)], [get_schedule()], results=str(results))
    assert clip.read_bytes() == b"not empty"
