"""The ``compare`` job: where a model's videos, or a processing of real clips, differ from real ones in the spectrum.

Two modes (:func:`compare`):

- **sets** (``real``, ``generated``): two sets of clips, each folders, globs, lists or results files of a dataset
  run. Each clip becomes the row every ``snr`` run makes (:func:`~freqscope.rows.latent_rows`, with its compact
  spectra); a results file gives its rows without decoding. :func:`~freqscope.compare.compare_sets` compares
  the sets with bootstrap CIs over clips, and the periodic detector looks at the generated set's frame-to-frame
  change and gradient profiles.
- **paired** (``reference`` with ``test`` or a ``vae``): frame-aligned pairs, two videos or two folders of
  same-named videos, or each reference clip and its VAE round trip (:mod:`freqscope.roundtrip`).
  :func:`~freqscope.compare.compare_pairs` gives gain, coherence and PSNR per band and the error per frame;
  the periodic detector looks at the error by frame, by row and by column.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .bands import DEFAULT_EDGES
from .compare import PairAccumulator, compare_sets
from .dataset import run_dataset
from .devices import resolve_device
from .encode import load_encoder
from .inputs import check_sources
from .periodic import find_periods, match_structure
from .results import read_results
from .roundtrip import load_roundtrip
from .rows import read_options
from .spectra import spectrum_grid
from .video import list_videos, read_video

__all__ = ["CompareRun", "compare", "set_rows", "pair_paths", "MODES"]

MODES = ("sets", "paired")
#: The columns a comparison of sets reads from a results file (nothing else is decoded).
SET_COLUMNS = [
    "status",
    "error",
    "settings_json",
    "weight",
    "latent_shape",
    "band_names",
    "n_bins",
    "band_power",
    "spectrum",
    "frame_mean",
    "frame_change",
    "row_grad",
    "col_grad",
]


@dataclass
class CompareRun:
    """What a comparison found, for every report."""

    mode: str  # "sets" or "paired"
    result: Any  # compare.SetComparison or compare.PairComparison
    periodic: list[dict]  # {axis, period, strength_db, ...}, empty when nothing is found
    settings: dict  # how the clips were read and analysed
    sources: dict[str, list[str]]  # {"real": ..., "generated": ...} or {"reference": ..., "test": ...}
    counts: dict[str, int]  # clips (or pairs) per side
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line error)
    structure: dict | None = None  # what the VAE's config names (paired with a VAE)
    vae: dict | None = None  # the round trip's info
    temporal: dict | None = None  # paired: {f, delta_db, ci_db} of the test's temporal spectrum over the reference's


def compare(
    *,
    real: Sequence[str] = (),
    generated: Sequence[str] = (),
    reference: Sequence[str] = (),
    test: Sequence[str] = (),
    vae: str | None = None,
    read: dict | None = None,
    analysis: dict | None = None,
    encoder: dict | None = None,
    workers: int | None = None,
    n_boot: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: Callable | None = None,
) -> CompareRun:
    """Compare two sets (``real``, ``generated``) or frame-aligned pairs (``reference`` with ``test`` or ``vae``).

    ``read``: :func:`~freqscope.video.read_video`'s options; ``analysis``: the bands (``edges``, ``decomposition``,
    ``time_scale``); ``encoder``: :func:`~freqscope.encode.load_encoder`'s options for sets (pixel space by
    default, a VAE's latent space with ``vae``); in the paired mode ``vae`` (with ``encoder``'s ``vae_subfolder``,
    ``vae_tiling``, ``dtype``) makes the test clips the VAE's round trips of the references."""
    read, analysis, encoder = dict(read or {}), dict(analysis or {}), dict(encoder or {})
    device = resolve_device(device)
    sets, pairs = bool(real or generated), bool(reference or test)
    if sets == pairs:
        raise ValueError(
            "give `real` and `generated` (two sets) or `reference` with `test` or `vae` (pairs), not both or neither"
        )
    boot = {} if n_boot is None else {"n_boot": n_boot}
    if sets:
        if not (real and generated):
            raise ValueError("a comparison of sets needs both `real` and `generated`")
        if vae is not None:
            encoder["vae"] = vae
        return _compare_sets(real, generated, read, analysis, encoder, workers or 0, boot, seed, device, progress)
    if workers is not None or n_boot is not None:
        raise ValueError("`workers` and `n_boot` are for two sets (`real`, `generated`); pairs are read in turn")
    if test and vae is not None:
        raise ValueError("give `test` or `vae`, not both: `vae` makes the test clips the references' round trips")
    if not test and vae is None:
        raise ValueError("a paired comparison needs `test` (videos) or `vae` (the references' round trips)")
    return _compare_pairs(reference, test, vae, read, analysis, encoder, device, progress)


# ---- sets ----------------------------------------------------------------------------------------------------


def _is_results(source: str) -> bool:
    return str(source).lower().endswith(".parquet")


