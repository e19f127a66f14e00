"""Host benchmark: how far INT8 placement alone can take a model under issue 19's fidelity rule.

    .venv/bin/python -m benchmarks.bench_int8_limits [--arch afnet_m|famnet|mmnet] [--bundle DIR]
        [--calib-samples 256] [--hard-val-samples 300] [--rank-clips 60] [--json FILE]

The rule: with >= 85% of the MACs in INT8, every validation tier's INT8 agreement with FP32 must
reach FP32's own agreement with itself under 0.5 gray levels of input noise (the noise floor, the
mean of seeded draws as the build takes them) and its UAR drop must stay within 1 point. For the
built-in demo of `--arch` (or the FP32 bundle `--bundle`) one run measures, on ONNX Runtime CPU
with INT8 Q/DQ lowered as `OrtRunner` executes it (the arithmetic the build judges):

1. all-INT8 with the build's default calibration (NNCF, mean_minmax): agreement, logit MSE and
   UAR drop against FP32 on each tier;
2. FP32 under 0.5, 1 and 2 gray levels of input noise: agreement and logit MSE, so INT8's error
   reads as "the noise of N gray levels";
3. every module group that holds INT8 taken back out of INT8 alone, without re-calibration
   (`quantize.bypass`), ranked on the `--rank-clips` hard clips with the smallest FP32 top-2
   margin (where a decision can flip): how much of the error any single group carries;
4. re-quantizations with the best-ranked groups kept out of INT8 while >= 85% of the MACs stay
   in INT8, the most the rule lets placement keep out: agreement against the floor.

A host script: it imports `quantize` (allowed for `benchmarks/bench_*.py`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from calib.prepare import default_cache_dir, prepare_synthetic
from edge.bundle import Bundle
from edge.metrics import classification_metrics, top1_agreement
from edge.noise import noisy_feeds
from quantize.bypass import bypass_int8
from quantize.data import bundle_tiers
from quantize.int8 import calibration_feeds, quantize_model
from quantize.macs import mac_shares, node_macs
from quantize.sensitivity import (
    DEFAULT_NOISE_DRAWS,
    candidate_groups,
    executed_copy,
    groups_reading_int8,
    lowest_margin,
)

__all__ = ["gray_equivalent", "main"]

#: Gray levels (of 255) of Gaussian input noise FP32 is measured under; the first is the floor's.
NOISE_LEVELS = (0.5, 1.0, 2.0)
#: The rule's least share of MACs in INT8, and its largest UAR drop (issue 19).
MIN_INT8_SHARE = 0.85
MAX_UAR_DROP = 0.01
Feeds = List[Dict[str, np.ndarray]]


@dataclass(frozen=True)
class Tier:
    """One validation tier of the bundle: feeds, labels and the frames noise goes on."""

    feeds: Feeds
    labels: Optional[np.ndarray]
    frames: np.ndarray


def _parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["afnet_m", "famnet", "mmnet"], help="default afnet_m")
    parser.add_argument(
        "--bundle", type=Path, help="an FP32 bundle (edge-build --precision fp32) to use, not build"
    )
    parser.add_argument("--calib-samples", type=int, default=256)
    parser.add_argument(
        "--hard-val-samples", type=int, default=300, help="clips of the hard tier (when building)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--calib-bias-correction",
        choices=["on", "off"],
        default="on",
        help="NNCF's fast bias correction in every quantization (default on, NNCF's default and "
        "the build's first try; the build's auto also tries off when on misses the rule)",
    )
    parser.add_argument(
        "--noise-draws",
        type=int,
        default=DEFAULT_NOISE_DRAWS,
        help="seeded draws of the floor's 0.5 gray levels (seed + draw, as the build draws them)",
    )
    parser.add_argument(
        "--level-draws",
        type=int,
        default=2,
        help="seeded draws at 1 and 2 gray levels (they only scale INT8's error, not the rule)",
    )
    parser.add_argument(
        "--rank-clips",
        type=int,
        default=60,
        help="rank the groups on this many lowest-margin hard clips (0: the whole tier)",
    )
    parser.add_argument("--top", type=int, default=5, help="best groups measured on every tier")
    parser.add_argument(
        "--keep-counts",
        default="5,10,20",
        help="also re-quantize with only the first N chosen groups out of INT8, for each N",
    )
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    for name in ("calib_samples", "hard_val_samples", "noise_draws", "level_draws", "top",
                 "threads"):  # fmt: skip
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    try:
        args.keep_counts = sorted({int(n) for n in args.keep_counts.split(",") if n.strip()})
    except ValueError:
        parser.error(
            f"--keep-counts must be integers separated by commas, got {args.keep_counts!r}"
        )
    if any(n < 1 for n in args.keep_counts):
        parser.error(f"--keep-counts must be >= 1, got {args.keep_counts}")
    if args.rank_clips < 0:
        parser.error(f"--rank-clips must be >= 0 (0: the whole tier), got {args.rank_clips}")
    if args.json is not None and not args.json.parent.is_dir():
        parser.error(f"--json {args.json}: folder {args.json.parent} does not exist")
    if args.bundle is not None:
        manifest_path = args.bundle / "manifest.json"
        if not manifest_path.is_file():
            parser.error(
                f"--bundle {args.bundle}: no manifest.json there (not an edge-build bundle)"
            )
        try:
            arch = json.loads(manifest_path.read_text())["model"]["arch"]
        except (ValueError, KeyError, TypeError) as exc:
            parser.error(f"--bundle {manifest_path}: unreadable manifest ({exc})")
        if args.arch is not None and args.arch != arch:
            parser.error(f"--arch {args.arch} but --bundle {args.bundle} holds {arch}")
        if not (args.bundle / "model.fp32.onnx").is_file():
            parser.error(f"--bundle {args.bundle}: no model.fp32.onnx there")
        args.arch = arch
    args.arch = args.arch or "afnet_m"
    return args


def _build_fp32(args: argparse.Namespace, out: Path) -> float:
    """The real `edge-build --precision fp32` of the demo; returns its seconds."""
    from quantize.cli.build import main as build_main

    argv = ["--arch", args.arch, "--precision", "fp32", "--calib-samples", str(args.calib_samples),
            "--hard-val-samples", str(args.hard_val_samples), "--seed", str(args.seed),
            "--out", str(out), "--quiet"]  # fmt: skip
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the build summary; the figures follow
        code = build_main(argv)
    if code != 0:
        raise SystemExit(f"bench_int8_limits: edge-build {' '.join(argv)} failed ({code})")
    return time.perf_counter() - start


def _tiers(bundle: Bundle) -> Dict[str, Tier]:
    return {
        name: Tier(data.feeds(bundle.spec), data.labels, data.frames)
        for name, data in bundle_tiers(bundle.root).items()
    }


def _logits(model: Any, feeds: Feeds, threads: int) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    output = session.get_outputs()[0].name
    return np.concatenate([session.run([output], feed)[0] for feed in feeds])


def _compare(reference: np.ndarray, logits: np.ndarray, labels, class_names) -> Dict[str, float]:
    row = {
        "agreement": top1_agreement(reference, logits),
        "mse": float(np.mean((np.asarray(logits, np.float64) - reference) ** 2)),
    }
    if labels is not None:
        ref_uar = classification_metrics(reference, labels, class_names)["uar"]
        row["uar_drop"] = float(
            ref_uar - classification_metrics(logits, labels, class_names)["uar"]
        )
    return row


def gray_equivalent(mse: float, levels: Sequence[float], mses: Sequence[float]) -> Optional[float]:
    """The input-noise level whose FP32 logit MSE equals `mse`: log-log interpolation between
    the measured levels (noise MSE grows about as the level squared), extrapolated along the
    nearest segment outside them. None when the noise MSEs do not grow with the level."""
    x, y = np.log(np.asarray(levels, float)), np.log(np.maximum(np.asarray(mses, float), 1e-30))
    if len(x) < 2 or np.any(np.diff(y) <= 0) or mse <= 0:
        return None
    target = np.log(mse)
    segment = int(np.clip(np.searchsorted(y, target) - 1, 0, len(x) - 2))
    slope = (y[segment + 1] - y[segment]) / (x[segment + 1] - x[segment])
    return float(np.exp(x[segment] + (target - y[segment]) / slope))


class _Judge:
    """Runs models on the bundle's tiers and compares them with FP32's logits there."""

    def __init__(self, fp32: Any, tiers: Dict[str, Tier], spec: Any, threads: int) -> None:
        self.fp32, self.tiers, self.spec, self.threads = fp32, tiers, spec, threads
        self.reference = {t: self.run(fp32, tier.feeds) for t, tier in tiers.items()}

    def run(self, model: Any, feeds: Feeds) -> np.ndarray:
        return _logits(model, feeds, self.threads)

    def noise(self, level: float, draws: int, seed: int) -> Dict[str, Dict[str, Any]]:
        """Per tier: FP32's mean agreement and logit MSE with itself under `level` gray levels
        of input noise, over `draws` draws seeded `seed + draw` (the build's floor seeds)."""
        out = {}
        for t, tier in self.tiers.items():
            rows = [
                _compare(self.reference[t], self.run(self.fp32, noisy_feeds(
                    self.spec, tier.feeds, tier.frames, level, seed=seed + d)), None, ())
                for d in range(draws)
            ]  # fmt: skip
            out[t] = {
                "agreement": float(np.mean([r["agreement"] for r in rows])),
                "mse": float(np.mean([r["mse"] for r in rows])),
                "agreement_draws": [r["agreement"] for r in rows],
            }
        return out

    def measure(self, quantized: Any, clips: Optional[Dict[str, np.ndarray]] = None):
        """Per tier (or only the `clips` of the tiers named there): agreement, logit MSE and,
        on whole labelled tiers, UAR drop of `quantized` as `OrtRunner` executes it."""
        executed = executed_copy(quantized)
        out = {}
        for t, tier in self.tiers.items():
            if clips is not None and t not in clips:
                continue
            index = clips[t] if clips is not None else np.arange(len(tier.feeds))
            labels = tier.labels if clips is None else None
            logits = self.run(executed, [tier.feeds[i] for i in index])
            out[t] = _compare(self.reference[t][index], logits, labels, self.spec.class_names)
        return out


def _bypass_ranking(judge: _Judge, int8: Any, clips: Dict[str, np.ndarray]) -> List[Dict[str, Any]]:
    """Every group holding INT8, taken alone out of the all-INT8 model (`quantize.bypass`) and
    measured on `clips`; lowest logit MSE first. `mac_share`: the model's MACs that the group
    runs in INT8 in the all-INT8 model (what keeping it out of INT8 gives up)."""
    fp32 = judge.fp32
    macs = {n.node: n.macs for n in node_macs(int8) if n.precision == "int8"}
    total = sum(n.macs for n in node_macs(fp32)) or 1
    groups = candidate_groups(fp32)
    (tier,) = clips
    ranking = []
    for group in groups_reading_int8(groups, int8):
        measured = judge.measure(bypass_int8(int8, fp32, groups[group]), clips)[tier]
        share = sum(macs.get(n, 0) for n in groups[group]) / total
        ranking.append({"group": group, "nodes": groups[group], "mac_share": share, **measured})
    return sorted(ranking, key=lambda r: (r["mse"], -r["agreement"], r["group"]))


def _within_rule(
    ranking: List[Dict[str, Any]], base_mse: float, headroom: float
) -> Tuple[List[str], float]:
    """The ranked groups whose bypass lowered the MSE, best first, while together they hold at
    most `headroom` of the MACs in INT8: what all-INT8 holds above the rule's 85%."""
    chosen, share = [], 0.0
    for row in ranking:
        if row["mse"] >= base_mse:
            break
        if share + row["mac_share"] <= headroom + 1e-9:
            chosen.append(row["group"])
            share += row["mac_share"]
    return chosen, share


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse(argv)
    import onnx

    seconds: Dict[str, float] = {}
    clock = start = time.perf_counter()

    def lap(what: str) -> None:
        nonlocal start
        seconds[what] = time.perf_counter() - start
        start = time.perf_counter()

    if args.bundle is None:
        root = Path(tempfile.mkdtemp(prefix="bench-int8-limits-")) / "fp32"
        _build_fp32(args, root)
        lap("fp32_build")
    else:
        root = args.bundle
    bundle = Bundle.load(root)
    tiers = _tiers(bundle)
    if not tiers:
        raise SystemExit(f"bench_int8_limits: {root} carries no validation tier")
    fp32 = onnx.load(str(bundle.onnx_path("fp32")))
    calibration = calibration_feeds(
        prepare_synthetic(
            bundle.spec, args.calib_samples, seed=args.seed, cache_dir=default_cache_dir()
        ),
        args.seed,
    )
    judge = _Judge(fp32, tiers, bundle.spec, args.threads)
    noise = {
        str(level): judge.noise(
            level, args.noise_draws if level == NOISE_LEVELS[0] else args.level_draws, args.seed
        )
        for level in NOISE_LEVELS
    }
    noise = {t: {level: noise[level][t] for level in noise} for t in tiers}  # tier first
    floor = {t: noise[t][str(NOISE_LEVELS[0])]["agreement"] for t in tiers}
    lap("fp32_and_noise")

    correct = args.calib_bias_correction == "on"
    int8, _ = quantize_model(fp32, calibration, bias_correction=correct)
    lap("quantize_all_int8")
    all_int8 = judge.measure(int8)
    lap("measure_all_int8")

    rank_tier = "hard" if "hard" in tiers else next(iter(tiers))
    clips = {rank_tier: lowest_margin(judge.reference[rank_tier], args.rank_clips)}
    base_rank = judge.measure(int8, clips)[rank_tier]
    ranking = _bypass_ranking(judge, int8, clips)
    lap("bypass_ranking")
    for row in ranking[: args.top]:
        row["tiers"] = judge.measure(bypass_int8(int8, fp32, row["nodes"]))
    lap("measure_top")

    all_int8_share = mac_shares(int8).share("int8")
    chosen, share = _within_rule(ranking, base_rank["mse"], all_int8_share - MIN_INT8_SHARE)
    placements = []
    for count in [n for n in args.keep_counts if n < len(chosen)] + [len(chosen)]:
        kept = chosen[:count]
        placed, _ = (
            quantize_model(fp32, calibration, exclude=kept, bias_correction=correct)
            if kept
            else (int8, None)
        )
        placements.append(
            {"excluded": kept, "int8_share": mac_shares(placed).share("int8"),
             "tiers": judge.measure(placed)}
        )  # fmt: skip
    lap("placements")
    seconds["total"] = time.perf_counter() - clock

    levels = [float(v) for v in NOISE_LEVELS]
    result = {
        "arch": bundle.spec.arch,
        "bundle": str(root),
        "calibration_samples": len(calibration),
        "bias_correction": args.calib_bias_correction,
        "tiers": {t: len(tier.feeds) for t, tier in tiers.items()},
        "executor": "onnxruntime CPUExecutionProvider, int8 Q/DQ lowered as OrtRunner runs it",
        "noise": noise,
        "noise_floor": floor,
        "all_int8": {
            "int8_share": all_int8_share,
            "tiers": all_int8,
            "gray_equivalent": {
                t: gray_equivalent(
                    all_int8[t]["mse"], levels, [noise[t][str(v)]["mse"] for v in NOISE_LEVELS]
                )
                for t in tiers
            },
        },
        "ranking": {
            "tier": rank_tier,
            "clips": int(len(clips[rank_tier])),
            "groups": len(ranking),
            "all_int8": base_rank,
            "rows": [{k: v for k, v in row.items() if k != "nodes"} for row in ranking],
        },
        "chosen": {"groups": chosen, "mac_share": share},
        "placements": placements,
        "best_placement": max(
            placements,
            key=lambda p: (
                p["int8_share"] >= MIN_INT8_SHARE - 1e-9,
                _margin(p, floor),
                -np.mean([r["mse"] for r in p["tiers"].values()]),
            ),  # fmt: skip
        ),
        "seconds": seconds,
    }
    _print(result, args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


def _margin(placement: Dict[str, Any], floor: Dict[str, float]) -> float:
    """The worst tier's agreement minus its floor (>= 0: every tier meets it)."""
    return min(row["agreement"] - floor[t] for t, row in placement["tiers"].items())


def _verdict(tier: str, row: Dict[str, float], floor: float, int8_share: float) -> str:
    gap = floor - row["agreement"]
    words = (
        f"meets the floor ({row['agreement']:.3f} >= {floor:.3f})"
        if gap <= 1e-9
        else f"misses the floor by {gap * 100:.1f} pt ({row['agreement']:.3f} < {floor:.3f})"
    )
    drop = row.get("uar_drop")
    if drop is not None:
        words += f", UAR drop {drop * 100:+.1f} pt ({'within' if drop <= MAX_UAR_DROP + 1e-9 else 'over'} 1 pt)"  # noqa: E501
    words += f" at {int8_share:.1%} INT8 MACs"
    if int8_share < MIN_INT8_SHARE:
        words += f" (under the {MIN_INT8_SHARE:.0%} the rule asks)"
    return f"  {tier}: {words}"


def _print(result: Dict[str, Any], args: argparse.Namespace) -> None:
    tiers = list(result["tiers"])
    print(
        f"{result['arch']} demo, FP32 bundle {result['bundle']}, "
        f"{result['calibration_samples']} calibration samples (NNCF mean_minmax, fast bias "
        f"correction {result['bias_correction']}), tiers: "
        + ", ".join(f"{t} {n} clips" for t, n in result["tiers"].items())
        + f"; ORT CPU {args.threads} thread(s), INT8 Q/DQ lowered as OrtRunner runs it"
    )
    header = f"{'':<46}{'INT8 MACs':>10}"
    for t in tiers:
        header += f"{t + ' agree':>16}{'MSE':>9}{'UAR drop':>9}"
    print(header)

    def line(label: str, share: Optional[float], rows: Dict[str, Dict[str, float]]) -> str:
        text = f"{label:<46}" + (f"{share:>10.1%}" if share is not None else f"{'':>10}")
        for t in tiers:
            row = rows[t]
            drop = row.get("uar_drop")
            text += f"{row['agreement']:>16.3f}{row['mse']:>9.5f}"
            text += f"{drop * 100:>+8.1f}p" if drop is not None else f"{'':>9}"
        return text

    for level in NOISE_LEVELS:
        rows = {t: result["noise"][t][str(level)] for t in tiers}
        draws = len(next(iter(rows.values()))["agreement_draws"])
        print(line(f"FP32 + {level} gray noise ({draws} draws)", None, rows))
    a = result["all_int8"]
    print(line("all-INT8", a["int8_share"], a["tiers"]))
    for row in result["ranking"]["rows"][: args.top]:
        if "tiers" in row:
            print(line(f"  without {row['group']}"[:46], None, row["tiers"]))
    for p in result["placements"]:
        print(
            line(
                f"{len(p['excluded'])} best-ranked groups out of INT8", p["int8_share"], p["tiers"]
            )
        )
    for t in tiers:
        n = a["gray_equivalent"][t]
        print(
            f"{t}: all-INT8 logit MSE {a['tiers'][t]['mse']:.5f} vs FP32 "
            + ", ".join(f"{result['noise'][t][str(v)]['mse']:.5f} at {v}" for v in NOISE_LEVELS)
            + " gray: INT8 error ~ noise of "
            + (f"{n:.1f} gray levels" if n is not None else "(not comparable)")
        )
    r = result["ranking"]
    print(
        f"single-group bypass (no re-calibration) of the {r['groups']} groups holding INT8, on the "
        f"{r['clips']} lowest-margin {r['tier']} clips: all-INT8 agree {r['all_int8']['agreement']:.3f}"
        f" MSE {r['all_int8']['mse']:.5f}; best {args.top}:"
    )
    base_mse = r["all_int8"]["mse"]
    for row in r["rows"][: args.top]:
        change = f" ({(row['mse'] / base_mse - 1) * 100:+.0f}%)" if base_mse > 0 else ""
        print(
            f"  {row['group']:<44} {row['mac_share']:>6.1%} MACs  agree {row['agreement']:.3f}"
            f"  MSE {row['mse']:.5f}{change}"
        )
    chosen = result["chosen"]
    print(
        f"out of INT8 in the re-quantizations, in rank order (the groups whose bypass lowered "
        f"the MSE, while all-INT8's {a['int8_share']:.1%} INT8 MACs stay >= {MIN_INT8_SHARE:.0%}; "
        f"{chosen['mac_share']:.1%} of MACs, counted on all-INT8): "
        f"{', '.join(chosen['groups']) or 'none'}"
    )
    seconds = result["seconds"]
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
    print("verdict, all-INT8:")
    for t in tiers:
        print(_verdict(t, a["tiers"][t], result["noise_floor"][t], a["int8_share"]))
    best = result["best_placement"]
    print(
        f"verdict, best of these placements at >= {MIN_INT8_SHARE:.0%} INT8 MACs where one is "
        f"({len(best['excluded'])} groups out of INT8):"
    )
    for t in tiers:
        print(_verdict(t, best["tiers"][t], result["noise_floor"][t], best["int8_share"]))


if __name__ == "__main__":
    sys.exit(main())
