"""The host build: checkpoint -> ONNX -> simplified ONNX -> verified bundle.

Each stage is a plain function call; the bundle is assembled in a staging directory and renamed
into place only after every check passed, so a failed build leaves nothing behind.
"""

from __future__ import annotations

import datetime
import logging
import math
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

import edge
from calib.faces import reference_samples
from edge._lazy import require
from edge.bundle import (
    FP32_FILE,
    REFERENCE_FILE,
    VALIDATION_SECTIONS,
    Manifest,
    staged_directory,
)
from edge.engine.plan import PRECISIONS as ENGINE_PRECISIONS
from edge.errors import EdgeBuildError, UsageError
from edge.export import BATCH_AXIS, onnx_from_model, op_histogram
from edge.models import architecture
from edge.parity import ParityReport, compare_outputs
from edge.preprocess import prepare_inputs, stack_roles
from edge.runtime.ort import OrtRunner
from edge.runtime.torch_runner import TorchRunner
from edge.spec import ModelSpec
from edge.targets import DEFAULT_TARGET, TARGETS, target
from quantize.data import ValidationSet, calibration_set, validation_tiers
from quantize.int8 import BIAS_CORRECTION, DEFAULT_RANGES, PLACEMENTS, QUANTIZERS, RANGES
from quantize.model_file import onnx_from_file
from quantize.polygraphy_io import write_polygraphy_references
from quantize.progress import Progress
from quantize.reduce import reduce_precision
from quantize.sensitivity import DEFAULT_NOISE_DRAWS
from quantize.simplify import simplify_onnx

__all__ = ["PRECISIONS", "BuildConfig", "BuildResult", "build_bundle", "reference_feeds"]

log = logging.getLogger(__name__)

#: The precisions a bundle can carry: one table shared with the device-side engine builder.
PRECISIONS = ENGINE_PRECISIONS

DEFAULT_TOLERANCE = 1e-4
#: One point of UAR (or of agreement where there are no labels), as issue 19 and ModelOpt use.
DEFAULT_MAX_ACCURACY_DROP = 0.01


def _one_of(option: str, value: Any, choices: Sequence[str]) -> None:
    """UsageError naming the option and its choices when `value` is not one of them."""
    if value not in choices:
        raise UsageError(f"{option} {value!r}: choose one of {', '.join(choices)}")


