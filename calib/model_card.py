"""Model cards of the demo models, measured by the project on pseudo-subjects never trained on.

`python -m calib.model_card --arch mmnet|afnet_m|famnet` re-renders the recipe's held-out clips
(`calib.recipes`: same seed, same subject split as training), runs the checkpoint on them and
writes the card next to the asset: accuracy, UAR and UF1 (`edge.metrics`), and the share of
decisions kept under 0.25 and 1 gray level of input noise (`edge.noise`). The trainer
(`calib.train`) writes its card the same way.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from calib import synth
from calib.prepare import CalibrationSet, prepare_frame_sets
from calib.recipes import Recipe, recipe_for
from edge._lazy import require
from edge.metrics import label_metrics
from edge.noise import noise_stability
from edge.preprocess import stack_roles
from edge.spec import ModelSpec

__all__ = [
    "NOISE_LEVELS",
    "split_indices",
    "recipe_clips",
    "recipe_frames",
    "render",
    "concat",
    "batched",
    "torch_infer",
    "measure",
    "demo_card",
    "main",
]

#: Input noise (gray levels of 255) under which a card reports the decisions kept.
NOISE_LEVELS = (0.25, 1.0)
ASSETS = Path(__file__).resolve().parent.parent / "edge" / "models" / "assets"


def split_indices(recipe: Recipe, classes: Sequence[str]) -> Tuple[List[int], List[int]]:
    """Sample indices of the recipe's training and held-out pseudo-subjects."""
    subjects = synth.subject_schedule(range(recipe.samples), recipe.subjects, classes)
    held = set(recipe.held_out)
    train = [i for i, s in enumerate(subjects) if s not in held]
    return train, [i for i, s in enumerate(subjects) if s in held]


def recipe_clips(recipe: Recipe, spec: ModelSpec, indices: Sequence[int]) -> CalibrationSet:
    """The recipe's synthetic clips at `indices`, prepared exactly as the runtime prepares them."""
    samples = synth.generate(
        0, indices=indices, seed=recipe.data_seed, subjects=recipe.subjects,
        classes=spec.class_names, amplitude_px=recipe.amplitude_px,
        roles=spec.preprocessing.frames, depth_range_mm=spec.preprocessing.depth_range_mm,
    )  # fmt: skip
    return prepare_frame_sets(
        spec, [s.frames for s in samples], sample_ids=[s.sample_id for s in samples],
        subjects=[s.subject for s in samples], labels=[s.emotion for s in samples],
        source=f"synthetic (seed {recipe.data_seed}, amplitude {recipe.amplitude_px} px)",
        key=f"{recipe.arch}-recipe",
    )  # fmt: skip


def recipe_frames(recipe: Recipe, spec: ModelSpec, indices: Sequence[int]) -> np.ndarray:
    """The same clips as `recipe_clips`, as uint8 [N, roles, H, W, 3] at the storage size:
    what noise is added to for models whose inputs are computed from frames (optical flow)."""
    samples = synth.generate(
        0, indices=indices, seed=recipe.data_seed, subjects=recipe.subjects,
        classes=spec.class_names, amplitude_px=recipe.amplitude_px,
        roles=spec.preprocessing.frames, depth_range_mm=spec.preprocessing.depth_range_mm,
    )  # fmt: skip
    return np.stack([stack_roles(spec, s.frames) for s in samples])


def _render_job(job) -> CalibrationSet:
    recipe, spec, indices = job
    return recipe_clips(recipe, spec, indices)


def render(
    recipe: Recipe,
    spec: ModelSpec,
    indices: Sequence[int],
    *,
    workers: int = 1,
    chunk: int = 250,
    log: Callable[[str], None] = lambda line: None,
) -> CalibrationSet:
    """`recipe_clips` over many indices, in `workers` processes (rendering dominates a GPU run)."""
    jobs = [(recipe, spec, list(indices[at : at + chunk])) for at in range(0, len(indices), chunk)]
    parts: List[CalibrationSet] = []
    started = time.time()
    if workers > 1 and len(jobs) > 1:
        # spawn, not fork: the parent may already hold a CUDA context
        with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            for part in pool.imap(_render_job, jobs):
                parts.append(part)
                log(
                    f"  data: {sum(map(len, parts))}/{len(indices)} clips ({time.time() - started:.0f} s)"
                )
    else:
        for job in jobs:
            parts.append(_render_job(job))
            log(
                f"  data: {sum(map(len, parts))}/{len(indices)} clips ({time.time() - started:.0f} s)"
            )
    return concat(parts)


def concat(parts: Sequence[CalibrationSet]) -> CalibrationSet:
    first = parts[0]
    labels = None if first.labels is None else np.concatenate([p.labels for p in parts])
    return CalibrationSet(
        inputs={k: np.concatenate([p.inputs[k] for p in parts]) for k in first.inputs},
        sample_ids=tuple(i for p in parts for i in p.sample_ids),
        subjects=tuple(s for p in parts for s in p.subjects),
        labels=labels, class_names=first.class_names, source=first.source, key=first.key,
    )  # fmt: skip


