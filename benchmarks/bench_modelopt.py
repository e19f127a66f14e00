"""Host benchmark: NVIDIA ModelOpt's ONNX INT8 PTQ against our default INT8 (issue 19's stretch).

    .venv/bin/python -m benchmarks.bench_modelopt --bundle DIR \\
        (--modelopt-python /tmp/modelopt-venv/bin/python | --modelopt-onnx FILE[,FILE])

`--bundle` is an `edge-build --precision int8` bundle, built with the same `--calib-samples` and
`--seed`: its FP32 model is what ModelOpt quantizes, with the same calibration feeds our build used, and its
validation tiers, FP32 reference logits and noise floor are what every INT8 file is judged on.
ModelOpt pulls CUDA-era dependencies and onnxruntime-gpu, so it lives in its own venv and runs
in a subprocess of that interpreter; this process never imports it. Each INT8 file is measured
through `OrtRunner` as it runs by default (Q/DQ lowered for the CPU, as the build judges) and
as written (`lower_qdq=False`), with its MAC shares, opset and TensorRT lint.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from calib.prepare import default_cache_dir, prepare_synthetic
from edge.bundle import REDUCED_FILES, Bundle
from edge.lint import errors, lint_onnx
from edge.metrics import classification_metrics, top1_agreement
from edge.runtime.ort import OrtRunner
from quantize.data import bundle_tiers
from quantize.int8 import calibration_feeds
from quantize.macs import mac_shares

__all__ = ["main"]

TARGETS = ("8.5", "10", "11")
#: Run in the ModelOpt interpreter: argv = fp32.onnx calib.npz method high_precision out.onnx.
MODELOPT_SCRIPT = """
import sys, numpy as np
from modelopt.onnx.quantization import quantize
src, calib, method, dtype, out = sys.argv[1:6]
with np.load(calib) as d:
    data = {k: d[k] for k in d.files}
quantize(onnx_path=src, quantize_mode="int8", calibration_data=data, calibration_method=method,
         calibration_eps=["cpu"], high_precision_dtype=dtype, output_path=out, log_level="WARNING")