@dataclass
class BuildConfig:
    """Everything that decides a bundle's content; stored in the manifest as given."""

    out: Path
    arch: str = "mmnet"
    checkpoint: Optional[Path] = None
    #: a bring-your-own model (ONNX or torch.export .pt2) described by `spec_file`
    #: (quantize.spec_file, docs/byo.md) instead of a registered `arch`
    model: Optional[Path] = None
    spec_file: Optional[Path] = None
    precision: str = "fp32"
    target_trt: str = DEFAULT_TARGET
    simplifier: str = "auto"
    dynamic_batch: bool = False
    class_names: Optional[Tuple[str, ...]] = None
    parity_tolerance: float = DEFAULT_TOLERANCE
    seed: int = 0
    lint_only: bool = False
    val_samples: int = 40
    #: clips of the hard validation tier (quantize.data.hard_validation); 0 for none. 300: on
    #: 100 the noise floor moved by 2 points between clip samples (docs/quantization.md)
    hard_val_samples: int = 300
    calib_data: str = "synthetic"
    calib_samples: int = 128
    cache_dir: Optional[Path] = None
    quantizer: str = "nncf"
    calib_align: str = "precropped"
    #: apply the datasets' known annotation fixes (calib.fixes) when reading DATASET:ROOT
    annotation_fixes: bool = True
    #: INT8 accuracy budget: UAR drop on the labelled validation tiers, else 1 - agreement
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP
    #: nodes the user keeps out of INT8 whatever the measurement says (the ModelSpec's
    #: precision hints only seed the placement search)
    int8_exclude: Optional[Tuple[str, ...]] = None
    #: how activation ranges are calibrated (quantize.int8.RANGES); None: the quantizer's default
    int8_ranges: Optional[str] = None
    #: where Q/DQ goes (quantize.int8.PLACEMENTS): all the quantizer picks, or weighted ops only
    int8_placement: str = "all"
    #: NNCF's fast bias correction (quantize.int8.BIAS_CORRECTION): on, off, or auto (measured)
    int8_bias_correction: str = "auto"
    #: the placement search refuses a ranking costing more quantizations than this
    max_search_quantizations: int = 16
    #: seeded draws of 0.5 gray levels of noise FP32's own agreement (the floor INT8 must
    #: reach on every tier) is averaged over; 0: the budget alone judges
    noise_floor_draws: int = DEFAULT_NOISE_DRAWS

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse arguments that cannot work, before any export or calibration.

        Raises:
            UsageError: naming the option and the accepted values.
        """
        if (self.model is None) != (self.spec_file is None):
            raise UsageError(
                "--model needs --spec (a YAML/JSON file describing its inputs, outputs and "
                "classes; docs/byo.md)"
                if self.model is not None
                else "--spec describes a --model file; pass both"
            )
        if self.model is not None and self.checkpoint is not None:
            raise UsageError(
                "--checkpoint loads weights into a registered --arch; a --model file carries "
                "its own weights: drop --checkpoint"
            )
        _one_of("--precision", self.precision, PRECISIONS)
        _one_of("--quantizer", self.quantizer, QUANTIZERS)
        if self.int8_ranges is None:  # the quantizer's measured default
            self.int8_ranges = DEFAULT_RANGES[self.quantizer]
        if self.int8_ranges not in RANGES[self.quantizer]:
            raise UsageError(
                f"--calib-ranges {self.int8_ranges!r} is not offered by {self.quantizer}; "
                f"choose one of {', '.join(RANGES[self.quantizer])}"
            )
        _one_of("--int8-placement", self.int8_placement, PLACEMENTS)
        _one_of("--calib-bias-correction", self.int8_bias_correction, BIAS_CORRECTION)
        if self.quantizer != "nncf" and self.int8_bias_correction == "off":
            raise UsageError(
                f"--calib-bias-correction off: --quantizer {self.quantizer} has no bias "
                "correction to turn off"
            )
        drop = self.max_accuracy_drop
        if not isinstance(drop, (int, float)) or not math.isfinite(drop) or not 0 <= drop <= 1:
            raise UsageError(
                f"--max-accuracy-drop {drop!r}: expected a fraction between 0 and 1 "
                "(0.01 = one point of UAR)"
            )
        for option, value in (("--calib-samples", self.calib_samples),
                              ("--val-samples", self.val_samples)):  # fmt: skip
            if not isinstance(value, int) or value < 0:
                raise UsageError(f"{option} {value!r}: expected a count >= 0")
        if self.precision == "int8" and self.calib_samples == 0 and not self.lint_only:
            raise UsageError(
                "--precision int8 needs calibration data: --calib-samples must be > 0 "
                "(256 is a good start)"
            )
        if not isinstance(self.max_search_quantizations, int) or self.max_search_quantizations < 1:
            raise UsageError(
                f"--max-search-quantizations {self.max_search_quantizations!r}: expected a "
                "count >= 1"
            )
        if not isinstance(self.noise_floor_draws, int) or self.noise_floor_draws < 0:
            raise UsageError(
                f"--noise-floor-draws {self.noise_floor_draws!r}: expected a count >= 0 "
                "(0: no noise floor)"
            )
        if not math.isfinite(self.parity_tolerance) or self.parity_tolerance <= 0:
            raise UsageError(
                f"--parity-tolerance {self.parity_tolerance!r}: expected a positive number"
            )
        _one_of("--target-trt", self.target_trt, TARGETS)

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.out)
        data["checkpoint"] = str(self.checkpoint) if self.checkpoint else None
        data["model"] = str(self.model) if self.model else None
        data["spec_file"] = str(self.spec_file) if self.spec_file else None
        if self.model is not None:
            data["arch"] = None  # the spec file describes the model, not a registered arch
        data["class_names"] = list(self.class_names) if self.class_names else None
        data["cache_dir"] = str(self.cache_dir) if self.cache_dir else None
        return data


@dataclass
class BuildResult:
    out: Optional[Path]
    manifest: Dict[str, Any]
    timings: Dict[str, float] = field(default_factory=dict)
    lint: List[Any] = field(default_factory=list)


class _LintOnly(Exception):
    """Raised inside the staging block to discard it after a --lint-only run."""

    def __init__(self, findings: List[Any]) -> None:
        super().__init__("lint only")
        self.findings = findings


def lint_for_target(path: Path, target_name: str) -> List[Any]:
    """Lint `path` for every release of the target; stop with the offending nodes on errors."""
    from edge.lint import errors, lint_onnx

    findings = lint_onnx(path, target_name)
    bad = errors(findings)
    if bad:
        raise EdgeBuildError(
            "{} would be rejected by TensorRT {}: {}".format(
                path.name, target_name, "; ".join(str(f) for f in bad)
            )
        )
    return findings


def reference_feeds(spec: ModelSpec) -> Tuple[List[str], List[Dict[str, np.ndarray]], np.ndarray]:
    """Real faces (and their mirror images) as model feeds, plus the raw uint8 frames
    [N, roles, H, W, 3] in the spec's role order."""
    names: List[str] = []
    feeds: List[Dict[str, np.ndarray]] = []
    frames: List[np.ndarray] = []
    prep = spec.preprocessing
    for name, by_role in reference_samples(
        prep.frames, prep.storage_size, depth_range_mm=prep.depth_range_mm
    ):
        for suffix, flip in (("", False), ("-mirrored", True)):
            sample = {
                role: np.ascontiguousarray(f[:, ::-1]) if flip else f for role, f in by_role.items()
            }
            names.append(name + suffix)
            feeds.append(prepare_inputs(spec, sample))
            frames.append(stack_roles(spec, sample))
    return names, feeds, np.stack(frames)


