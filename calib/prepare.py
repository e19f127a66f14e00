"""Calibration / validation tensors, prepared exactly as the runtime prepares frames.

Samples go through `edge.preprocess.prepare_inputs` with the model's own ModelSpec, so the
numbers quantization sees are the numbers the device will see. Prepared sets are cached as npz
files keyed by a hash of everything that decides their content, and every set is checked
(non-empty, right shapes, finite, not constant) before anyone calibrates on it.
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

from edge._lazy import require
from edge.errors import CalibrationError
from edge.preprocess import prepare_inputs
from edge.spec import ModelSpec

__all__ = [
    "CalibrationSet",
    "balanced_indices",
    "check_inputs",
    "prepare_synthetic",
    "prepare_frame_sets",
    "read_roles",
    "align_roles",
    "prepare_samples",
    "read_pair",
    "load_npz_folder",
    "default_cache_dir",
    "GENERATOR_VERSION",
]

#: Bump when calib.synth changes what it renders, so cached sets are rebuilt.
GENERATOR_VERSION = 2


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


def _key(parts: Dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _cached(
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


def prepare_synthetic(
    spec: ModelSpec,
    n: int,
    *,
    seed: int = 0,
    start: int = 0,
    subjects: int = 8,
    cache_dir: Optional[Path] = None,
) -> CalibrationSet:
    """`n` synthetic micro-expressions (calib.synth) for a model with CASME II 5-class names."""
    from calib import synth

    unknown = [c for c in spec.class_names if c not in synth.EMOTION_AUS]
    if unknown:
        raise CalibrationError(
            "synthetic data knows the classes {}; this model has {}".format(
                ", ".join(synth.CLASSES), ", ".join(spec.class_names)
            )
        )
    key = _key({
        "source": "synthetic", "version": GENERATOR_VERSION, "n": n, "seed": seed,
        "start": start, "subjects": subjects, "classes": list(spec.class_names),
        "preprocessing": spec.preprocessing.to_dict(),
    })  # fmt: skip

    def build() -> CalibrationSet:
        samples = synth.generate(
            n, seed=seed, start=start, subjects=subjects, classes=spec.class_names,
            roles=spec.preprocessing.frames, depth_range_mm=spec.preprocessing.depth_range_mm,
        )  # fmt: skip
        return prepare_frame_sets(
            spec,
            [s.frames for s in samples],
            sample_ids=[s.sample_id for s in samples],
            subjects=[s.subject for s in samples],
            labels=[s.emotion for s in samples],
            source=f"synthetic (seed {seed}, samples {start}..{start + n - 1})",
            key=key,
        )

    return _cached(key, cache_dir, build)


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


def read_pair(sample, *, color: str = "RGB") -> Tuple[np.ndarray, np.ndarray]:
    """The onset and apex frames of a dataset sample, as HxWx3 uint8 images."""
    frames = read_roles(sample, ("onset", "apex"), color=color)
    return frames["onset"], frames["apex"]


def depth_folder(frame_dir: Path) -> Optional[Path]:
    """CAS(ME)^3 keeps depth beside colour: `<clip>/color/` and `<clip>/depth/`."""
    if frame_dir.name == "color" and (frame_dir.parent / "depth").is_dir():
        return frame_dir.parent / "depth"
    return None


def read_roles(sample, roles: Sequence[str], *, color: str = "RGB") -> Dict[str, np.ndarray]:
    """role -> frame of a dataset sample: colour HxWx3 uint8, depth HxW in mm (raw, unaligned)."""
    from calib.datasets import frame_index
    from edge.classify import read_frame
    from edge.frames import colour_role, is_depth, role_indices

    if sample.frame_dir is None or sample.onset is None or sample.apex is None:
        raise CalibrationError(f"{sample.sample_id}: no frame folder or onset/apex frame number")
    folder = Path(sample.frame_dir)
    index = frame_index(folder)
    numbers = dict(zip(roles, role_indices(roles, sample.onset, sample.apex)))
    depth_index = None
    if any(is_depth(r) for r in roles):
        depth_dir = depth_folder(folder)
        if depth_dir is None:
            raise CalibrationError(
                f"{sample.sample_id}: the model reads depth and {folder} has no sibling depth/ "
                "folder (CAS(ME)^3 layout)"
            )
        depth_index = frame_index(depth_dir)
    frames: Dict[str, np.ndarray] = {}
    for role, number in numbers.items():
        found = depth_index if is_depth(role) else index
        if number not in found:
            kind = "depth frame" if is_depth(role) else "frame"
            raise CalibrationError(
                f"{sample.sample_id}: {kind} {number} ({colour_role(role)}) not found in "
                f"{found_dir(folder, is_depth(role))}"
            )
        frames[role] = (
            read_depth(found[number]) if is_depth(role) else read_frame(found[number], color)
        )
    return frames


def found_dir(folder: Path, depth: bool) -> Path:
    return (depth_folder(folder) or folder) if depth else folder


def read_depth(path: Path) -> np.ndarray:
    """A 16-bit depth PNG (millimetres, 0 = no reading) as HxW uint16."""
    cv2 = require("cv2", purpose="reading depth frames")
    depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None:
        raise CalibrationError(f"{path}: unreadable depth image")
    if depth.ndim == 3:
        depth = depth[:, :, 0]
    return depth


def align_roles(aligner, frames: Dict[str, np.ndarray], spec: ModelSpec):
    """Register once on the earliest colour frame (the onset where the model reads it), warp
    every frame with that transform, depth included; None when there is no face."""
    from edge.align import NoFace, warp_depth
    from edge.depth import relative_depth
    from edge.frames import is_depth, role_position

    roles = spec.preprocessing.frames
    colour = sorted((r for r in roles if not is_depth(r)), key=lambda r: role_position(r, roles))
    registration = aligner.register(frames[colour[0]])
    if isinstance(registration, NoFace):
        return None
    out = {}
    for role in roles:
        if is_depth(role):
            warped = warp_depth(frames[role], registration.matrix, registration.size)
            out[role] = relative_depth(warped, spec.preprocessing.depth_range_mm)
        else:
            out[role] = aligner.warp(frames[role], registration)
    return out


def prepare_samples(
    spec: ModelSpec,
    samples: Sequence,
    n: int,
    *,
    seed: int = 0,
    alignment: str = "precropped",
    source: str = "dataset",
    cache_dir: Optional[Path] = None,
) -> CalibrationSet:
    """Balanced onset/apex pairs from dataset samples, aligned as the runtime aligns them.

    `precropped` is for datasets that ship registered crops (CASME II `Cropped`); `mediapipe` or
    `dlib` register each clip once on its onset frame and warp both frames with that transform,
    exactly like `edge-run`. Samples whose emotion is not a class of the model are left out.
    """
    classes = set(spec.class_names)
    usable = [
        s for s in samples
        if s.emotion in classes and s.frame_dir is not None
        and s.onset is not None and s.apex is not None
    ]  # fmt: skip
    if not usable:
        raise CalibrationError(
            "{}: no sample has onset/apex frames and an emotion among {}".format(
                source, ", ".join(spec.class_names)
            )
        )
    chosen = [
        usable[i]
        for i in balanced_indices(
            [s.emotion for s in usable], [s.subject for s in usable], min(n, len(usable)), seed=seed
        )  # fmt: skip
    ]
    stamps = []
    for s in chosen:
        folder = Path(s.frame_dir)
        stamps.append([s.sample_id, s.onset, s.apex, folder.is_dir() and folder.stat().st_mtime])
    key = _key({
        "source": source, "samples": stamps, "alignment": alignment,
        "classes": list(spec.class_names), "preprocessing": spec.preprocessing.to_dict(),
    })  # fmt: skip

    def build() -> CalibrationSet:
        from edge.align import make_aligner

        aligner = make_aligner(alignment, size=spec.preprocessing.size[0])
        aligned_sets, kept = [], []
        for sample in chosen:
            frames = read_roles(sample, spec.preprocessing.frames, color=spec.preprocessing.color)
            aligned = align_roles(aligner, frames, spec)
            if aligned is None:
                continue  # counted below: a clip without a face calibrates nothing
            aligned_sets.append(aligned)
            kept.append(sample)
        if not aligned_sets:
            raise CalibrationError(f"{source}: no face found in any selected clip")
        return prepare_frame_sets(
            spec,
            aligned_sets,
            sample_ids=[s.sample_id for s in kept],
            subjects=[s.subject for s in kept],
            labels=[s.emotion for s in kept],
            source=f"{source} ({len(kept)} of {len(chosen)} clips, {alignment} alignment)",
            key=key,
        )

    return _cached(key, cache_dir, build)
