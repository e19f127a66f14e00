"""CAS(ME)^3 reader (Li et al., IEEE TPAMI 2023, doi:10.1109/TPAMI.2022.3174895).

Part A: sheet `label` of `cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`; `Subject` like `spNO.1`,
`Filename` a letter naming the video, frames `spNO.1/<letter>/color/<n>.jpg`. One video holds
several micro-expressions, so `clip` is `<letter>_<onset>` (`#2`... added on a collision).
Part C (mock crime): sheet `mockCrimeME` of `CAS(ME)3_part_C_ME.xlsx`, columns `sub`, `count`,
`onset`, `offset`, `au` (one cell uses a full-width comma), `emotion`, and no apex: the apex is
the midpoint (meb's rule, see `with_midpoint_apex`) and noted in `Sample.notes`. The Part C
frame layout is not documented in our sources, so its `frame_dir` is None. The loaders apply
`calib.fixes.casme3` (Part A rows; Part C needs none) unless `fixes=False`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from calib.fixes import FIX_TABLES, FixOutcome
from edge.errors import CalibrationError

from .cells import pick, require_columns, row_sample, to_int, to_text
from .fixing import LoadedSamples, load_fixed
from .frames import find_file
from .sample import Sample, with_midpoint_apex
from .tables import DATA_ROW_KEY, read_table

__all__ = [
    "DATASET_A",
    "DATASET_C",
    "SHEETS_A",
    "SHEETS_C",
    "COLUMNS_A",
    "COLUMNS_C",
    "parse_casme3_a",
    "parse_casme3_c",
    "load_casme3_a",
    "load_casme3_c",
    "load_casme3",
]

DATASET_A = "casme3a"
DATASET_C = "casme3c"

#: (file names, sheet name) per part.
SHEETS_A = (("cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx",), "label")
SHEETS_C = (("CAS(ME)3_part_C_ME.xlsx",), "mockCrimeME")

COLUMNS_A: Dict[str, Sequence[str]] = {
    "subject": ("Subject",),
    "clip": ("Filename",),
    "onset": ("Onset",),
    "apex": ("Apex",),
    "offset": ("Offset",),
    "aus": ("AU",),
    "emotion": ("emotion",),
}
COLUMNS_C: Dict[str, Sequence[str]] = {
    "subject": ("sub",),
    "clip": ("count",),
    "onset": ("onset",),
    "offset": ("offset",),
    "aus": ("au",),
    "emotion": ("emotion",),
}


def _unique(seen: Set[Tuple[str, str]], subject: str, clip: str) -> str:
    name, n = clip, 2
    while (subject, name) in seen:
        name = f"{clip}#{n}"
        n += 1
    seen.add((subject, name))
    return name


def parse_casme3_a(
    rows: Sequence[Mapping[str, Any]], *, frames_root: Optional[Path] = None
) -> List[Sample]:
    """Samples from Part A `label` rows; frame dirs are `frames_root/spNO.N/<letter>/color`."""
    require_columns(rows, COLUMNS_A, DATASET_A)
    samples: List[Sample] = []
    seen: Set[Tuple[str, str]] = set()
    for row in rows:
        subject = to_text(pick(row, COLUMNS_A["subject"]))
        video = to_text(pick(row, COLUMNS_A["clip"]))
        if not subject and not video:
            continue
        onset = to_int(pick(row, COLUMNS_A["onset"]))
        clip = _unique(seen, subject, f"{video}_{onset if onset is not None else 'na'}")
        frame_dir = frames_root / subject / video / "color" if frames_root is not None else None
        samples.append(
            row_sample(
                row, COLUMNS_A, dataset=DATASET_A, subject=subject, clip=clip, frame_dir=frame_dir
            )
        )
    return samples


def parse_casme3_c(rows: Sequence[Mapping[str, Any]]) -> List[Sample]:
    """Samples from Part C `mockCrimeME` rows, apex set by the midpoint rule."""
    require_columns(rows, COLUMNS_C, DATASET_C)
    samples: List[Sample] = []
    seen: Set[Tuple[str, str]] = set()
    for row in rows:
        subject = to_text(pick(row, COLUMNS_C["subject"]))
        count = to_text(pick(row, COLUMNS_C["clip"]))
        if not subject and not count:
            continue
        sample = row_sample(
            row, COLUMNS_C, dataset=DATASET_C, subject=subject, clip=_unique(seen, subject, count)
        )
        samples.append(with_midpoint_apex(sample))
    return samples


def _frames_root_a(root: Path, depth: int = 3) -> Path:
    """The shallowest folder (`root` or up to `depth` below) holding `spNO.*` subject folders."""
    level = [root]
    for _ in range(depth + 1):
        for folder in level:
            if any(p.is_dir() for p in folder.glob("spNO.*")):
                return folder
        level = sorted(p for folder in level for p in folder.iterdir() if p.is_dir())
    return root


def load_casme3_a(
    root: Path,
    *,
    frames_root: Optional[Path] = None,
    sheet: Optional[Path] = None,
    fixes: bool = True,
) -> LoadedSamples:
    """Read CAS(ME)^3 Part A; frames under `frames_root` (default: found under `root`).

    `fixes` applies `calib.fixes.casme3.FIXES_A` (see `calib.datasets.fixing.load_fixed`).

    Raises:
        AnnotationFixMismatch: fixes are on and the sheet is not the release they were written
            for.
    """
    root = Path(root)
    sheet = Path(sheet) if sheet is not None else find_file(root, SHEETS_A[0], "CAS(ME)^3 Part A")
    frames = Path(frames_root) if frames_root is not None else _frames_root_a(root)
    return load_fixed(
        read_table(sheet, SHEETS_A[1], index_key=DATA_ROW_KEY),
        lambda rows: parse_casme3_a(rows, frames_root=frames),
        dataset=DATASET_A,
        columns=COLUMNS_A,
        table=FIX_TABLES[DATASET_A],
        enabled=fixes,
        sheet=sheet,
    )


def load_casme3_c(root: Path, *, sheet: Optional[Path] = None, fixes: bool = True) -> LoadedSamples:
    """Read CAS(ME)^3 Part C labels (no frames resolved; see the module docstring).

    `fixes` applies `calib.fixes.casme3.FIXES_C` (empty: the reader handles Part C's quirks).
    """
    root = Path(root)
    sheet = Path(sheet) if sheet is not None else find_file(root, SHEETS_C[0], "CAS(ME)^3 Part C")
    return load_fixed(
        read_table(sheet, SHEETS_C[1], header_keys=("sub", "count"), index_key=DATA_ROW_KEY),
        parse_casme3_c,
        dataset=DATASET_C,
        columns=COLUMNS_C,
        table=FIX_TABLES[DATASET_C],
        enabled=fixes,
        sheet=sheet,
    )


def load_casme3(
    root: Path, *, parts: Sequence[str] = ("A", "C"), fixes: bool = True
) -> LoadedSamples:
    """The CAS(ME)^3 composite: the requested parts concatenated, each keeping its dataset
    and its fix outcomes."""
    loaders = {"A": load_casme3_a, "C": load_casme3_c}
    samples: List[Sample] = []
    outcomes: List[FixOutcome] = []
    for part in parts:
        if part.upper() not in loaders:
            raise CalibrationError(f"CAS(ME)^3 parts are A and C, not {part!r}")
        loaded = loaders[part.upper()](root, fixes=fixes)
        samples.extend(loaded)
        outcomes.extend(loaded.fix_outcomes)
    return LoadedSamples(samples, outcomes)