def _git_sha() -> Optional[str]:
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _check_batched(onnx_path: Path, feeds: Sequence[Mapping[str, np.ndarray]], single, tol):
    """With a dynamic batch, one batched run must equal the per-sample runs."""
    batched = {k: np.concatenate([f[k] for f in feeds]) for k in feeds[0]}
    with OrtRunner(onnx_path) as runner:
        out = runner.infer(batched)
    split = [{k: v[i : i + 1] for k, v in out.items()} for i in range(len(feeds))]
    return compare_outputs(
        single,
        split,
        tolerance=tol,
        reference_name="onnxruntime batch 1",
        candidate_name=f"onnxruntime batch {len(feeds)}",
    ).raise_if_failed()


def build_bundle(config: BuildConfig, *, progress: Optional[Progress] = None) -> BuildResult:
    """Run the host stage and write the bundle to `config.out`."""
    if config.precision not in PRECISIONS:
        raise EdgeBuildError(
            "unknown precision {!r}; choose one of {}".format(
                config.precision, ", ".join(PRECISIONS)
            )
        )
    trt = target(config.target_trt)
    if config.model is not None:  # every spec/model check before any work or output
        loaded, source, spec_file = _own_model(config, trt)
    progress = progress or Progress(8 if config.precision != "fp32" else 7)
    if config.model is not None:
        with progress.stage("Loading model", "load"):
            progress.note("{} ({}, sha256 {}) described by {}{}".format(
                source.path.name, source.kind, source.sha256[:12], spec_file.path,
                "".join("; " + n for n in source.notes)))  # fmt: skip
        return _build_checked(config, loaded, trt, progress, source, spec_file)
    arch = architecture(config.arch)

    with progress.stage("Loading model", "load"):
        if config.checkpoint is None:
            loaded = arch.build_demo()
            if config.class_names:
                loaded.spec = loaded.spec.with_class_names(config.class_names)
            if loaded.info.get("trained"):
                progress.note("no --checkpoint: the built-in demo {} {} ({})".format(
                    loaded.spec.arch, loaded.spec.variant, loaded.info["checkpoint"]))  # fmt: skip
            else:
                progress.note("no --checkpoint and no trained demo shipped: a seeded UNTRAINED "
                              f"{loaded.spec.arch} {loaded.spec.variant}")  # fmt: skip
        else:
            loaded = arch.load(config.checkpoint, class_names=config.class_names)
            progress.note(f"{loaded.spec.arch} {loaded.spec.variant} from {config.checkpoint}")
    return _build_checked(config, loaded, trt, progress)


