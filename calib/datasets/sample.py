"""One annotated micro-expression clip, independent of the dataset it came from.

Kept to the standard library so the device-side calibration path can read sample lists without
pandas; the module stays Python 3.8 compatible for JetPack's system Python.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

__all__ = ["Sample", "MIDPOINT_NOTE", "with_midpoint_apex"]

#: Recorded in `Sample.notes` when the apex was not annotated and the midpoint rule filled it.
MIDPOINT_NOTE = "apex=onset+(offset-onset)//2 (not annotated)"


@dataclass(frozen=True)
class Sample:
    """An annotated clip; frame numbers are those in the frame file names (or 0-based indices
    into a video), `None` where the spreadsheet cell is empty or not an integer.

    `clip` is unique within (dataset, subject) so `sample_id` names one sample; `notes` records
    every rule a reader applied beyond copying cells (midpoint apex, emotion renames, relabels,
    annotation fixes). `sheet_row` is the 0-based data row of the vendor sheet the sample was
    read from (see `calib.datasets.tables.read_table`'s `index_key`), None when not read from a
    sheet; it locates row-indexed annotation fixes and is left out of equality.
    """

    dataset: str
    subject: str
    clip: str
    onset: Optional[int]
    apex: Optional[int]
    offset: Optional[int]
    emotion: str
    aus: Tuple[str, ...] = ()
    frame_dir: Optional[Path] = None
    notes: Tuple[str, ...] = ()
    sheet_row: Optional[int] = dataclasses.field(default=None, compare=False)

    @property
    def sample_id(self) -> str:
        return f"{self.dataset}/{self.subject}/{self.clip}"

    def with_note(self, note: str, **changes: object) -> Sample:
        """A copy with `changes` applied and `note` appended to `notes`."""
        return dataclasses.replace(self, notes=self.notes + (note,), **changes)


def with_midpoint_apex(sample: Sample) -> Sample:
    """Fill a missing apex with the midpoint of onset and offset (meb's rule for CAS(ME)^3 C).

    Samples that already have an apex, or lack onset or offset, are returned unchanged.
    """
    if sample.apex is not None or sample.onset is None or sample.offset is None:
        return sample
    apex = sample.onset + (sample.offset - sample.onset) // 2
    return sample.with_note(MIDPOINT_NOTE, apex=apex)
