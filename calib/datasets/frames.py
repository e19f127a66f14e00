"""Frame files on disk: numeric ordering and locating a dataset's spreadsheet under its root.

Frame files are named with a trailing number (`img46.jpg`, `reg_img46.jpg`, `006_05562.jpg`,
`46.jpg`) that the spreadsheets use as the frame number; lexical order puts img10 before img2.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from edge.errors import CalibrationError

__all__ = ["IMAGE_SUFFIXES", "frame_number", "frame_paths", "frame_index", "find_file"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

_TRAILING_NUMBER = re.compile(r"(\d+)$")


def frame_number(path: Path) -> Optional[int]:
    """The trailing integer of the file stem, or None."""
    match = _TRAILING_NUMBER.search(path.stem)
    return int(match.group(1)) if match else None


def _order(path: Path) -> Tuple[int, int, str]:
    number = frame_number(path)
    return (0, number, path.name) if number is not None else (1, 0, path.name)


def frame_paths(frame_dir: Path) -> List[Path]:
    """Image files in `frame_dir`, numerically ordered (img2 before img10); unnumbered last."""
    frame_dir = Path(frame_dir)
    if not frame_dir.is_dir():
        return []
    files = [p for p in frame_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=_order)


def frame_index(frame_dir: Path) -> Dict[int, Path]:
    """Frame number -> file, for the numbered image files in `frame_dir`."""
    index: Dict[int, Path] = {}
    for path in frame_paths(frame_dir):
        number = frame_number(path)
        if number is not None:
            index.setdefault(number, path)
    return index


def find_file(root: Path, names: Sequence[str], what: str) -> Path:
    """The first of `names` (case-insensitive) in `root` or one folder below it.

    Raises:
        CalibrationError: none found; the message lists the names tried.
    """
    root = Path(root)
    if not root.is_dir():
        raise CalibrationError(f"{what} root {root} is not a directory")
    wanted = [n.lower() for n in names]
    folders = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    for name in wanted:
        for folder in folders:
            for candidate in sorted(folder.iterdir()):
                if candidate.is_file() and candidate.name.lower() == name:
                    return candidate
    raise CalibrationError(
        "no {} spreadsheet in {} (or one folder below); looked for: {}".format(
            what, root, ", ".join(names)
        )
    )