def _own_model(config: BuildConfig, trt) -> Tuple[Any, Any, Any]:
    """Spec file + model file, checked against each other and the target (UsageError)."""
    from edge.models.exported import exported_module
    from edge.models.loaded import LoadedModel
    from quantize.model_file import check_model_file
    from quantize.spec_file import load_spec_file

    spec_file = load_spec_file(config.spec_file)
    try:
        spec = spec_file.spec.with_class_names(config.class_names)
    except EdgeBuildError as exc:
        raise UsageError(f"--class-names: {exc}") from None
    source = check_model_file(
        config.model, spec_file.path, spec, trt, dynamic_batch=config.dynamic_batch
    )
    info = {**source.info(), "spec_file": spec_file.path.name,
            "spec_file_sha256": spec_file.sha256, "spec_file_content": spec_file.content}  # fmt: skip
    model = exported_module(source.program) if source.kind == "pt2" else None
    if spec_file.keep_out_of_int8 and not config.int8_exclude:
        config.int8_exclude = spec_file.keep_out_of_int8
    return LoadedModel(model=model, spec=spec, info=info), source, spec_file


def _build_checked(config, loaded, trt, progress, source=None, spec_file=None) -> BuildResult:
    spec = loaded.spec
    if config.dynamic_batch:
        spec = spec.with_batch(BATCH_AXIS)
    try:
        return _build_in_staging(config, loaded, spec, trt, progress, source)
    except _LintOnly as done:
        return BuildResult(out=None, manifest={}, timings=dict(progress.timings),
                           lint=done.findings)  # fmt: skip


def _reference_runner(loaded, spec, source):
    """What the export is checked against: the PyTorch model, or the user's ONNX as given."""
    if source is not None and source.kind == "onnx":
        return OrtRunner(source.path), ", the file as given"
    return TorchRunner(loaded.model, spec), ""


