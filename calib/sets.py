"""The calibration set: model-ready tensors with provenance, their cache, and their checks.

A `CalibrationSet` holds what quantization calibrates on and what validation measures: the
model's inputs after exactly the runtime's preprocessing (`edge.preprocess.prepare_inputs`),
sample ids, subjects and labels. Sets are cached as npz files keyed by a hash of everything
that decides their content, and every set is checked (non-empty, right shapes, finite, not
constant) before anyone calibrates on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge.errors import CalibrationError
from edge.preprocess import prepare_inputs
from edge.spec import ModelSpec

__all__ = [
    "CalibrationSet",
    "balanced_indices",
    "check_inputs",
    "prepare_frame_sets",
    "load_npz_folder",
    "default_cache_dir",
    "cache_key",
    "cached",
]


@dataclass(frozen=True)
class CalibrationSet:
    """Model-ready inputs (`name -> [N, ...] float32`), optional labels, and provenance."""

    inputs: Dict[str, np.ndarray]
    sample_ids: Tuple[str, ...]
    subjects: Tuple[str, ...]
    labels: Optional[np.ndarray]
    class_names: Tuple[str, ...]
    source: str
    key: str

    def __len__(self) -> int:
        return len(self.sample_ids)

    def feeds(self) -> List[Dict[str, np.ndarray]]:
        """One batch-1 feed dict per sample."""
        return [{k: v[i : i + 1] for k, v in self.inputs.items()} for i in range(len(self))]

    def subset(self, indices: Sequence[int]) -> CalibrationSet:
        idx = np.asarray(indices, dtype=np.int64)
        return CalibrationSet(
            inputs={k: v[idx] for k, v in self.inputs.items()},
            sample_ids=tuple(self.sample_ids[i] for i in idx),
            subjects=tuple(self.subjects[i] for i in idx),
            labels=None if self.labels is None else self.labels[idx],
            class_names=self.class_names,
            source=self.source,
            key=self.key,
        )

    def summary(self) -> Dict[str, object]:
        """What the manifest records: size, provenance and balance, not the tensors."""
        ids_hash = hashlib.sha256("\n".join(sorted(self.sample_ids)).encode()).hexdigest()
        counts: Dict[str, int] = {}
        if self.labels is not None:
            for label in self.labels:
                name = self.class_names[int(label)]
                counts[name] = counts.get(name, 0) + 1
        return {
            "source": self.source,
            "key": self.key,
            "samples": len(self),
            "sample_ids_sha256": ids_hash,
            "subjects": len(set(self.subjects)),
            "class_counts": counts or None,
        }

    def save(self, path: Path) -> None:
        """Write atomically (temporary file + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"input__" + k: v for k, v in self.inputs.items()}
        if self.labels is not None:
            arrays["labels"] = self.labels
        meta = {
            "sample_ids": list(self.sample_ids),
            "subjects": list(self.subjects),
            "class_names": list(self.class_names),
            "source": self.source,
            "key": self.key,
        }
        handle, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(handle)
        try:
            with open(tmp, "wb") as out:
                np.savez(out, meta=np.asarray(json.dumps(meta)), **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @classmethod
    def load(cls, path: Path) -> CalibrationSet:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                inputs = {
                    k[len("input__") :]: data[k] for k in data.files if k.startswith("input__")
                }
                labels = data["labels"] if "labels" in data.files else None
        except (OSError, ValueError, KeyError) as exc:
            raise CalibrationError(f"{path}: unreadable calibration cache: {exc}") from exc
        return cls(
            inputs=inputs,
            sample_ids=tuple(meta["sample_ids"]),
            subjects=tuple(meta["subjects"]),
            labels=labels,
            class_names=tuple(meta["class_names"]),
            source=meta["source"],
            key=meta["key"],
        )


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mer-edge" / "calib"


def balanced_indices(
    labels: Sequence[str], subjects: Sequence[str], n: int, *, seed: int
) -> List[int]:
    """Pick `n` indices spread evenly over classes, and within a class over subjects.

    Round-robin over classes, then over that class's subjects, drawing each group's members in
    a seeded random order: deterministic, and no class or subject dominates unless the data
    itself runs out.
    """
    if n <= 0:
        raise CalibrationError(f"the number of calibration samples must be positive, got {n}")
    rng = np.random.default_rng(seed)
    groups: Dict[str, Dict[str, List[int]]] = {}
    for index, (label, subject) in enumerate(zip(labels, subjects)):
        groups.setdefault(label, {}).setdefault(subject, []).append(index)
    for by_subject in groups.values():
        for members in by_subject.values():
            rng.shuffle(members)
    chosen: List[int] = []
    cursor = {label: 0 for label in groups}
    while len(chosen) < n and any(groups.values()):
        for label in sorted(groups):
            by_subject = groups[label]
            if not by_subject or len(chosen) >= n:
                continue
            order = sorted(by_subject)
            subject = order[cursor[label] % len(order)]
            cursor[label] += 1
            chosen.append(by_subject[subject].pop())
            if not by_subject[subject]:
                del by_subject[subject]
    return chosen


def check_inputs(inputs: Dict[str, np.ndarray], spec: ModelSpec, *, where: str) -> None:
    """One clear error per way a calibration tensor set can be unusable."""
    expected = {t.name: t for t in spec.inputs}
    missing = sorted(set(expected) - set(inputs))
    if missing:
        raise CalibrationError(f"{where}: missing inputs {missing} (have {sorted(inputs)})")
    count = None
    for name, tensor in expected.items():
        array = inputs[name]
        if array.shape[0] == 0:
            raise CalibrationError(f"{where}: input {name!r} is empty")
        want = tuple(d for d in tensor.shape[1:])
        if tuple(array.shape[1:]) != want:
            raise CalibrationError(
                f"{where}: input {name!r} has per-sample shape {list(array.shape[1:])}, the model expects {list(want)}"
            )
        if count is not None and array.shape[0] != count:
            raise CalibrationError(f"{where}: inputs have different sample counts")
        count = array.shape[0]
        bad = ~np.isfinite(array).reshape(array.shape[0], -1).all(axis=1)
        if bad.any():
            raise CalibrationError(
                f"{where}: input {name!r} has NaN or Inf in {int(bad.sum())} sample(s), first at index {int(np.argmax(bad))}"
            )
        flat = array.reshape(array.shape[0], -1)
        constant = flat.max(axis=1) == flat.min(axis=1)
        if constant.any():
            raise CalibrationError(
                f"{where}: input {name!r} is constant in {int(constant.sum())} sample(s), first at index {int(np.argmax(constant))} (blank frames "
                "calibrate nothing)"
            )


def cache_key(parts: Dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def cached(
    key: str, cache_dir: Optional[Path], build: Callable[[], CalibrationSet]
) -> CalibrationSet:
    if cache_dir is None:
        return build()
    path = Path(cache_dir) / f"{key}.npz"
    if path.is_file():
        try:
            return CalibrationSet.load(path)
        except CalibrationError:
            path.unlink()  # a damaged cache entry is rebuilt, not trusted
    prepared = build()
    prepared.save(path)
    return prepared


def prepare_frame_sets(
    spec: ModelSpec,
    samples: Sequence[Dict[str, np.ndarray]],
    *,
    sample_ids: Sequence[str],
    subjects: Sequence[str],
    labels: Optional[Sequence[str]],
    source: str,
    key: str,
) -> CalibrationSet:
    """Per sample, role -> uint8 frame (`edge.frames`) -> a checked CalibrationSet."""
    if not samples:
        raise CalibrationError(f"{source}: no samples to prepare")
    names = spec.input_names()
    feeds = [prepare_inputs(spec, frames) for frames in samples]
    inputs = {n: np.concatenate([f[n] for f in feeds]) for n in names}
    check_inputs(inputs, spec, where=source)
    label_idx = None
    if labels is not None:
        lookup = {name: i for i, name in enumerate(spec.class_names)}
        unknown = sorted({label for label in labels if label not in lookup})
        if unknown:
            raise CalibrationError(
                "{}: labels {} are not classes of the model ({})".format(
                    source, unknown, ", ".join(spec.class_names)
                )
            )
        label_idx = np.asarray([lookup[label] for label in labels], dtype=np.int64)
    return CalibrationSet(
        inputs=inputs,
        sample_ids=tuple(sample_ids),
        subjects=tuple(subjects),
        labels=label_idx,
        class_names=tuple(spec.class_names),
        source=source,
        key=key,
    )


def load_npz_folder(folder: Path, spec: ModelSpec) -> CalibrationSet:
    """A folder of `.npz` files of preprocessed tensors named like the model's inputs.

    Each file holds arrays `onset`, `apex` (shape [3, 224, 224] or [N, 3, 224, 224]) and
    optionally `label` / `labels` (class names or indices).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError(f"{folder}: calibration folder not found")
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise CalibrationError(f"{folder}: no .npz files in the calibration folder")
    names = spec.input_names()
    chunks: Dict[str, List[np.ndarray]] = {n: [] for n in names}
    ids: List[str] = []
    labels: List[object] = []
    digest = hashlib.sha256()
    for path in files:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise CalibrationError(f"{path}: unreadable .npz: {exc}") from exc
        missing = [n for n in names if n not in arrays]
        if missing:
            raise CalibrationError(f"{path}: missing arrays {missing} (has {sorted(arrays)})")
        count = None
        for n in names:
            array = arrays[n].astype(np.float32, copy=False)
            if array.ndim == len(spec.inputs[0].shape) - 1:
                array = array[None]
            if count is not None and array.shape[0] != count:
                raise CalibrationError(f"{path}: {n} has {array.shape[0]} samples, expected {count}")  # fmt: skip
            count = array.shape[0]
            chunks[n].append(array)
        label = arrays.get("labels", arrays.get("label"))
        if label is not None:
            labels.extend(np.atleast_1d(label).tolist())
        ids.extend(f"{path.name}#{i}" for i in range(count or 0))
        digest.update(path.read_bytes())
    try:
        inputs = {n: np.concatenate(chunks[n]) for n in names}
    except ValueError as exc:
        raise CalibrationError(f"{folder}: tensors of different shapes: {exc}") from exc
    check_inputs(inputs, spec, where=str(folder))
    label_idx = None
    if labels and len(labels) == len(ids):
        lookup = {name: i for i, name in enumerate(spec.class_names)}
        try:
            label_idx = np.asarray(
                [int(x) if not isinstance(x, str) else lookup[x] for x in labels], dtype=np.int64
            )
        except KeyError as exc:
            raise CalibrationError(f"{folder}: unknown label {exc}") from exc
    return CalibrationSet(
        inputs=inputs,
        sample_ids=tuple(ids),
        subjects=tuple("unknown" for _ in ids),
        labels=label_idx,
        class_names=tuple(spec.class_names),
        source=f"npz folder {folder}",
        key=digest.hexdigest()[:16],
    )
