"""Cell coercion and column lookup shared by the vendor parsers.

Spreadsheets mix ints, floats (`46.0` from xlrd), numeric strings (CSV) and placeholders
(`/`, `-`, empty) in frame columns; these helpers turn them into one representation.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from edge.errors import CalibrationError

from .sample import Sample
from .tables import DATA_ROW_KEY

__all__ = [
    "to_int",
    "to_text",
    "split_aus",
    "norm_emotion",
    "pick",
    "column_of",
    "require_columns",
    "row_sample",
    "parse_subject_clip_rows",
]

#: Separators between action units: `+`, ASCII comma and the full-width comma of CAS(ME)^3 C.
_AU_SEPARATORS = re.compile(r"[+,\uff0c;]")


def to_int(value: Any) -> Optional[int]:
    """An integral cell as int; None for empty cells, placeholders and non-integers."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?\d+\.0*", text):
        return int(float(text))
    return None


def to_text(value: Any) -> str:
    """A cell as stripped text; integral floats lose their `.0` (xlrd reads 1 as 1.0)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def split_aus(value: Any) -> Tuple[str, ...]:
    """`4+L10`, `4，7` or `12 or 14` -> tokens kept verbatim (laterality and 'or' preserved)."""
    tokens = (" ".join(t.split()) for t in _AU_SEPARATORS.split(to_text(value)))
    return tuple(t for t in tokens if t)


def norm_emotion(value: Any) -> str:
    """Lower-case, stripped emotion (CAS(ME)^3 A has both `others` and `Others`)."""
    return to_text(value).lower()


def _key(name: str) -> str:
    return re.sub(r"[\s_]+", "", name).lower()


def column_of(row: Mapping[str, Any], aliases: Sequence[str]) -> Optional[str]:
    """The key of the first column in `aliases` present in `row` (case/space-insensitive)."""
    keys: Dict[str, str] = {_key(k): k for k in row if k != DATA_ROW_KEY}
    for alias in aliases:
        key = keys.get(_key(alias))
        if key is not None:
            return key
    return None


def pick(row: Mapping[str, Any], aliases: Sequence[str]) -> Any:
    """The value of the first column in `aliases` present in `row` (case/space-insensitive)."""
    key = column_of(row, aliases)
    return row[key] if key is not None else None


def require_columns(
    rows: Sequence[Mapping[str, Any]], columns: Mapping[str, Sequence[str]], dataset: str
) -> None:
    """Raise `CalibrationError` if a required column has none of its aliases in the header."""
    if not rows:
        return
    header = [k for k in rows[0] if k != DATA_ROW_KEY]
    present = {_key(k) for k in header}
    missing = [
        "/".join(aliases)
        for aliases in columns.values()
        if not any(_key(a) in present for a in aliases)
    ]
    if missing:
        raise CalibrationError(
            "{} sheet lacks column(s) {}; found {}. Is this the right spreadsheet?".format(
                dataset, ", ".join(missing), ", ".join(str(k) for k in header)
            )
        )


def row_sample(
    row: Mapping[str, Any],
    columns: Mapping[str, Sequence[str]],
    *,
    dataset: str,
    subject: str,
    clip: str,
    frame_dir: Any = None,
    emotion: Any = None,
) -> Sample:
    """A Sample from one sheet row's standard onset/apex/offset/emotion/AU columns.

    A sheet without an `apex` column (CAS(ME)^3 Part C) gives `apex=None`; `emotion` overrides
    the emotion cell (MMEW reads it from the folder name column it also uses for paths).
    `sheet_row` comes from `DATA_ROW_KEY` when `read_table` stored it.
    """
    return Sample(
        dataset=dataset,
        subject=subject,
        clip=clip,
        onset=to_int(pick(row, columns["onset"])),
        apex=to_int(pick(row, columns["apex"])) if "apex" in columns else None,
        offset=to_int(pick(row, columns["offset"])),
        emotion=norm_emotion(pick(row, columns["emotion"]) if emotion is None else emotion),
        aus=split_aus(pick(row, columns["aus"])),
        frame_dir=frame_dir,
        sheet_row=to_int(row.get(DATA_ROW_KEY)),
    )


def parse_subject_clip_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Mapping[str, Sequence[str]],
    *,
    dataset: str,
    subject_of: Callable[[Any], str],
    frames_root: Any = None,
) -> List[Sample]:
    """Sheets whose frames live at `frames_root/<subject>/<clip>` (CASME II, SAMM)."""
    require_columns(rows, columns, dataset)
    samples = []
    for row in rows:
        subject = subject_of(pick(row, columns["subject"]))
        clip = to_text(pick(row, columns["clip"]))
        if not subject and not clip:
            continue
        frame_dir = frames_root / subject / clip if frames_root is not None else None
        samples.append(
            row_sample(
                row, columns, dataset=dataset, subject=subject, clip=clip, frame_dir=frame_dir
            )
        )
    return samples