def _build_in_staging(config, loaded, spec, trt, progress, source=None) -> BuildResult:
    names, feeds, frames = reference_feeds(spec)
    tol = config.parity_tolerance
    with staged_directory(config.out) as staging:
        work = staging / ".work"
        work.mkdir()
        raw_path = work / "exported.onnx"
        final_path = staging / FP32_FILE

        if source is not None and source.kind == "onnx":
            with progress.stage(f"Writing the ONNX at opset {trt.opset}", "export"):
                export = onnx_from_file(source, spec, raw_path, opset=trt.opset,
                                        dynamic_batch=config.dynamic_batch)  # fmt: skip
        else:
            with progress.stage(f"Exporting ONNX (opset {trt.opset})", "export"):
                export = onnx_from_model(
                    loaded.model, spec, raw_path, opset=trt.opset,
                    dynamic_batch=config.dynamic_batch,
                )  # fmt: skip

        with progress.stage(f"Checking export parity on {len(feeds)} face samples", "parity"):
            reference, suffix = _reference_runner(loaded, spec, source)
            with reference as torch_runner:
                torch_out = [torch_runner.infer(f) for f in feeds]
                torch_name = torch_runner.executor + suffix
            with OrtRunner(raw_path) as ort_runner:
                raw_out = [ort_runner.infer(f) for f in feeds]
                ort_name = ort_runner.executor
            export_parity = compare_outputs(
                torch_out,
                raw_out,
                tolerance=tol,
                reference_name=torch_name,
                candidate_name=ort_name + ", exported ONNX",
            ).raise_if_failed()
            progress.note(export_parity.summary())

        with progress.stage(f"Simplifying ({config.simplifier})", "simplify"):
            simplified = simplify_onnx(
                raw_path, final_path, method=config.simplifier, opset=trt.opset
            )
            with OrtRunner(final_path) as ort_runner:
                final_out = [ort_runner.infer(f) for f in feeds]
            simplify_parity = compare_outputs(
                raw_out,
                final_out,
                tolerance=tol,
                reference_name=ort_name + ", exported ONNX",
                candidate_name=ort_name + ", simplified ONNX",
            ).raise_if_failed()
            final_parity = compare_outputs(
                torch_out,
                final_out,
                tolerance=tol,
                reference_name=torch_name,
                candidate_name=ort_name + ", simplified ONNX",
            ).raise_if_failed()
            batch_parity: Optional[ParityReport] = None
            if config.dynamic_batch:
                batch_parity = _check_batched(final_path, feeds, final_out, tol)
            progress.note(
                "{}: {} -> {} nodes{}; {}".format(
                    simplified.tool,
                    simplified.nodes_before,
                    simplified.nodes_after,
                    f" (fallback: {simplified.fallback_reason})"
                    if simplified.fallback_reason
                    else "",
                    final_parity.summary(),
                )
            )

        with progress.stage(f"Linting for TensorRT {trt.name}", "lint"):
            findings = lint_for_target(final_path, trt.name)
            progress.note("clean" if not findings else "; ".join(str(f) for f in findings))
        if config.lint_only:
            raise _LintOnly(findings)

        with progress.stage("Preparing validation and calibration data", "data"):
            validation, validation_entry, fp32_logits, tiers = _validation(
                config, spec, final_path, staging
            )
            calibration = calibration_set(
                spec,
                config.calib_data,
                config.calib_samples,
                seed=config.seed,
                required=config.precision == "int8",
                alignment=config.calib_align,
                annotation_fixes=config.annotation_fixes,
                cache_dir=config.cache_dir,
            )
            if validation_entry:
                fp32 = validation_entry["fp32_metrics"]
                progress.note("validation: {} labelled clips, FP32 accuracy {:.1%}, UAR {:.1%}".format(
                    validation_entry["samples"], fp32["accuracy"], fp32["uar"]))  # fmt: skip
            if "hard" in tiers:
                fp32 = tiers["hard"].entry["fp32_metrics"]
                progress.note("hard validation tier: {} clips, FP32 accuracy {:.1%}, UAR {:.1%}".format(
                    tiers["hard"].entry["samples"], fp32["accuracy"], fp32["uar"]))  # fmt: skip
            if calibration is not None:
                progress.note(f"calibration: {len(calibration)} samples from {calibration.source}")  # fmt: skip

        reduced = quantization = None
        if config.precision != "fp32":
            with progress.stage(f"Building {config.precision.upper()} model", config.precision):
                reduced, quantization = reduce_precision(
                    config, spec, trt, final_path, staging, validation=validation,
                    fp32_logits=fp32_logits, calibration=calibration, lint=lint_for_target,
                    report=progress.live,
                    extra_tiers={n: t.data for n, t in tiers.items() if n != "standard"},
                    extra_logits={n: t.fp32_logits for n, t in tiers.items() if n != "standard"},
                )  # fmt: skip
                measured = reduced["measured_vs_fp32"]
                if measured:
                    progress.note("{}: top-1 agreement with FP32 {:.1%}, max |logit diff| {:.3g}"
                                  .format(config.precision, measured["top1_agreement"],
                                          measured["logits"]["max_abs_error"]))  # fmt: skip

        with progress.stage("Writing bundle", "bundle"):
            shutil.rmtree(work)
            logits_name = spec.outputs[0].name
            np.savez_compressed(
                staging / REFERENCE_FILE,
                names=np.asarray(names),
                frames=frames,
                reference_logits=np.concatenate([o[logits_name] for o in torch_out]),
            )
            polygraphy = write_polygraphy_references(
                staging, feeds, final_out, runner_name=ort_name, model_file=FP32_FILE
            )
            onnx = require("onnx", purpose="reading the simplified model")
            manifest = _manifest(
                config,
                loaded.info,
                spec,
                trt,
                export,
                simplified,
                onnx.load(str(final_path)),
                names,
                torch_name,
                {
                    "tolerance": tol,
                    "export": export_parity.to_dict(),
                    "simplify": simplify_parity.to_dict(),
                    "final": final_parity.to_dict(),
                    "batch": batch_parity.to_dict() if batch_parity else None,
                },
                progress.timings,
            )
            if reduced is not None:
                manifest["models"][config.precision] = reduced
                manifest["quantization"] = quantization
            manifest["validation"] = validation_entry
            if "hard" in tiers:
                manifest[VALIDATION_SECTIONS["hard"]] = tiers["hard"].entry
            manifest["polygraphy"] = polygraphy
            manifest["calibration"] = calibration.summary() if calibration is not None else None
            manifest["lint"] = {
                "target": trt.name,
                "findings": [f.to_dict() for f in findings],
            }
            Manifest.from_dict(manifest).write(staging)
    return BuildResult(out=Path(config.out), manifest=manifest, timings=dict(progress.timings),
                       lint=findings)  # fmt: skip


