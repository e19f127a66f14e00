"""Render an `edge-bench` result: JSON is the source of truth, Markdown and HTML are views of it.

A result written on a Jetson (numpy only, no matplotlib) is re-rendered on a host with
`edge-bench report RESULT.json`. The HTML page is self-contained: inline CSS, plots as
base64 PNGs drawn with matplotlib's Agg canvas (no pyplot state, no display, no network).
Speed-ups are ratios between precisions of the same result, never across runs.

Both views render one list of blocks (`report_blocks`), so the HTML mirrors the Markdown by
construction. A template engine (Jinja2) would add a dependency to a module that renders
Markdown on the Jetson's system Python, for what is a dozen lines of rendering per format.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from benchmarks.latency import STAGES
from edge._lazy import is_available, require
from edge.errors import EdgeBuildError, MissingDependencyError

__all__ = [
    "RESULT_KIND",
    "RESULT_SCHEMA_VERSION",
    "FORMATS",
    "load_result",
    "write_json",
    "speedups",
    "render_markdown",
    "render_html",
    "render_plots",
    "write_reports",
    "html_available",
]

logger = logging.getLogger(__name__)

RESULT_KIND = "mer-edge-bench"
RESULT_SCHEMA_VERSION = 1
FORMATS = ("json", "md", "html")
_MPL_HINT = "pip install 'mer-edge[report]' (matplotlib)"


# loading and small helpers ----------------------------------------------------------------------
def load_result(path: Path) -> Dict[str, Any]:
    """Read and sanity-check a result JSON written by `edge-bench`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EdgeBuildError(f"{path}: result file not found") from exc
    except (OSError, ValueError) as exc:
        raise EdgeBuildError(f"{path}: not a readable JSON result: {exc}") from exc
    if not isinstance(data, dict) or data.get("kind") != RESULT_KIND:
        raise EdgeBuildError(f"{path}: not an edge-bench result (kind is not {RESULT_KIND!r})")
    if data.get("schema_version") != RESULT_SCHEMA_VERSION:
        raise EdgeBuildError(
            f"{path}: result schema_version {data.get('schema_version')!r} is not supported (this mer-edge reads {RESULT_SCHEMA_VERSION})"
        )
    if not isinstance(data.get("precisions"), list) or not data["precisions"]:
        raise EdgeBuildError(f"{path}: result has no precisions")
    return data