"""


def _usable_modelopt(python: Path) -> Optional[str]:
    """None when `python` imports ModelOpt's ONNX quantizer, else why not."""
    if not python.is_file():
        return f"{python}: no such interpreter"
    proc = subprocess.run(
        [str(python), "-c", "import modelopt.onnx.quantization"], capture_output=True, text=True
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no error output"])[-1]
        return f"{python} cannot import modelopt.onnx.quantization: {last}"
    return None


def _modelopt(args, bundle: Bundle, work: Path) -> Dict[str, Path]:
    """ModelOpt INT8 of the bundle's FP32 model per calibration method, via its interpreter."""
    calibration = prepare_synthetic(
        bundle.spec, args.calib_samples, seed=args.seed, cache_dir=default_cache_dir()
    )
    feeds = calibration_feeds(calibration, args.seed)
    calib = work / "calibration.npz"
    np.savez(calib, **{k: np.concatenate([f[k] for f in feeds]) for k in feeds[0]})
    models = {}
    for method in args.methods.split(","):
        out = work / f"modelopt-{method}-{args.high_precision}.onnx"
        argv = [str(bundle.onnx_path("fp32")), str(calib), method, args.high_precision, str(out)]
        proc = subprocess.run([str(args.modelopt_python), "-c", MODELOPT_SCRIPT, *argv])
        if proc.returncode != 0:
            raise SystemExit(f"bench_modelopt: ModelOpt {method} failed (exit {proc.returncode})")
        models[f"modelopt {method} ({args.high_precision})"] = out
    return models


def _measure(path: Path, bundle: Bundle, tiers, threads: int) -> Dict[str, Any]:
    import onnx

    model = onnx.load(str(path))
    row: Dict[str, Any] = {
        "file": str(path),
        "opset": next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "int8_share": mac_shares(model, fp16_flag=True).share("int8"),
        "lint_errors": {t: len(errors(lint_onnx(model, t))) for t in TARGETS},
    }
    names = bundle.spec.class_names
    for mode, lower in (("ort", None), ("as_written", False)):
        with OrtRunner(str(path), threads=threads, lower_qdq=lower) as runner:
            for tier, (vset, reference) in tiers.items():
                output = bundle.spec.outputs[0].name
                logits = np.concatenate([runner.infer(f)[output] for f in vset.feeds(bundle.spec)])
                ref_uar = classification_metrics(reference, vset.labels, names)["uar"]
                row[f"{mode}/{tier}"] = {
                    "agreement": top1_agreement(reference, logits),
                    "uar_drop": ref_uar - classification_metrics(logits, vset.labels, names)["uar"],
                }
    return row


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bundle", type=Path, required=True, help="an edge-build --precision int8 bundle"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--modelopt-python", type=Path, help="interpreter with nvidia-modelopt")
    source.add_argument("--modelopt-onnx", help="already-quantized ModelOpt files, FILE[,FILE]")
    parser.add_argument("--methods", default="max,entropy", help="ModelOpt calibration methods")
    parser.add_argument(
        "--high-precision", default="fp16", choices=["fp16", "fp32"], help="ModelOpt's outside INT8"
    )
    parser.add_argument("--calib-samples", type=int, default=256, help="as the bundle's build")
    parser.add_argument("--seed", type=int, default=0, help="as the bundle's build")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    given: List[Path] = []
    if args.modelopt_onnx:
        given = [Path(p) for p in args.modelopt_onnx.split(",") if p]
        missing = [str(p) for p in given if not p.is_file()]
        if missing or not given:
            parser.error(f"--modelopt-onnx: no such file: {', '.join(missing) or '(none given)'}")
    elif args.modelopt_python:
        problem = _usable_modelopt(args.modelopt_python)
        if problem:
            parser.error(f"--modelopt-python {problem}")
    else:
        parser.error("needs --modelopt-python PY (ModelOpt's venv) or --modelopt-onnx FILE[,FILE]")
    if not (args.bundle / "manifest.json").is_file():
        parser.error(f"--bundle {args.bundle}: no manifest.json there (not an edge-build bundle)")
    if not (args.bundle / REDUCED_FILES["int8"]).is_file():
        parser.error(
            f"--bundle {args.bundle}: no {REDUCED_FILES['int8']} (build with --precision int8)"
        )

    bundle = Bundle.load(args.bundle)
    models = {"our default int8": bundle.onnx_path("int8")}
    models.update({p.stem: p for p in given})
    if args.modelopt_python:
        models.update(_modelopt(args, bundle, Path(tempfile.mkdtemp(prefix="bench-modelopt-"))))
    tiers = {}
    for tier, vset in bundle_tiers(bundle.root).items():
        with np.load(bundle.root / vset.file, allow_pickle=False) as data:
            tiers[tier] = (vset, data["reference_logits"])
    rows = {name: _measure(path, bundle, tiers, args.threads) for name, path in models.items()}
    floor = bundle.manifest["quantization"]["budget"].get("noise_floor", {}).get("tiers", {})
    _print(rows, floor, tiers)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "noise_floor": floor}, indent=2))
    return 0


def _print(rows, floor, tiers) -> None:
    floors = ", ".join(f"{t} {floor[t]['mean']:.4f}" for t in tiers if t in floor)
    print(f"FP32 noise floor (0.5 gray levels, from the bundle's manifest): {floors or 'none'}")
    head = "".join(f"{t + ' agree':>16}{'UAR drop':>10}" for t in tiers)
    print(f"{'model':30}{'run as':>12}{'opset':>7}{'INT8 MACs':>11}{'errors 8.5/10/11':>18}{head}")
    for name, row in rows.items():
        lint = "/".join(str(row["lint_errors"][t]) for t in TARGETS)
        for mode, label in (("ort", "OrtRunner"), ("as_written", "written")):
            cells = "".join(
                f"{row[f'{mode}/{t}']['agreement']:>16.3f}{row[f'{mode}/{t}']['uar_drop']:>+10.3f}"
                for t in tiers
            )
            print(
                f"{name:30}{label:>12}{row['opset']:>7}{row['int8_share']:>11.1%}{lint:>18}{cells}"
            )


if __name__ == "__main__":
    raise SystemExit(main())