@dataclass(frozen=True)
class _Tier:
    """One validation tier as written to the bundle."""

    data: ValidationSet
    fp32_logits: np.ndarray
    entry: Dict[str, Any]


def _validation(config, spec, model_path, staging):
    """Write the bundle's validation tiers with FP32 reference logits. Returns the standard
    tier's set, manifest entry and logits (None when no data fits) and every tier by name."""
    sets = validation_tiers(spec, standard=config.val_samples, hard=config.hard_val_samples,
                            seed=config.seed, cache_dir=config.cache_dir)  # fmt: skip
    tiers: Dict[str, _Tier] = {}
    logits_name = spec.outputs[0].name
    if sets:
        with OrtRunner(model_path) as runner:
            for name, data in sets.items():
                logits = np.concatenate([runner.infer(f)[logits_name] for f in data.feeds(spec)])
                data.save(staging / data.file, logits)
                tiers[name] = _Tier(
                    data, logits, data.manifest_entry(spec, logits, runner.executor)
                )
    standard = tiers.get("standard")
    if standard is None:
        return None, None, None, tiers
    return standard.data, standard.entry, standard.fp32_logits, tiers


def _manifest(
    config, info, spec, trt, export, simplified, final_model, names, torch_name, parity, timings
) -> Dict[str, Any]:
    checkpoint = info.get("checkpoint")
    own = {k: info[k] for k in ("model_file", "model_file_sha256", "model_format",
                                "model_file_opset", "spec_file", "spec_file_sha256") if k in info}  # fmt: skip
    if own:
        own["spec_file_content"] = info.get("spec_file_content")
    return {
        "producer": {
            "tool": "mer-edge",
            "version": edge.__version__,
            "git_sha": _git_sha(),
            "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "python": sys.version.split()[0],
            "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else None,
        },
        "model": {
            "arch": spec.arch,
            "variant": spec.variant,
            "trained": bool(info.get("trained")),
            "seed": info.get("seed"),
            "checkpoint": Path(checkpoint).name if checkpoint else None,
            "checkpoint_sha256": info.get("checkpoint_sha256"),
            "stripped_prefix": info.get("stripped_prefix"),
            "ignored_dead_keys": info.get("ignored_dead_keys", []),
            "demo_card": info.get("demo_card"),
            "class_names": list(spec.class_names),
            "num_classes": spec.num_classes,
            "spec": spec.to_dict(),
            **own,
        },
        "target": {"tensorrt": trt.name, "opset": trt.opset, "jetpack": trt.jetpack},
        "export": export.to_dict(),
        "simplification": simplified.to_dict(),
        "models": {
            "fp32": {
                "file": FP32_FILE,
                "precision": "fp32",
                "nodes": len(final_model.graph.node),
                "ops": op_histogram(final_model),
            }
        },
        "parity": parity,
        "reference": {
            "file": REFERENCE_FILE,
            "samples": list(names),
            "content": "frames: uint8 [N, {} ({}), H, W, 3] RGB (depth as grey); "
            "reference_logits from {}".format(
                len(spec.preprocessing.frames), ", ".join(spec.preprocessing.frames), torch_name
            ),
        },
        "quantization": None,
        "engines": [],
        "config": config.to_dict(),
        "timings_s": dict(timings),
    }
