"""The reports of a comparison (:class:`~freqscope.compare_job.CompareRun`): one document, ``freqscope.compare/1``,
that the JSON is and the table, the CSV and the figure are read from, so that they never disagree."""

from __future__ import annotations

import csv
import io
import math
import os
from typing import Any

import numpy as np

from .compare_job import CompareRun
from .io import dumps_json, write_text
from .report import _clean, fmt_db, layout_table

__all__ = ["SCHEMA", "compare_to_dict", "format_table", "write_json", "write_csv", "plot_compare"]

SCHEMA = "freqscope.compare/1"
#: Frames whose PSNR the table lists (the JSON and CSV hold every frame).
FRAMES_SHOWN = 24


def _ci(v: Any) -> list[float] | None:
    return None if v is None else [float(v[0]), float(v[1])]


def compare_to_dict(run: CompareRun) -> dict:
    """The comparison as the JSON holds it (non-finite numbers as null)."""
    r = run.result
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "mode": run.mode,
        "sources": run.sources,
        "counts": run.counts,
        "settings": run.settings,
        "skipped": [{"path": p, "error": e} for p, e in run.skipped],
    }
    if run.mode == "sets":
        doc["bands"] = [
            {k: b[k] for k in ("name", "lo", "hi", "n_bins", "power_real", "power_generated", "delta_db")}
            | {"ci_db": _ci(b["ci_db"])}
            for b in r.bands
        ]
        doc["temporal"] = {
            "f": list(map(float, r.temporal["f"])),
            "delta_db": list(map(float, r.temporal["delta_db"])),
            "ci_db": [_ci(c) for c in r.temporal["ci_db"]],
            "power_real": r.temporal_power[0].tolist(),
            "power_generated": r.temporal_power[1].tolist(),
            "power_real_ci": r.temporal_power_ci[0].T.tolist(),
            "power_generated_ci": r.temporal_power_ci[1].T.tolist(),
        }
        doc["heatmap"] = {"f_t": r.f_t.tolist(), "f_s_edges": r.f_s_edges.tolist(), "delta_db": r.heatmap_db.tolist()}
        doc["distance_db"], doc["distance_ci_db"] = r.distance_db, _ci(r.distance_ci_db)
        doc["regions"], doc["findings"] = r.regions, r.findings
        doc["bootstrap"] = {"n_boot": r.n_boot, "seed": r.seed, "ci": r.ci}
    else:
        # Paired: Δ is the gain of test over reference; one sum over the pairs, so no CI over clips.
        doc["bands"] = [
            {k: b[k] for k in ("name", "lo", "hi", "n_bins")}
            | {"delta_db": b["gain_db"], "ci_db": None}
            | {k: b[k] for k in ("gain_db", "coherence", "psnr_db")}
            for b in r.bands
        ]
        doc["temporal"] = run.temporal
        doc["psnr_db"], doc["mse"] = r.psnr_db, r.mse
        doc["frames"] = {"error": r.frame_error, "psnr_db": r.frame_psnr_db}
        doc["profiles"] = {"row_error": r.row_error, "col_error": r.col_error}
        doc["vae"], doc["structure"] = run.vae, run.structure
    doc["periodic"] = run.periodic
    doc["notes"] = list(getattr(r, "notes", []))
    return _clean(doc)


def write_json(run: CompareRun, path: str | os.PathLike) -> None:
    write_text(path, dumps_json(compare_to_dict(run)))