def torch_infer(
    model, spec: ModelSpec, device: str
) -> Callable[[Dict[str, np.ndarray]], np.ndarray]:
    """feed -> FP32 logits of a PyTorch model (TF32 off, so a GPU decides like the CPU would)."""
    torch = require("torch", purpose="measuring a model card")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model = model.float().eval().to(device)
    names = spec.input_names()

    def infer(feed: Dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            out = model(
                *[torch.from_numpy(np.ascontiguousarray(feed[n])).to(device) for n in names]
            )
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out.float().cpu().numpy()

    return infer


def batched(
    infer: Callable[[Dict[str, np.ndarray]], np.ndarray], batch: int
) -> Callable[[Dict[str, np.ndarray]], np.ndarray]:
    """`infer` over a feed of any size, `batch` samples at a time."""

    def run(feed: Dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(feed.values())))
        return np.concatenate(
            [infer({k: v[at : at + batch] for k, v in feed.items()}) for at in range(0, n, batch)]
        )

    return run


def measure(
    infer: Callable[[Dict[str, np.ndarray]], np.ndarray],
    data: CalibrationSet,
    spec: ModelSpec,
    *,
    batch: int = 50,
    frames: Optional[np.ndarray] = None,
) -> Dict[str, Any]:
    """Accuracy, UAR, UF1 on `data` and the share of decisions kept under `NOISE_LEVELS`.

    Flow models get the noise on their frames (`frames`, the same clips as `data`), before the
    flow is computed; without `frames` their noise figures are None."""
    run = batched(infer, batch)
    feed = dict(data.inputs)
    logits = run(feed)
    metrics = label_metrics(data.labels, logits.argmax(1), spec.num_classes)
    kept: Dict[str, Optional[float]] = {}
    for level in NOISE_LEVELS:
        if spec.preprocessing.reads_flow:
            kept[str(level)] = None if frames is None else noise_stability(
                infer, data.feeds(), spec.preprocessing.std, level, seed=int(level * 1000),
                reference=logits, spec=spec, frames=frames,
            )  # fmt: skip
            continue
        stability = noise_stability(run, [feed], spec.preprocessing.std, level,
                                    seed=int(level * 1000), reference=logits)  # fmt: skip
        kept[str(level)] = stability
    return {**metrics, "decisions_kept_under_noise": kept}


def demo_card(
    loaded, recipe: Recipe, checkpoint: Path, held_out: Dict[str, Any], *, measured_on: str,
    training: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:  # fmt: skip
    """The JSON card shipped next to a demo asset (`edge.models.loaded.load_demo` reads it)."""
    spec = loaded.spec
    train, _ = split_indices(recipe, spec.class_names)
    card: Dict[str, Any] = {
        "arch": recipe.arch,
        "file": Path(checkpoint).name,
        "variant": spec.variant,
        "class_names": list(spec.class_names),
    }
    if "config" in loaded.info:
        card["config"] = loaded.info["config"]
    card.update({
        "recipe": "end to end from scratch ({} init): AdamW (weight decay {}), one-cycle LR {}, "
        "batch {}, {} epochs, label smoothing {}, {} gray levels of sensor noise{}; "
        "FP16 storage".format(
            "seeded" if recipe.position_norm_scale is None else
            f"seeded, position LayerNorm x{recipe.position_norm_scale}",
            recipe.weight_decay, recipe.lr, recipe.batch, recipe.epochs,
            recipe.label_smoothing, recipe.train_noise_gray,
            ", onset/apex flipped together" if recipe.pair_flip else "",
        ),
        "recipe_settings": recipe.to_dict(),
        "data": "synthetic (calib.synth, seed {}, {} clips over {} pseudo-subjects, amplitude "
        "{}-{} px)".format(recipe.data_seed, recipe.samples, recipe.subjects, *recipe.amplitude_px),
        "train_samples": len(train),
        "held_out": held_out,
        "chance": 1.0 / spec.num_classes,
        "measured_on": measured_on,
        "storage": "safetensors, float16",
        "training": training,
        "note": "a demo for exercising the deployment path, not a usable classifier: trained "
        "on synthetic clips made from two face photographs",
    })  # fmt: skip
    return card


def write_card(card: Dict[str, Any], path: Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return path


def resolve_device(device: str) -> str:
    torch = require("torch", purpose="choosing a device")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA device")
    return device


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calib.model_card", description=__doc__)
    parser.add_argument("--arch", choices=("mmnet", "afnet_m", "famnet"), required=True)
    parser.add_argument("--checkpoint", type=Path, help="default: the shipped demo asset")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes rendering the held-out clips")  # fmt: skip
    parser.add_argument("--card", type=Path, help="where to write the card (default: beside "
                        "the checkpoint, same name .json)")  # fmt: skip
    args = parser.parse_args(argv)
    from edge.models import architecture

    arch = architecture(args.arch)
    checkpoint = args.checkpoint or ASSETS / f"{args.arch}_demo.safetensors"
    if not checkpoint.is_file():
        print(f"{checkpoint}: checkpoint not found", file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    loaded = arch.load(checkpoint)
    recipe = recipe_for(args.arch)
    infer = torch_infer(loaded.model, loaded.spec, device)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    _, held = split_indices(recipe, loaded.spec.class_names)
    data = render(recipe, loaded.spec, held, workers=args.workers, log=log)
    held_out = {"subjects": list(recipe.held_out), **measure(infer, data, loaded.spec)}
    torch = require("torch", purpose="measuring a model card")
    measured_on = f"PyTorch {torch.__version__} FP32 on {device}"
    old = checkpoint.with_suffix(".json")
    training = (
        json.loads(old.read_text(encoding="utf-8")).get("training") if old.is_file() else None
    )
    card = demo_card(loaded, recipe, checkpoint, held_out, measured_on=measured_on,
                     training=training)  # fmt: skip
    path = write_card(card, args.card or checkpoint.with_suffix(".json"))
    print(json.dumps({"card": str(path), **held_out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
