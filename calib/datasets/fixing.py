"""Apply a dataset's annotation-fix table while loading it, and record what happened.

Row-located fixes (`Fix.row`) patch the sheet's cells after `read_table` and before the samples
are built, so the reader parses a corrected cell like any other (a corrected CAS(ME)^3 onset
also renames the clip); sample-id fixes then patch the parsed samples. The whole table is
checked first: with fixes enabled, one failed check raises `AnnotationFixMismatch` and nothing
is patched (a sheet whose rows moved must not be half-patched); with fixes disabled nothing is
patched and every check is still recorded, so `validate` lists fixes that would apply and fixes
that do not match (sheet drift) as issues.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from calib.fixes.base import (
    Fix,
    FixOutcome,
    apply_fixes,
    check_old_value,
    check_table,
    frames_out_of_order,
    sample_fix_problem,
)
from edge.errors import AnnotationFixMismatch

from .cells import column_of, pick, require_columns, to_int, to_text
from .sample import Sample
from .tables import DATA_ROW_KEY

__all__ = ["LoadedSamples", "load_fixed"]

logger = logging.getLogger(__name__)

_FRAMES = ("onset", "apex", "offset")

Rows = Sequence[Mapping[str, Any]]


class LoadedSamples(list):  # type: ignore[type-arg]  # list[Sample] is not subscriptable on 3.8
    """A list of samples that also records what the fix tables did (`fix_outcomes`).

    Slicing or filtering gives a plain list; each applied fix is also in its sample's `notes`.
    """

    def __init__(
        self, samples: Iterable[Sample] = (), fix_outcomes: Iterable[FixOutcome] = ()
    ) -> None:
        super().__init__(samples)
        self.fix_outcomes: Tuple[FixOutcome, ...] = tuple(fix_outcomes)


class _Check:
    """One fix checked against the sheet: its old value and why it does not apply (or None)."""

    def __init__(self, fix: Fix, old: Any = None, problem: Optional[str] = None) -> None:
        self.fix, self.old, self.problem = fix, old, problem


def _cell_value(field: str, cell: Any) -> Any:
    return to_int(cell) if field in _FRAMES else (to_text(cell) or None)


def _check_row(
    row: Mapping[str, Any], fixes: Sequence[Fix], columns: Mapping[str, Sequence[str]]
) -> Tuple[Dict[str, Any], List[_Check]]:
    fixed = dict(row)
    checks = []
    for fix in fixes:
        key = column_of(row, columns[fix.field]) if fix.field in columns else None
        if key is None:
            checks.append(_Check(fix, problem=f"the sheet has no {fix.field} column"))
            continue
        old = _cell_value(fix.field, row[key])
        checks.append(_Check(fix, old, check_old_value(fix, old)))
        fixed[key] = fix.value
    ordered = [c for c in checks if c.fix.check == "ordered" and c.problem is None]
    if ordered:
        frames = [to_int(pick(fixed, columns[n])) if n in columns else None for n in _FRAMES]
        problem = frames_out_of_order(*frames)
        for check in ordered:
            check.problem = problem
    return fixed, checks


def _check_rows(
    rows: Rows, fixes: Sequence[Fix], columns: Mapping[str, Sequence[str]]
) -> Tuple[List[Mapping[str, Any]], List[_Check]]:
    position = {row.get(DATA_ROW_KEY): i for i, row in enumerate(rows)}
    total = max((i for i in position if isinstance(i, int)), default=-1) + 1
    by_row: Dict[int, List[Fix]] = {}
    for fix in fixes:
        by_row.setdefault(int(fix.row), []).append(fix)  # type: ignore[arg-type]
    patched = list(rows)
    checks: List[_Check] = []
    for index, row_fixes in sorted(by_row.items()):
        where = position.get(index)
        if where is None:
            state = "is blank" if index < total else f"is past the end ({total} data rows)"
            checks.extend(_Check(f, problem=f"the row {state}") for f in row_fixes)
            continue
        patched[where], row_checks = _check_row(rows[where], row_fixes, columns)
        checks.extend(row_checks)
    return patched, checks


def _outcome(check: _Check, enabled: bool, target: str, sheet_name: str) -> FixOutcome:
    fix = check.fix
    where = f"{sheet_name} row {fix.row}" if fix.row is not None else str(fix.sample_id)
    if check.problem is not None:
        message = f"{where}: {check.problem} ({fix.check} check; {fix.reason}; {fix.source})"
        return FixOutcome(fix, "drift", target, message)
    message = f"{where}: {fix.field} {check.old!r} -> {fix.value!r} ({fix.reason}; {fix.source})"
    return FixOutcome(fix, "applied" if enabled else "disabled", target, message)


def _raise_drift(sheet: Path, dataset: str, drift: Sequence[FixOutcome], total: int) -> None:
    raise AnnotationFixMismatch(
        f"{sheet}: {len(drift)} of {total} {dataset} annotation fixes do not match this sheet, "
        f"e.g. {drift[0].message}; it is not the release the fix table was written for: load "
        "it with fixes=False, and validate() lists each mismatch"
    )


def _noted(samples: List[Sample], checks: Sequence[_Check]) -> List[Sample]:
    notes: Dict[int, List[str]] = {}
    for check in checks:
        fix = check.fix
        note = f"fix {fix.field}: {check.old!r} -> {fix.value!r} (row {fix.row}; {fix.source})"
        notes.setdefault(int(fix.row), []).append(note)  # type: ignore[arg-type]
    return [
        dataclasses.replace(s, notes=s.notes + tuple(notes[s.sheet_row]))
        if s.sheet_row in notes
        else s
        for s in samples
    ]


def load_fixed(
    rows: Rows,
    parse: Callable[[Rows], List[Sample]],
    *,
    dataset: str,
    columns: Mapping[str, Sequence[str]],
    table: Sequence[Fix],
    enabled: bool,
    sheet: Union[str, Path],
) -> LoadedSamples:
    """Check `table` against `rows`, patch them and parse them with `parse` (unless disabled).

    Args:
        rows: `read_table` rows, read with `index_key=DATA_ROW_KEY`.
        parse: the dataset's parser (rows -> samples, which keep `sheet_row`).
        dataset: dataset name, for messages and targets (`casme2 row 29`).
        columns: the parser's column aliases, to find the cell a row fix names.
        table: the dataset's fix table.
        enabled: apply the fixes; False parses the rows as read and only records the checks.
        sheet: the spreadsheet, for messages.

    Returns:
        The samples, with `fix_outcomes`: row fixes by row, then sample-id fixes.

    Raises:
        CalibrationError: the sheet lacks a column of `columns` (the wrong spreadsheet).
        AnnotationFixMismatch: fixes are enabled and a check fails (sheet drift).
        ValueError: the table sets one field of one row or sample twice.
    """
    sheet = Path(sheet)
    check_table(table)
    require_columns(rows, columns, dataset)
    row_fixes = [f for f in table if f.row is not None]
    id_fixes = [f for f in table if f.sample_id is not None]
    patched, row_checks = _check_rows(rows, row_fixes, columns)
    if enabled and any(c.problem for c in row_checks):
        drift = [_outcome(c, enabled, "", sheet.name) for c in row_checks if c.problem]
        _raise_drift(sheet, dataset, drift, len(table))
    samples = parse(patched if enabled else rows)
    if enabled:
        samples = _noted(samples, row_checks)
    ids = {s.sheet_row: s.sample_id for s in samples if s.sheet_row is not None}
    outcomes = [
        _outcome(c, enabled, ids.get(c.fix.row, f"{dataset} row {c.fix.row}"), sheet.name)
        for c in row_checks
    ]
    id_checks = []
    for fix in id_fixes:
        position, problem = sample_fix_problem(samples, fix)
        old = getattr(samples[position], fix.field) if position is not None else None
        id_checks.append(_Check(fix, old, problem))
    outcomes += [_outcome(c, enabled, str(c.fix.sample_id), sheet.name) for c in id_checks]
    drift = [o for o in outcomes if o.status == "drift"]
    if enabled and drift:
        _raise_drift(sheet, dataset, drift, len(table))
    if enabled:
        samples, _ = apply_fixes(samples, id_fixes)
    logger.info(
        "%s: %d of %d annotation fixes %s, %d do not match",
        sheet,
        len(outcomes) - len(drift),
        len(table),
        "applied" if enabled else "match (not applied)",
        len(drift),
    )
    return LoadedSamples(samples, outcomes)