def write_csv(run: CompareRun, path: str | os.PathLike) -> None:
    """One row per band, then one per temporal frequency: ``kind, name, lo, hi, delta_db, ci_lo, ci_hi`` (and
    ``gain_db, coherence, psnr_db`` when paired); empty cells where the JSON has null."""
    d = compare_to_dict(run)
    extra = ["gain_db", "coherence", "psnr_db"] if run.mode == "paired" else []
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["kind", "name", "lo", "hi", "delta_db", "ci_lo", "ci_hi", *extra])
    cell = lambda v: "" if v is None else f"{v:.6g}" if isinstance(v, float) else v  # noqa: E731
    for b in d["bands"]:
        ci = b["ci_db"] or [None, None]
        w.writerow(
            ["band", b["name"], cell(b["lo"]), cell(b["hi"]), cell(b["delta_db"]), *map(cell, ci)]
            + [cell(b[k]) for k in extra]
        )
    t = d["temporal"]
    for f, v, ci in zip(t["f"], t["delta_db"], t["ci_db"]):
        w.writerow(
            ["temporal", f"f_t={f:.6g}", cell(f), cell(f), cell(v), *map(cell, ci or [None, None])] + [""] * len(extra)
        )
    write_text(path, buf.getvalue())


def _signed(v: float | None) -> str:
    return "nan" if v is None else fmt_db(v).strip() if v <= 0 else "+" + fmt_db(v).strip()


def _ci_text(ci: list | None) -> str:
    return "" if ci is None or None in ci else f"[{_signed(ci[0])}, {_signed(ci[1])}]"


def format_table(run: CompareRun) -> str:
    """The comparison for a terminal: per band, then what it means in words, then periodic artefacts."""
    d = compare_to_dict(run)
    lines: list[str] = []
    if run.mode == "sets":
        c = run.counts
        lines.append(
            f"generated vs real: power of {c['generated']} generated clips over {c['real']} real ones, dB "
            f"(95% bootstrap CI over clips) | latent {run.result.latent_shape}"
        )
        head = ["band", "range", "Δ dB", "95% CI"]
        rows = [[b["name"], _range(b), _signed(b["delta_db"]), _ci_text(b["ci_db"])] for b in d["bands"]]
        lines += layout_table(head, rows)
        lines.append(f"spectral distance: {d['distance_db']:.2f} dB {_ci_text(d['distance_ci_db'])}")
        lines += (
            ["where the generated clips differ:"] + [f"  {f}" for f in d["findings"]]
            if d["findings"]
            else ["no difference beyond its CI in any region"]
        )
    else:
        test = "its VAE round trip" if run.vae else "the test clip"
        lines.append(f"{test} vs the reference: {run.counts['pairs']} pair(s), overall PSNR {_psnr(d['psnr_db'])}")
        head = ["band", "range", "gain dB", "coherence", "PSNR dB"]
        rows = [
            [b["name"], _range(b), _signed(b["gain_db"]), _num(b["coherence"], ".4f"), _psnr(b["psnr_db"])]
            for b in d["bands"]
        ]
        lines += layout_table(head, rows)
        err = d["frames"]["psnr_db"]
        if err:
            worst = int(np.nanargmin([math.inf if v is None else v for v in err]))
            shown = err if len(err) <= FRAMES_SHOWN else err[:FRAMES_SHOWN]
            more = "" if len(err) <= FRAMES_SHOWN else f" … ({len(err)} frames; all in the JSON)"
            lines.append(
                f"PSNR by frame: {' '.join(_psnr(v, short=True) for v in shown)}{more} "
                f"(worst: frame {worst}, {_psnr(err[worst])})"
            )
    lines += _periodic_lines(d["periodic"], run.mode)
    lines += [f"note: {n}" for n in d["notes"]]
    return "\n".join(lines)


def _range(b: dict) -> str:
    return f"{_num(b['lo'], '.3g')}–{_num(b['hi'], '.3g')}"


def _num(v: float | None, spec: str) -> str:
    return "nan" if v is None else format(v, spec)


def _psnr(v: float | None, short: bool = False) -> str:
    """PSNR in dB; null is an identical pair (no error: infinite)."""
    return "inf" if v is None else f"{v:.1f}" if short else f"{v:.2f} dB"


