"""Train a demo model end to end on synthetic micro-expressions: one trainer for the three
architectures and the shipped bring-your-own example.

    python -m calib.train --arch mmnet|afnet_m|famnet --out FILE.safetensors
    python -m calib.train --arch ststnet --out FILE.onnx
        [--device auto|cpu|cuda] [--epochs N] [--samples N] [--subjects N] [--seed S]

The defaults are the recipes that made the shipped demos (`calib.recipes`): on a GPU they
reproduce them from the seed, in a few minutes each. CPU training of a whole recipe takes hours;
a CPU run with a few samples and one epoch is a smoke test of the same code.

Steps: render the recipe's clips (`calib.synth`, in worker processes) and prepare them exactly
as the runtime does; hold out the last two pseudo-subjects; train with AdamW, one-cycle LR,
label smoothing and sensor noise on every frame (bf16 autocast on CUDA); store FP16 weights
(MMNet as the official-key state_dict, the others in the project format); reload them through
the strict loader and write the model card (`calib.model_card`) beside the checkpoint.

`ststnet` (`calib.examples.ststnet`) is no registered architecture: it ships as an ONNX file
plus a spec file, as a user's own model would. Its inputs are optical flow computed by
`edge.preprocess.prepare_inputs` from the rendered frames, the code the runtime runs; it is
exported to ONNX (FP32), and its card is measured by ONNX Runtime on that very file, with
noise added to the frames before the flow.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, Callable, Dict, List, Optional, Sequence

from calib import model_card
from calib.recipes import RECIPES, Recipe, demo_config, recipe_for
from edge._lazy import require

__all__ = ["EXAMPLES", "train", "main"]

#: Shipped bring-your-own examples: arch -> module with `ststnet_spec`-style `spec()`,
#: `build_model(seed)` and `export(model, out)`; trained here, deployed as ONNX + spec file.
EXAMPLES = {"ststnet": "calib.examples.ststnet"}


def _example(arch: str) -> Optional[ModuleType]:
    return importlib.import_module(EXAMPLES[arch]) if arch in EXAMPLES else None


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _build(recipe: Recipe):
    """The untrained model of the recipe, from its init seed."""
    from edge.models import architecture

    arch = architecture(recipe.arch)
    if recipe.arch == "mmnet":
        loaded = arch.build_seeded(recipe.init_seed)
    else:
        loaded = arch.build_seeded(recipe.init_seed, config=demo_config(recipe.arch))
    if recipe.position_norm_scale is not None:
        # The position branch's output is ~8x larger than the motion features at init and
        # carries identity, not motion; starting it small lets the motion branch lead.
        torch = require("torch", purpose="training a demo model")
        with torch.no_grad():
            loaded.model.vit_pos.norm.weight.mul_(recipe.position_norm_scale)
            loaded.model.vit_pos.norm.bias.mul_(recipe.position_norm_scale)
    return arch, loaded


def _save(arch, model, recipe: Recipe, out: Path) -> None:
    """FP16 weights: MMNet as the official-key plain state_dict, the others in the project
    format (arch and config in the metadata)."""
    torch = require("torch", purpose="saving a demo model")
    model = model.cpu().eval()
    if recipe.arch == "mmnet":
        safetensors_torch = require("safetensors.torch", purpose="saving a demo model")
        half = {
            k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous()
            for k, v in model.state_dict().items()
        }
        safetensors_torch.save_file(half, str(out))
    else:
        with torch.no_grad():
            arch.save(model.half(), out)
        model.float()


class _Trainer:
    """The training loop of the reference recipes, on tensors already on the device."""

    def __init__(self, model, spec, recipe: Recipe, device: str):
        torch = require("torch", purpose="training a demo model")
        self.torch, self.model, self.spec, self.recipe = torch, model, spec, recipe
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.names = spec.input_names()
        std = torch.tensor(spec.preprocessing.std, dtype=torch.float32, device=self.device)
        self.channels = len(spec.preprocessing.std)
        # Sensor noise is pixel noise: it belongs on frames, not on inputs computed from them
        # (optical flow), which carry the rendered clips' own noise already.
        self.noisy = recipe.train_noise_gray > 0 and not spec.preprocessing.reads_flow
        self.sigma_per_gray = 1.0 / 255.0 / std  # normalised units per gray level, per channel
        self.generator = torch.Generator(device=self.device).manual_seed(recipe.shuffle_seed)

    def tensors(self, data) -> List[Any]:
        return [self.torch.from_numpy(data.inputs[n]).to(self.device) for n in self.names]

    def _is_image(self, x) -> bool:
        return x.is_floating_point() and x.dim() >= 4 and x.shape[1] == self.channels

    def _noise(self, x, gray: float, generator):
        sigma = (gray * self.sigma_per_gray).view((1, -1) + (1,) * (x.dim() - 2))
        noise = self.torch.randn(x.shape, device=self.device, generator=generator)
        return x + noise * sigma

    def forward(self, xs):
        out = self.model(*xs)
        return out[0] if isinstance(out, (tuple, list)) else out

    def batch(self, xs, idx):
        torch, recipe = self.torch, self.recipe
        xs = [x[idx] for x in xs]
        if recipe.pair_flip:  # one flip for the whole clip keeps the motion consistent
            flip = torch.rand(len(idx), device=self.device, generator=self.generator) < 0.5
            xs = [torch.where(flip.view((-1,) + (1,) * (x.dim() - 1)), x.flip(-1), x) for x in xs]
        return [
            self._noise(x, recipe.train_noise_gray, self.generator)
            if self.noisy and self._is_image(x)
            else x
            for x in xs
        ]

    def logits(self, xs, batch: int = 256):
        torch = self.torch
        self.model.eval()
        n = len(xs[0])
        with torch.no_grad():
            return torch.cat(
                [
                    self.forward([x[at : at + batch] for x in xs]).float()
                    for at in range(0, n, batch)
                ]
            )

    def fit(
        self, xs, labels, held_xs, held_labels, *, epochs: int, log: Callable[[str], None]
    ) -> List[Dict[str, float]]:
        torch, recipe = self.torch, self.recipe
        model = self.model
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
        )
        steps_per_epoch = (len(labels) + recipe.batch - 1) // recipe.batch
        total = steps_per_epoch * epochs
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=recipe.lr, total_steps=max(total, 1), pct_start=0.1
        )
        history, step, started = [], 0, time.time()
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(len(labels), device=self.device, generator=self.generator)
            loss_sum = 0.0
            for at in range(0, len(order), recipe.batch):
                idx = order[at : at + recipe.batch]
                batch = self.batch(xs, idx)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
                    out = self.forward(batch)
                    loss = torch.nn.functional.cross_entropy(
                        out.float(), labels[idx], label_smoothing=recipe.label_smoothing
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if step < total - 1:
                    schedule.step()
                step += 1
                loss_sum += loss.item() * len(idx)
            accuracy = (self.logits(held_xs).argmax(1) == held_labels).float().mean().item()
            history.append({
                "epoch": epoch, "loss": loss_sum / len(labels), "held_out_accuracy": accuracy,
                "s": round(time.time() - started, 1),
            })  # fmt: skip
            log("epoch {}/{}: loss {:.4f}, held-out accuracy {:.1%} ({:.0f} s)".format(
                epoch + 1, epochs, history[-1]["loss"], accuracy, time.time() - started))  # fmt: skip
        model.eval()
        return history


def train(
    recipe: Recipe,
    out: Path,
    *,
    device: str = "auto",
    workers: int = 1,
    log: Callable[[str], None] = _say,
) -> Dict[str, Any]:
    """Train `recipe`, store the FP16 checkpoint at `out` and its card beside it; the card."""
    torch = require("torch", purpose="training a demo model")
    device = model_card.resolve_device(device)
    out = Path(out)
    torch.manual_seed(recipe.init_seed)
    example = _example(recipe.arch)
    if example is None:
        arch, loaded = _build(recipe)
    else:
        arch = None
        loaded = SimpleNamespace(
            spec=example.spec(), model=example.build_model(recipe.init_seed), info={}
        )
    spec = loaded.spec
    train_idx, held_idx = model_card.split_indices(recipe, spec.class_names)
    if not train_idx or not held_idx:
        raise ValueError(
            f"{recipe.samples} samples over {recipe.subjects} subjects leave "
            f"{len(train_idx)} training and {len(held_idx)} held-out clips; both must be > 0"
        )
    started = time.time()
    log(f"{recipe.arch}: rendering {recipe.samples} clips ({workers} worker(s))")
    # Rendering first: spawned workers start before this process touches CUDA.
    train_data = model_card.render(recipe, spec, train_idx, workers=workers, log=log)
    held_data = model_card.render(recipe, spec, held_idx, workers=workers, log=log)
    data_s = time.time() - started
    log(f"{recipe.arch}: {len(train_data)} training, {len(held_data)} held-out clips "
        f"({', '.join(recipe.held_out)}) in {data_s:.0f} s; training on {device}")  # fmt: skip

    model = loaded.model.to(device)
    trainer = _Trainer(model, spec, recipe, device)
    labels = torch.from_numpy(train_data.labels).to(device)
    held_labels = torch.from_numpy(held_data.labels).to(device)
    train_started = time.time()
    history = trainer.fit(
        trainer.tensors(train_data), labels, trainer.tensors(held_data), held_labels,
        epochs=recipe.epochs, log=log,
    )  # fmt: skip
    train_s = time.time() - train_started
    del trainer
    out.parent.mkdir(parents=True, exist_ok=True)
    if example is not None:
        return _finish_example(
            example, model, spec, recipe, out, held_idx, held_data, history,
            train_s=train_s, data_s=data_s, log=log,
        )  # fmt: skip
    partial = out.with_name(out.stem + ".partial" + out.suffix)
    try:
        _save(arch, model, recipe, partial)
        reloaded = arch.load(partial)  # the stored FP16 weights, through the strict loader
        infer = model_card.torch_infer(reloaded.model, spec, device)
        held_out = {"subjects": list(recipe.held_out), **model_card.measure(infer, held_data, spec)}
        os.replace(partial, out)
    finally:
        if partial.exists():
            partial.unlink()
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    training = {
        "hardware": f"{name} ({'bf16 autocast' if device == 'cuda' else 'FP32'})",
        "script": "python -m calib.train",
        "epochs_run": len(history),
        "train_s": round(train_s, 1),
        "data_s": round(data_s, 1),
        "log": history,
    }
    measured_on = f"PyTorch {torch.__version__} FP32 on {device}"
    card = model_card.demo_card(reloaded, recipe, out, held_out, measured_on=measured_on,
                                training=training)  # fmt: skip
    model_card.write_card(card, out.with_suffix(".json"))
    return card


def _finish_example(
    example: ModuleType, model, spec, recipe: Recipe, out: Path, held_idx, held_data,
    history: List[Dict[str, float]], *, train_s: float, data_s: float, log: Callable[[str], None],
) -> Dict[str, Any]:  # fmt: skip
    """Export a bring-your-own example to ONNX + spec file, measure the ONNX file itself with
    ONNX Runtime on the held-out clips, and write its card; files land only when all worked."""
    from edge.runtime.ort import OrtRunner

    staging = out.parent / (out.stem + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        written = example.export(model, staging / out.name)
        log(f"{recipe.arch}: measuring {out.name} with ONNX Runtime on the held-out clips")
        frames = model_card.recipe_frames(recipe, spec, held_idx)
        with OrtRunner(written["onnx"], threads=1) as runner:
            output = spec.output_names()[0]

            def infer(feed: Dict[str, Any]) -> Any:
                return runner.infer(feed)[output]

            held_out = {
                "subjects": list(recipe.held_out),
                **model_card.measure(infer, held_data, spec, batch=1, frames=frames),
            }
            executor = runner.executor
        training = {
            "hardware": "CPU (FP32)",
            "script": f"python -m calib.train --arch {recipe.arch} --out {out.name}",
            "epochs_run": len(history),
            "train_s": round(train_s, 1),
            "data_s": round(data_s, 1),
            "log": history,
        }
        card = model_card.demo_card(loaded_like(spec), recipe, out, held_out,
                                    measured_on=f"{executor}, on {out.name} itself",
                                    training=training)  # fmt: skip
        card["recipe"] = card["recipe"].replace("FP16 storage", "exported to FP32 ONNX")
        card["storage"] = f"ONNX opset {example.OPSET}, float32, static batch 1"
        card["files"] = {k: p.name for k, p in written.items()}
        card["noise"] = (
            "decisions kept under Gaussian noise of that many gray levels added to the uint8 "
            "frames before the flow is computed"
        )
        card_path = staging / (out.stem + ".card.json")
        model_card.write_card(card, card_path)
        for path in sorted(staging.iterdir()):
            os.replace(path, out.parent / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def loaded_like(spec) -> SimpleNamespace:
    """What `model_card.demo_card` reads of a loaded model, for an example without a loader."""
    return SimpleNamespace(spec=spec, info={})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m calib.train", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--arch", choices=sorted(RECIPES), required=True)
    parser.add_argument(
        "--out", type=Path, required=True,
        help="checkpoint to write (.safetensors; .onnx for the examples, with a spec file and "
        "card beside it)",
    )  # fmt: skip
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--epochs", type=int, help="default: the recipe's (40)")
    parser.add_argument("--samples", type=int, help="clips rendered, training + held-out")
    parser.add_argument("--subjects", type=int,
                        help="pseudo-subjects (default 16); the last two are held out")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initial weights, batch order, flips and noise")  # fmt: skip
    parser.add_argument("--data-seed", type=int, help="seed of the clips (default: the recipe's)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes rendering clips")  # fmt: skip
    return parser


def _recipe(args: argparse.Namespace) -> Recipe:
    recipe = recipe_for(args.arch)
    changes: Dict[str, Any] = {"init_seed": args.seed, "shuffle_seed": args.seed}
    for field, value in (("epochs", args.epochs), ("samples", args.samples),
                         ("data_seed", args.data_seed)):  # fmt: skip
        if value is not None:
            changes[field] = value
    if args.subjects is not None:
        changes["subjects"] = args.subjects
        changes["held_out"] = tuple(f"s{s:02d}" for s in (args.subjects - 2, args.subjects - 1))
    return dataclasses.replace(recipe, **changes)


def _usage_error(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Optional[str]:
    for name in ("epochs", "samples", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return f"--{name.replace('_', '-')} must be >= 1, got {value}"
    if args.subjects is not None and args.subjects < 3:
        return f"--subjects must be >= 3 (two are held out), got {args.subjects}"
    if args.arch in EXAMPLES:
        if args.out.suffix != ".onnx":
            return f"--out {args.out}: the {args.arch} example is written as an .onnx file"
    elif args.out.suffix != ".safetensors":
        return f"--out {args.out}: the checkpoint must be a .safetensors file"
    if args.device == "cuda":
        torch = require("torch", purpose="training a demo model")
        if not torch.cuda.is_available():
            return "--device cuda: PyTorch sees no CUDA device (this torch is a CPU build?)"
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = _usage_error(parser, args)
    if problem is None:
        recipe = _recipe(args)
        train_idx, held_idx = model_card.split_indices(recipe, _class_names(recipe.arch))
        if not train_idx or not held_idx:
            problem = (
                f"--samples {recipe.samples} over {recipe.subjects} subjects leave "
                f"{len(train_idx)} training and {len(held_idx)} held-out clips "
                f"({', '.join(recipe.held_out)}); raise --samples or lower --subjects"
            )
    if problem is not None:
        parser.error(problem)  # exit 2, before any work
    card = train(recipe, args.out, device=args.device, workers=args.workers)
    card_path = args.out.with_name(
        args.out.stem + (".card.json" if args.arch in EXAMPLES else ".json")
    )
    print(json.dumps({"checkpoint": str(args.out), "card": str(card_path), **card["held_out"]}))
    return 0


def _class_names(arch: str) -> Sequence[str]:
    example = _example(arch)
    if example is not None:
        return example.spec().class_names
    if arch == "mmnet":
        from edge.models.mmnet_spec import VARIANTS, mmnet_spec

        return mmnet_spec(VARIANTS["casme2-5"]).class_names
    config = demo_config(arch)
    return tuple(config.class_names)


if __name__ == "__main__":
    raise SystemExit(main())