def set_rows(
    sources: Sequence[str],
    what: str,
    *,
    read: dict,
    analysis: dict,
    encoder: dict,
    workers: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable | None = None,
) -> tuple[list[dict], dict, list[tuple[str, str]]]:
    """The rows of one set, its settings and its unreadable clips: read from results files, or made by a dataset
    run over clips (folders, globs, lists), kept in memory."""
    sources = [str(s) for s in sources]
    files = [s for s in sources if _is_results(s)]
    if files and len(files) < len(sources):
        raise ValueError(f"`{what}`: give results files or clips, not both")
    if files:
        return _rows_from_results(files, what)
    check_sources(sources)
    enc = load_encoder(device=device, **encoder)
    run = run_dataset(sources, enc, read=read, **analysis, workers=workers, device=device, progress=progress)
    rows = [r for r in run.rows if r.get("status") == "ok"]
    return rows, run.settings, list(run.errors)


def _rows_from_results(files: list[str], what: str) -> tuple[list[dict], dict, list[tuple[str, str]]]:
    rows, skipped, settings = [], [], set()
    for f in files:
        if not Path(f).exists():
            raise FileNotFoundError(
                f"`{what}`: results file {f} not found; make it first with a dataset run (`results` {f})"
            )
        for r in read_results(f, columns=SET_COLUMNS).to_pylist():
            if r["status"] != "ok":
                skipped.append((r["path"], r["error"] or "error"))
                continue
            if r["spectrum"] is None:
                raise ValueError(
                    f"`{what}`: {f} holds rows without spectra (analysed by a freqscope before 0.5); "
                    "analyse the clips again into a new results file"
                )
            settings.add(r["settings_json"])
            rows.append(r)
    if len(settings) > 1:
        raise ValueError(
            f"`{what}`: the results hold clips analysed with {len(settings)} different settings (frames, size, "
            "encoder, bands); compare one setting at a time"
        )
    return rows, (json.loads(settings.pop()) if settings else {}), skipped


def _same_analysis(a: dict, b: dict) -> None:
    """Refuse sets analysed differently (another encoder, other bands or frame counts): their spectra differ
    by the analysis, not by the clips."""
    for key, words in (("encoder", "encoders"), ("bands", "bands")):
        if a.get(key) != b.get(key) and a.get(key) is not None and b.get(key) is not None:
            raise ValueError(
                f"`real` and `generated` were analysed with different {words} ({a.get(key)} vs {b.get(key)}); "
                "analyse both the same way"
            )


def _compare_sets(real, generated, read, analysis, encoder, workers, boot, seed, device, progress) -> CompareRun:
    kw = dict(read=read_options(read), analysis=analysis, encoder=encoder, workers=workers, device=device)
    real_rows, real_settings, skipped_a = set_rows(real, "real", progress=progress, **kw)
    gen_rows, gen_settings, skipped_b = set_rows(generated, "generated", progress=progress, **kw)
    _same_analysis(real_settings, gen_settings)
    bands = real_settings.get("bands") or {}
    result = compare_sets(
        real_rows,
        gen_rows,
        edges=tuple(bands.get("edges", analysis.get("edges", DEFAULT_EDGES))),
        decomposition=bands.get("decomposition", analysis.get("decomposition", "spatiotemporal")),
        time_scale=bands.get("time_scale", analysis.get("time_scale", 1.0)),
        seed=seed,
        **boot,
    )
    return CompareRun(
        mode="sets",
        result=result,
        periodic=set_periods(real_rows, gen_rows),
        settings=gen_settings,
        sources={"real": list(map(str, real)), "generated": list(map(str, generated))},
        counts={"real": len(real_rows), "generated": len(gen_rows)},
        skipped=skipped_a + skipped_b,
    )


#: Per-clip statistics of a row → the axis a period along them lies on.
SET_SIGNALS = {"frame_change": "time", "row_grad": "height", "col_grad": "width"}


def _mean_signal(rows: list[dict], key: str) -> torch.Tensor | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    if not values or len({len(v) for v in values}) > 1:
        return None
    return torch.tensor(values, dtype=torch.float64).mean(0)


def set_periods(real_rows: list[dict], gen_rows: list[dict]) -> list[dict]:
    """Periodic peaks of the generated set's mean frame-to-frame change and gradient profiles; each says whether
    the real set shows the same period (``in_real``: then the content has it, not the model)."""
    found = []
    for key, axis in SET_SIGNALS.items():
        gen, real = _mean_signal(gen_rows, key), _mean_signal(real_rows, key)
        if gen is None:
            continue
        real_periods = {p.period for p in find_periods(real, axis=axis)} if real is not None else set()
        for peak in find_periods(gen, axis=axis):
            found.append({**peak.to_dict(), "signal": key, "in_real": peak.period in real_periods})
    return found


# ---- pairs ---------------------------------------------------------------------------------------------------