def _periodic_lines(peaks: list[dict], mode: str) -> list[str]:
    if not peaks:
        return ["periodic artefacts: none found"]
    unit = {"time": "frames", "height": "px (rows)", "width": "px (columns)"}
    out = ["periodic artefacts:"]
    for p in peaks:
        extra = []
        if p.get("matches"):
            extra.append(f"matches the VAE's {p['matches']}")
        elif mode == "paired" and "matches" in p:
            extra.append("matches nothing the VAE's config names")
        if p.get("in_real"):
            extra.append("the real clips show it too: content, not the model")
        tail = f" ({'; '.join(extra)})" if extra else ""
        out.append(f"  every {p['period']} {unit[p['axis']]}: {p['strength_db']:+.1f} dB{tail}")
    return out


def plot_compare(run: CompareRun, path: str | os.PathLike) -> None:
    """Sets: both temporal spectra with their CIs, and the Δ dB heat map over (f_t, f_s). Pairs: gain and
    coherence per band, and the error by frame."""
    from .plotting import OKABE_ITO, new_figure, save_figure  # matplotlib loads only when a figure is drawn

    d = compare_to_dict(run)
    fig, (a, b) = new_figure(1, 2, width=7.0, height=2.8)
    if run.mode == "sets":
        r, t = run.result, d["temporal"]
        f = np.asarray(t["f"])
        for i, (name, color) in enumerate((("real", OKABE_ITO[0]), ("generated", OKABE_ITO[5]))):
            p = r.temporal_power[i]
            a.plot(f, 10 * np.log10(p), color=color, label=f"{name} ({run.counts[name]})", marker="o", ms=2.5)
            lo, hi = r.temporal_power_ci[i]
            a.fill_between(f, 10 * np.log10(lo), 10 * np.log10(hi), color=color, alpha=0.2, lw=0)
        a.set_xlabel("temporal frequency $|f_t|$ (cycles/frame)")
        a.set_ylabel("mean power (dB)")
        a.set_title("temporal power spectrum (95% CI)")
        a.legend()
        h = np.ma.masked_invalid(r.heatmap_db)
        lim = max(1.0, float(np.nanmax(np.abs(r.heatmap_db))) if np.isfinite(r.heatmap_db).any() else 1.0)
        extent = (r.f_s_edges[0], r.f_s_edges[-1], -0.5 / len(f) if len(f) > 1 else -0.5, f[-1] + 0.5 / len(f))
        im = b.imshow(h, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent)
        b.set_xlabel("spatial frequency $f_s$ (cycles/sample)")
        b.set_ylabel("$|f_t|$ (cycles/frame)")
        b.set_title(f"Δ dB, generated − real (D = {r.distance_db:.2f} dB)")
        fig.colorbar(im, ax=b, label="Δ dB")
    else:
        bands = d["bands"]
        x = np.arange(len(bands))
        gain = [np.nan if v["gain_db"] is None else v["gain_db"] for v in bands]
        a.set_axisbelow(True)
        a.bar(x, gain, color=OKABE_ITO[1], label="gain (dB)", zorder=2)
        a.axhline(0, color="0.5", lw=0.6)
        a.set_xticks(x, [v["name"] for v in bands], rotation=30, ha="right")
        a.set_ylabel("gain, test over reference (dB)")
        c = a.twinx()
        c.plot(x, [np.nan if v["coherence"] is None else v["coherence"] for v in bands], "o-", color=OKABE_ITO[4])
        c.set_ylim(0, 1.05)
        c.grid(False)
        c.set_ylabel("coherence", color=OKABE_ITO[4])
        a.set_title("per band")
        err = [np.nan if v is None else v for v in d["frames"]["psnr_db"]]
        b.plot(np.arange(len(err)), err, "o-", color=OKABE_ITO[0], ms=3)
        for p in d["periodic"]:
            if p["axis"] == "time":
                for k in range(p.get("phase", 0), len(err), p["period"]):
                    b.axvline(k, color=OKABE_ITO[5], lw=0.6, ls=":")
        b.set_xlabel("frame")
        b.set_ylabel("PSNR (dB)")
        b.set_title("error by frame" + (" (dotted: periodic peak)" if d["periodic"] else ""))
    fig.tight_layout()
    save_figure(fig, path)