def write_json(result: Dict[str, Any], path: Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def _num(value: Optional[float], digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude < 1e-3:
        return f"{value:.1e}"
    return f"{value:.{digits}g}"


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _delta_pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:+.1f} pt"


def _batch1(entry: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    for lat in entry.get("latency") or []:
        if lat.get("batch") == 1:
            return lat
    lats = entry.get("latency") or []
    return lats[0] if lats else None


def _batches(result: Dict[str, Any]) -> List[int]:
    seen = set()
    for entry in result["precisions"]:
        for lat in entry.get("latency") or []:
            seen.add(int(lat["batch"]))
    return sorted(seen)


def _latency_at(entry: Dict[str, Any], batch: int) -> Optional[Dict[str, Any]]:
    for lat in entry.get("latency") or []:
        if lat.get("batch") == batch:
            return lat
    return None


def speedups(result: Dict[str, Any], batch: int = 1) -> Dict[str, Optional[Dict[str, float]]]:
    """Per precision: reference p50 / p50 and reference mean / mean, at one batch size.

    The reference is the result's `reference_precision` (FP32 when present); a precision not
    measured at this batch, or a missing reference, gives None.
    """
    ref_name = result.get("reference_precision")
    ref_entry = next((e for e in result["precisions"] if e["precision"] == ref_name), None)
    ref = _latency_at(ref_entry, batch) if ref_entry else None
    out: Dict[str, Optional[Dict[str, float]]] = {}
    for entry in result["precisions"]:
        lat = _latency_at(entry, batch)
        if ref is None or lat is None or lat["p50_ms"] <= 0 or lat["mean_ms"] <= 0:
            out[entry["precision"]] = None
            continue
        out[entry["precision"]] = {
            "p50": ref["p50_ms"] / lat["p50_ms"],
            "mean": ref["mean_ms"] / lat["mean_ms"],
        }
    return out


def _class_names(result: Dict[str, Any]) -> List[str]:
    return list(result.get("bundle", {}).get("class_names") or [])


# tables (shared by Markdown and HTML) -----------------------------------------------------------
Table = Tuple[List[str], List[List[str]]]


def _summary_table(result: Dict[str, Any]) -> Table:
    ups = speedups(result)
    head = [
        "precision",
        "executor",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "mean ± std ms",
        "throughput /s",
        "speed-up (p50)",
        "top-1 agreement",
        "max |Δ logit|",
        "min cosine",
        "parity",
    ]
    rows = []
    for entry in result["precisions"]:
        lat = _batch1(entry) or {}
        acc = entry.get("accuracy") or {}
        logits = acc.get("logits") or {}
        up = ups.get(entry["precision"])
        parity = entry.get("parity")
        if parity is None:
            parity_text = "not checked"
        else:
            parity_text = "ok" if parity.get("passed") else "FAILED"
            if parity.get("passed") is None:
                parity_text = "report only"
        rows.append(
            [
                entry["precision"],
                entry.get("executor", "–"),
                _num(lat.get("p50_ms")),
                _num(lat.get("p90_ms")),
                _num(lat.get("p99_ms")),
                "{} ± {}".format(_num(lat.get("mean_ms")), _num(lat.get("std_ms"), 2))
                if lat
                else "–",
                _num(lat.get("throughput_per_s")),
                f"{up['p50']:.2f}x" if up else "–",
                _pct(acc.get("top1_agreement")),
                _num(logits.get("max_abs_error")),
                "–" if logits.get("min_cosine") is None else f"{logits['min_cosine']:.6f}",
                parity_text,
            ]
        )
    return head, rows


def _labelled(result: Dict[str, Any]) -> bool:
    return any((e.get("accuracy") or {}).get("candidate") for e in result["precisions"])


def _metrics_table(result: Dict[str, Any]) -> Table:
    head = ["precision", "accuracy", "Δ", "UAR", "Δ", "UF1", "Δ"]
    rows = []
    for entry in result["precisions"]:
        acc = entry.get("accuracy") or {}
        cand, delta = acc.get("candidate") or {}, acc.get("delta") or {}
        rows.append(
            [
                entry["precision"],
                _pct(cand.get("accuracy")),
                _delta_pct(delta.get("accuracy")),
                _pct(cand.get("uar")),
                _delta_pct(delta.get("uar")),
                _pct(cand.get("uf1")),
                _delta_pct(delta.get("uf1")),
            ]
        )
    return head, rows


def _tier_table(result: Dict[str, Any]) -> Optional[Table]:
    """Agreement and deltas per validation tier, next to FP32's own stability under noise."""
    tiers = (result.get("data") or {}).get("tiers") or {}
    if not tiers:
        return None
    stability = (result.get("noise_stability") or {}).get("tiers") or {}
    data = result.get("data") or {}
    head = ["precision", "tier", "clips", "agreement", "accuracy", "Δ", "UAR", "Δ"]
    rows = []
    for entry in result["precisions"]:
        per_tier = {"standard": entry.get("accuracy") or {}}
        per_tier.update(entry.get("accuracy_tiers") or {})
        for tier, acc in per_tier.items():
            cand, delta = acc.get("candidate") or {}, acc.get("delta") or {}
            clips = acc.get("samples", data.get("samples") if tier == "standard" else None)
            rows.append([
                entry["precision"], tier, str(clips if clips is not None else "–"),
                _pct(acc.get("top1_agreement")), _pct(cand.get("accuracy")),
                _delta_pct(delta.get("accuracy")), _pct(cand.get("uar")), _delta_pct(delta.get("uar")),
            ])  # fmt: skip
    if stability:
        gray = result["noise_stability"]["gray_levels"]
        for tier, kept in stability.items():
            rows.append([f"FP32 + {gray} gray levels noise", tier, "", _pct(kept), "", "", "", ""])
    return head, rows


def _recall_table(result: Dict[str, Any]) -> Table:
    names = _class_names(result)
    head = ["precision"] + names
    rows = []
    for entry in result["precisions"]:
        cand = (entry.get("accuracy") or {}).get("candidate") or {}
        recall = cand.get("per_class_recall") or {}
        rows.append([entry["precision"]] + [_pct(recall.get(n)) for n in names])
    support = ((result["precisions"][0].get("accuracy") or {}).get("candidate") or {}).get(
        "support"
    ) or {}
    rows.append(["(samples)"] + [str(support.get(n, "–")) for n in names])
    return head, rows


def _stage_table(result: Dict[str, Any]) -> Optional[Table]:
    present: List[str] = []
    gpu = False
    for entry in result["precisions"]:
        lat = _batch1(entry) or {}
        gpu = gpu or bool(lat.get("gpu_ms"))
        for name in lat.get("stages") or {}:
            if name not in present:
                present.append(name)
    if not present and not gpu:
        return None
    ordered = [s for s in STAGES if s in present] + [s for s in present if s not in STAGES]
    head = ["precision"] + [f"{s} ms" for s in ordered] + ["model (infer) ms"]
    if gpu:
        head.append("GPU (CUDA events) ms")
    rows = []
    for entry in result["precisions"]:
        lat = _batch1(entry) or {}
        stages = lat.get("stages") or {}
        row = (
            [entry["precision"]]
            + [_num((stages.get(s) or {}).get("mean_ms")) for s in ordered]
            + [_num(lat.get("mean_ms"))]
        )
        if gpu:
            row.append(_num((lat.get("gpu_ms") or {}).get("mean_ms")))
        rows.append(row)
    return head, rows


def _batch_table(result: Dict[str, Any]) -> Optional[Table]:
    batches = _batches(result)
    if batches == [1] or not batches:
        return None
    head = ["precision", "batch", "p50 ms", "p99 ms", "throughput /s", "speed-up (p50)"]
    rows = []
    for batch in batches:
        ups = speedups(result, batch)
        for entry in result["precisions"]:
            lat = _latency_at(entry, batch)
            if lat is None:
                continue
            up = ups.get(entry["precision"])
            rows.append(
                [
                    entry["precision"],
                    str(batch),
                    _num(lat["p50_ms"]),
                    _num(lat["p99_ms"]),
                    _num(lat["throughput_per_s"]),
                    f"{up['p50']:.2f}x" if up else "–",
                ]
            )
    return head, rows


def _power_table(result: Dict[str, Any]) -> Optional[Table]:
    rails: List[str] = []
    for entry in result["precisions"]:
        for name in (entry.get("power") or {}).get("rails_mean_mw") or {}:
            if name not in rails:
                rails.append(name)
    if not rails:
        return None
    head = ["precision", "samples"] + [f"{r} mW" for r in rails]
    rows = []
    for entry in result["precisions"]:
        power = entry.get("power") or {}
        means = power.get("rails_mean_mw") or {}
        rows.append(
            [entry["precision"], str(power.get("samples", "–"))]
            + [_num(means.get(r)) for r in rails]
        )
    return head, rows


def _engine_table(result: Dict[str, Any]) -> Optional[Table]:
    """`edge-engine check`: each precision's engine build on the device (absent elsewhere)."""
    engines = result.get("engines")
    if not engines:
        return None
    rows = []
    for e in engines:
        if e.get("built"):
            fallback = e.get("gpu_fallback_layers") or []
            rows.append([e["precision"], "built", e.get("file", "–"), _num(e.get("build_s"), 1),
                         "{:.1f}".format(e.get("bytes", 0) / 2**20),
                         ", ".join(fallback) if fallback else "–"])  # fmt: skip
        else:
            rows.append([e["precision"], "FAILED: " + str(e.get("error")), "–", "–", "–", "–"])
    return (
        ["precision", "build", "engine", "build s", "MiB", "DLA -> GPU fallback layers"],
        rows,
    )


def _confusion_tables(result: Dict[str, Any]) -> List[Tuple[str, Table]]:
    names = _class_names(result)
    out = []
    for entry in result["precisions"]:
        acc = entry.get("accuracy") or {}
        cand = acc.get("candidate")
        if cand:
            title, matrix = f"{entry['precision']}: true (rows) vs predicted", cand["confusion"]
        elif acc.get("confusion_vs_reference") is not None:
            ref = result.get("reference_precision") or "reference"
            title = (
                f"{entry['precision']}: {ref} prediction (rows) vs {entry['precision']} prediction"
            )
            matrix = acc["confusion_vs_reference"]
        else:
            continue
        head = [""] + names
        rows = [[names[i]] + [str(v) for v in row] for i, row in enumerate(matrix)]
        out.append((title, (head, rows)))
    return out


def _environment_lines(result: Dict[str, Any]) -> List[str]:
    env = result.get("environment") or {}
    host = env.get("host") or {}
    lines = [
        "host: {} · {} · CPU {} ({} cores, {} usable) · Python {}".format(
            host.get("hostname") or "–",
            host.get("os") or "–",
            host.get("cpu_model") or "unknown",
            host.get("cpu_count") or "–",
            host.get("cpu_usable") or "–",
            host.get("python") or "–",
        )
    ]
    libs = env.get("libraries") or {}
    present = [f"{k} {v}" for k, v in libs.items() if v]
    if present:
        lines.append("libraries: " + ", ".join(present))
    for gpu in env.get("gpu") or []:
        lines.append("GPU: {} (driver {})".format(gpu.get("name"), gpu.get("driver") or "–"))
    jetson = env.get("jetson")
    if jetson:
        nvp = jetson.get("nvpmodel") or {}
        clocks = jetson.get("clocks") or {}
        lines.append(
            "Jetson: {} · L4T {} · JetPack {} · nvpmodel {} · clocks locked: {}".format(
                jetson.get("model") or "unknown module",
                jetson.get("l4t") or "unknown",
                jetson.get("jetpack") or "unknown",
                "{} ({})".format(nvp.get("name"), nvp.get("id")) if nvp else "unknown",
                {True: "yes", False: "no", None: "unknown"}[clocks.get("locked")],
            )
        )
    else:
        lines.append("Jetson: not a Jetson (no /etc/nv_tegra_release)")
    return lines


def _headline(result: Dict[str, Any]) -> List[str]:
    bundle = result.get("bundle") or {}
    settings = result.get("settings") or {}
    data = result.get("data") or {}
    target = bundle.get("target") or {}
    lines = [
        "bundle `{}` · {} · target TensorRT {} (opset {})".format(
            bundle.get("path", "–"),
            bundle.get("model", "–"),
            target.get("tensorrt", "–"),
            target.get("opset", "–"),
        ),
        "data: {} samples from {}, {}".format(
            data.get("samples", "–"),
            data.get("source", "–"),
            "labelled" if data.get("labelled") else "no labels (agreement with the reference only)",
        ),
        "timing: warm-up ≥ {} runs and ≥ {} s, then ≥ {} runs and ≥ {} s per precision; {}".format(
            settings.get("warmup_iterations", "–"),
            settings.get("warmup_seconds", "–"),
            settings.get("iterations", "–"),
            settings.get("duration_s", "–"),
            "speed-ups are ratios to {} measured in this run".format(
                result.get("reference_precision") or "the reference"
            ),
        ),
        "created {} by `{}`".format(result.get("created_utc", "–"), result.get("command", "–")),
    ]
    if bundle.get("trained") is False:
        lines.insert(
            0,
            "**UNTRAINED demo weights**: predictions are meaningless; the accuracy figures only "
            "compare precisions with each other.",
        )
    return lines


# Markdown ---------------------------------------------------------------------------------------
def _md_table(table: Table) -> str:
    head, rows = table

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# One document, two renderings ------------------------------------------------------------------
#: A report block: ("h", level, text), ("list", lines), ("table", table), ("caption", text) or
#: ("figure", caption, base64 PNG). Markdown and HTML render the same blocks, so the two reports
#: cannot drift apart.
Block = Tuple[Any, ...]


def report_blocks(
    result: Dict[str, Any], plots: Optional[Sequence[Tuple[str, str]]] = None
) -> List[Block]:
    """The report's structure; with `plots` (HTML) they replace the confusion tables."""
    bundle = result.get("bundle") or {}
    tool = "edge-engine check" if result.get("engines") else "edge-bench"
    blocks: List[Block] = [("h", 1, f"{tool}: {bundle.get('model', 'model')}")]
    blocks.append(("list", _headline(result)))
    engines = _engine_table(result)
    if engines is not None:
        blocks += [("h", 2, "Engines built on the device"), ("table", engines)]
    blocks += [("h", 2, "Precisions side by side (batch 1)"), ("table", _summary_table(result))]
    if _labelled(result):
        blocks += [("h", 2, "Accuracy (Δ vs reference)"), ("table", _metrics_table(result))]
        blocks += [("h", 3, "Per-class recall"), ("table", _recall_table(result))]
    tiers = _tier_table(result)
    if tiers is not None:
        blocks += [("h", 2, "Validation tiers (agreement with FP32; FP32's own under noise)")]
        blocks += [("table", tiers)]
    for title, table in (
        ("Stage breakdown (mean, batch 1)", _stage_table(result)),
        ("Batch sizes", _batch_table(result)),
        ("Power (mean per rail over each precision's timing run)", _power_table(result)),
    ):
        if table is not None:
            blocks += [("h", 2, title), ("table", table)]
    if plots is None:
        confusions = _confusion_tables(result)
        if confusions:
            blocks.append(("h", 2, "Confusion matrices"))
            for title, table in confusions:
                blocks += [("caption", title), ("table", table)]
    elif plots:
        blocks.append(("h", 2, "Plots"))
        blocks += [("figure", caption, png) for caption, png in plots]
    skipped = result.get("skipped") or []
    if skipped:
        blocks += [("h", 2, "Skipped"), ("list", list(skipped))]
    blocks += [("h", 2, "Environment"), ("list", _environment_lines(result))]
    return blocks


def render_markdown(result: Dict[str, Any]) -> str:
    """The whole result as GitHub-flavoured Markdown (tables only, no images)."""
    chunks: List[str] = []
    for block in report_blocks(result):
        kind = block[0]
        if kind == "h":
            chunks.append("#" * block[1] + " " + block[2])
        elif kind == "list":
            chunks.append("\n".join("- " + line for line in block[1]))
        elif kind == "caption":
            chunks.append(f"**{block[1]}**")
        elif kind == "table":
            chunks.append(_md_table(block[1]))
    return "\n\n".join(chunks) + "\n"


# plots ------------------------------------------------------------------------------------------
def html_available() -> bool:
    """True when matplotlib can be imported (the HTML report needs it for its plots)."""
    return is_available("matplotlib")


def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _latency_plot(result: Dict[str, Any], figure_cls) -> Optional[str]:
    series = [
        (e["precision"], (_batch1(e) or {}).get("samples_ms") or []) for e in result["precisions"]
    ]
    series = [(name, s) for name, s in series if s]
    if not series:
        return None
    fig = figure_cls(figsize=(7.5, 0.9 + 0.7 * len(series)))
    ax = fig.add_subplot(1, 1, 1)
    # Whiskers at p1/p99; the rare outliers beyond p99 are left out of the box plot (they would
    # squash it) and named in the axis label instead.
    import matplotlib

    major, minor = (int(v) for v in matplotlib.__version__.split(".")[:2])
    # `orientation` replaced `vert` in matplotlib 3.10 (`vert` warns from 3.11).
    horizontal = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}
    ax.boxplot([s for _, s in series], whis=(1, 99), showfliers=False, **horizontal)
    ax.set_yticks(range(1, len(series) + 1))
    ax.set_yticklabels([name for name, _ in series])
    for i, (_, s) in enumerate(series, start=1):
        ordered = sorted(s)
        median = ordered[len(ordered) // 2]
        ax.annotate(f"p50 {median:.3g}", (median, i + 0.28), fontsize=8, ha="center")
    worst = max(max(s) for _, s in series)
    ax.set_xlabel(
        f"latency per inference, ms (box: quartiles, whiskers: p1–p99; slowest run {worst:.3g} ms)"
    )
    ax.set_xlim(left=0)
    ax.set_title("Latency distribution per precision (batch 1)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _accuracy_plot(result: Dict[str, Any], figure_cls) -> Optional[str]:
    names = [e["precision"] for e in result["precisions"]]
    metrics: List[Tuple[str, List[float]]] = []
    agreement = [(e.get("accuracy") or {}).get("top1_agreement") for e in result["precisions"]]
    if all(v is not None for v in agreement):
        metrics.append(("top-1 agreement", [float(v) for v in agreement]))
    if _labelled(result):
        for key, label in (("accuracy", "accuracy"), ("uar", "UAR"), ("uf1", "UF1")):
            values = [
                ((e.get("accuracy") or {}).get("candidate") or {}).get(key)
                for e in result["precisions"]
            ]
            metrics.append((label, [float("nan") if v is None else float(v) for v in values]))
    if not metrics:
        return None
    fig = figure_cls(figsize=(7.5, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(metrics)
    for k, (label, values) in enumerate(metrics):
        xs = [i + (k - (len(metrics) - 1) / 2) * width for i in range(len(names))]
        bars = ax.bar(xs, values, width=width, label=label)
        ax.bar_label(bars, labels=[_pct(v) for v in values], fontsize=7, padding=1)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("fraction")
    ax.set_title("Accuracy per precision")
    ax.legend(fontsize=8, ncol=len(metrics), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _confusion_plot(result: Dict[str, Any], figure_cls) -> Optional[str]:
    names = _class_names(result)
    panels = []
    for entry in result["precisions"]:
        acc = entry.get("accuracy") or {}
        if acc.get("candidate"):
            panels.append((entry["precision"], acc["candidate"]["confusion"], "true", "predicted"))
        elif acc.get("confusion_vs_reference") is not None:
            ref = result.get("reference_precision") or "reference"
            panels.append(
                (entry["precision"], acc["confusion_vs_reference"], ref, entry["precision"])
            )
    if not panels or not names:
        return None
    cols = min(3, len(panels))
    rows = int(math.ceil(len(panels) / cols))
    fig = figure_cls(figsize=(3.6 * cols, 3.4 * rows))
    for i, (title, matrix, ylabel, xlabel) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(matrix, cmap="Blues", vmin=0)
        top = max((max(r) for r in matrix), default=0)
        for r, row in enumerate(matrix):
            for c, value in enumerate(row):
                color = "white" if top and value > top / 2 else "black"
                ax.text(c, r, str(value), ha="center", va="center", fontsize=8, color=color)
        ax.set_xticks(range(len(names)))
        ax.set_yticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
        ax.set_yticklabels(names, fontsize=7)
        ax.set_xlabel(f"{xlabel} class", fontsize=8)
        ax.set_ylabel(f"{ylabel} class", fontsize=8)
        ax.set_title(title, fontsize=9)
    fig.suptitle("Confusion matrices")
    fig.tight_layout()
    return _png(fig)


def render_plots(result: Dict[str, Any]) -> List[Tuple[str, str]]:
    """(caption, base64 PNG) for every plot the result supports; needs matplotlib."""
    require("matplotlib", purpose="the HTML report's plots")
    from matplotlib.figure import Figure

    plots = []
    for caption, draw in (
        ("Latency distribution per precision", _latency_plot),
        ("Accuracy per precision", _accuracy_plot),
        ("Confusion matrices", _confusion_plot),
    ):
        png = draw(result, Figure)
        if png is not None:
            plots.append((caption, png))
    return plots


# HTML -------------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em auto;
max-width:1150px;color:#1d1d1f;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right}
th{background:#f2f4f7}td:first-child,th:first-child{text-align:left}
.warn{background:#fff4e5;border:1px solid #f0b37e;padding:.5em .8em}
.fail{color:#b00020;font-weight:bold}ul.meta{color:#444;font-size:.92em}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}img{max-width:100%}
"""


def _html_table(table: Table) -> str:
    head, rows = table
    out = ["<table><thead><tr>"]
    out += [f"<th>{html.escape(str(h))}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        cells = []
        for c in row:
            cls = ' class="fail"' if c == "FAILED" else ""
            cells.append(f"<td{cls}>{html.escape(str(c))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _html_list(lines: Iterable[str]) -> str:
    items = []
    for line in lines:
        text = html.escape(line).replace("`", "")
        if text.startswith("**"):
            text = '<span class="warn">' + text.strip("*").replace("**", "") + "</span>"
        items.append(f"<li>{text}</li>")
    return '<ul class="meta">' + "".join(items) + "</ul>"


def render_html(result: Dict[str, Any], plots: Optional[Sequence[Tuple[str, str]]] = None) -> str:
    """One self-contained page: tables and the plots as data: URIs."""
    if plots is None:
        plots = render_plots(result)
    blocks = report_blocks(result, plots)
    title = blocks[0][2]  # the page's <h1>
    body = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            body.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
        elif kind == "list":
            body.append(_html_list(block[1]))
        elif kind == "table":
            body.append(_html_table(block[1]))
        elif kind == "figure":
            caption = html.escape(block[1])
            body.append(
                f'<figure><img alt="{caption}" src="data:image/png;base64,{block[2]}">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_reports(
    result: Dict[str, Any], out_dir: Path, *, formats: Sequence[str] = FORMATS, stem: str = "bench"
) -> Dict[str, Path]:
    """Write the requested formats as `<out_dir>/<stem>.{json,md,html}`; returns their paths.

    Raises:
        EdgeBuildError: an unknown format; MissingDependencyError when HTML is asked for
            without matplotlib.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise EdgeBuildError(
            "unknown report format(s) {}; choose from {}".format(
                ", ".join(unknown), ", ".join(FORMATS)
            )
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: Dict[str, Path] = {}
    if "json" in formats:
        written["json"] = write_json(result, out_dir / f"{stem}.json")
    if "md" in formats:
        path = out_dir / f"{stem}.md"
        path.write_text(render_markdown(result), encoding="utf-8")
        written["md"] = path
    if "html" in formats:
        if not html_available():
            raise MissingDependencyError(
                f"{out_dir / (stem + '.html')}: the HTML report needs matplotlib; install it with: {_MPL_HINT}"
            )
        path = out_dir / f"{stem}.html"
        path.write_text(render_html(result), encoding="utf-8")
        written["html"] = path
    return written