def pair_paths(reference: Sequence[str], test: Sequence[str]) -> list[tuple[Path, Path | None]]:
    """Reference and test clips, paired: two files, or two folders matched by file name (every reference needs
    its test); without ``test``, each reference alone (its test is made from it)."""
    refs = [Path(r) for r in reference]
    if not test:
        return [(p, None) for p in list_videos([str(r) for r in refs])]
    tests = [Path(t) for t in test]
    if len(refs) != len(tests):
        raise ValueError(f"give as many `test` as `reference` paths ({len(tests)} vs {len(refs)})")
    pairs: list[tuple[Path, Path | None]] = []
    for r, t in zip(refs, tests):
        if r.is_dir() != t.is_dir():
            raise ValueError(f"pair a folder with a folder and a file with a file ({r} vs {t})")
        if not r.is_dir():
            pairs += [(q, u) for q, u in zip(list_videos([str(r)]), list_videos([str(t)]))]
            continue
        ref_files, test_files = {p.name: p for p in list_videos([str(r)])}, {p.name: p for p in list_videos([str(t)])}
        missing = sorted(set(ref_files) - set(test_files))
        if missing:
            raise ValueError(
                f"{len(missing)} reference clip(s) of {r} have no same-named clip in {t} (first: {missing[0]}); "
                "name each test clip as its reference"
            )
        pairs += [(ref_files[n], test_files[n]) for n in sorted(ref_files)]
    return pairs


def _compare_pairs(reference, test, vae, read, analysis, encoder, device, progress) -> CompareRun:
    read = read_options(read)
    pairs = pair_paths(reference, test)
    trip = None
    if vae is not None:
        opts = {"subfolder": encoder.get("vae_subfolder"), "dtype": encoder.get("dtype")}
        trip = load_roundtrip(vae, device=device, tiling=bool(encoder.get("vae_tiling")), **opts)
    bar = progress(total=len(pairs), desc="pairs", unit="pair") if progress and len(pairs) > 1 else None
    acc = PairAccumulator(**_band_kwargs(analysis))
    try:
        for ref_path, test_path in pairs:  # one pair in memory at a time
            x, y = _read_pair(ref_path, test_path, trip, read)
            acc.add(x, y)  # its FFTs give the bands and the temporal power (acc.power_t)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    result = acc.result()
    structure = trip.structure if trip is not None else None
    periodic = pair_periods(result, structure)
    settings = {"read": read, "bands": _band_kwargs(analysis), "space": "pixel"}
    sources = {"reference": [str(p) for p, _ in pairs]}
    sources |= {"vae": [vae]} if vae is not None else {"test": [str(q) for _, q in pairs]}
    return CompareRun(
        mode="paired",
        result=result,
        periodic=periodic,
        settings=settings,
        sources=sources,
        counts={"pairs": len(pairs)},
        structure=structure,
        vae=trip.info if trip is not None else None,
        temporal=pair_temporal(acc.power_t[0], acc.power_t[1], T=result.shape[1]),
    )


def pair_temporal(reference: torch.Tensor, test: torch.Tensor, *, T: int) -> dict:
    """``{f, delta_db, ci_db}``: the test's temporal power (``PairAccumulator.power_t``: mean ``|F x|²`` over the
    bins of each ``|f_t|``, summed over the pairs) over the reference's, dB (no CI: one sum over the pairs)."""
    f, _ = spectrum_grid(T)
    delta = 10 * torch.log10(test / reference)
    return {"f": f.tolist(), "delta_db": delta.tolist(), "ci_db": [None] * len(f)}


def _read_pair(ref_path: Path, test_path: Path | None, trip: Any, read: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """A reference clip and its test clip (read at the reference's frame size), or its VAE round trip."""
    x, _ = read_video(ref_path, **read)
    if trip is not None:
        return trip(x)
    assert test_path is not None
    y, _ = read_video(test_path, **{**read, "size": tuple(x.shape[-2:])})
    if y.shape != x.shape:
        raise ValueError(
            f"{test_path} gives {y.shape[2]} frames where {ref_path} gives {x.shape[2]}; "
            "pairs must be frame-aligned (same frame count from `start`)"
        )
    return x, y


def _band_kwargs(analysis: dict) -> dict:
    return {
        "edges": tuple(analysis.get("edges", DEFAULT_EDGES)),
        "decomposition": analysis.get("decomposition", "spatiotemporal"),
        "time_scale": analysis.get("time_scale", 1.0),
    }


#: A pair comparison's error profiles → the axis a period along them lies on.
PAIR_SIGNALS = {"frame_error": "time", "row_error": "height", "col_error": "width"}


def pair_periods(result: Any, structure: dict | None) -> list[dict]:
    """Periodic peaks of the error by frame, by row and by column; matched to what the VAE's config names."""
    peaks = []
    for key, axis in PAIR_SIGNALS.items():
        signal = getattr(result, key, None)
        if signal is not None:
            peaks += find_periods(torch.as_tensor(signal, dtype=torch.float64), axis=axis)
    if structure:
        return match_structure(peaks, structure)
    return [p.to_dict() for p in peaks]
