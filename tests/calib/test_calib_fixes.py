"""Fix declarations, their checks, sample-id fixes (apply_fixes) and the shipped tables."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from calib.datasets import Sample
from calib.fixes import FIX_TABLES, Fix, apply_fixes, fixes_version
from calib.fixes.base import check_old_value, check_table, frames_out_of_order
from edge.errors import AnnotationFixMismatch

ROOT = Path(__file__).resolve().parents[2]
MEB = "tvaranka/meb meb/datasets/datasets.py@56a6f58"

SAMPLES = [
    Sample("samm", "006", "006_1_2", 10, None, 20, "anger", ("12 or 14",)),
    Sample("samm", "007", "007_3_1", 5, 7, 4, "happiness", ("12",)),
]
APEX = Fix(sample_id="samm/006/006_1_2", field="apex", check="missing", value=15,
           reason="apex cell empty", source="test")  # fmt: skip
OFFSET = Fix(sample_id="samm/007/007_3_1", field="offset", expected=4, value=9,
             reason="offset before onset", source="test")  # fmt: skip
AUS = Fix(sample_id="samm/006/006_1_2", field="aus", check="contains:or", value=("12",),
          reason="'or' in AU cell", source="test")  # fmt: skip


def test_fixes_applied_and_noted() -> None:
    fixed, applied = apply_fixes(SAMPLES, [APEX, OFFSET, AUS])
    assert applied == (APEX, OFFSET, AUS)
    assert (fixed[0].apex, fixed[0].aus, fixed[1].offset) == (15, ("12",), 9)
    assert fixed[0].notes == (
        "fix apex: None -> 15 (test)",
        "fix aus: ('12 or 14',) -> ('12',) (test)",
    )
    assert SAMPLES[0].apex is None  # inputs untouched


def test_drift_is_detected() -> None:
    drifted = dataclasses.replace(OFFSET, expected=5)
    with pytest.raises(AnnotationFixMismatch, match="expected offset = 5 but the sheet says 4"):
        apply_fixes(SAMPLES, [drifted])


def test_already_fixed_sheet_is_drift_too() -> None:
    corrected = [dataclasses.replace(SAMPLES[1], offset=9), SAMPLES[0]]
    with pytest.raises(AnnotationFixMismatch, match="sheet says 9"):
        apply_fixes(corrected, [OFFSET])
    with pytest.raises(AnnotationFixMismatch, match="apex to be missing but the sheet says 3"):
        apply_fixes([dataclasses.replace(SAMPLES[0], apex=3)], [APEX])


@pytest.mark.parametrize(
    ("fix", "samples", "match"),
    [
        (dataclasses.replace(APEX, sample_id="samm/999/x"), SAMPLES, "is missing"),
        (APEX, SAMPLES + SAMPLES[:1], "occurs twice"),
    ],
)
def test_bad_targets(fix: Fix, samples, match: str) -> None:
    with pytest.raises(AnnotationFixMismatch, match=match):
        apply_fixes(samples, [fix])


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"field": "subject"}, "cannot be fixed"),
        ({"row": 3}, "exactly one of sample_id and row"),
        ({"sample_id": None}, "exactly one of sample_id and row"),
        ({"check": "roughly"}, "unknown check"),
        ({"check": "contains:"}, "unknown check"),
        ({"expected": 4}, "only used by the equals check"),
        ({"sample_id": None, "row": -1}, "non-negative"),
    ],
)
def test_malformed_fix_is_refused(changes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(APEX, **changes)


def test_row_fixes_are_not_applied_to_samples() -> None:
    row_fix = Fix(row=0, field="apex", check="missing", value=1, reason="r", source="s")
    with pytest.raises(ValueError, match="row-located"):
        apply_fixes(SAMPLES, [row_fix])


def test_checks() -> None:
    assert check_old_value(APEX, None) is None
    assert check_old_value(AUS, "R12 or R15") is None
    assert check_old_value(AUS, "R12 OR R15") is None
    assert "contain 'or'" in str(check_old_value(AUS, "R12+R15"))
    assert "contain 'or'" in str(check_old_value(AUS, "Horizontal"))  # a word, not letters
    loose = dataclasses.replace(APEX, check="any")
    assert check_old_value(loose, 99) is None
    assert frames_out_of_order(1, 5, 9) is None
    assert frames_out_of_order(1, None, 9) is None
    assert frames_out_of_order(None, 5, 3) == "after the fix apex 5 is after offset 3"
    with pytest.raises(ValueError, match="apex at row 4 more than once"):
        twice = Fix(row=4, field="apex", check="missing", value=1, reason="r", source="s")
        check_table([twice, dataclasses.replace(twice, value=2)])


def test_shipped_tables_cite_meb_and_are_consistent() -> None:
    assert set(FIX_TABLES) == {"casme2", "samm", "mmew", "casme3a", "casme3c"}
    counts = {name: len(table) for name, table in FIX_TABLES.items()}
    assert counts == {"casme2": 22, "samm": 9, "mmew": 32, "casme3a": 7, "casme3c": 0}
    for table in FIX_TABLES.values():
        check_table(table)
        for fix in table:
            assert fix.source == MEB and fix.reason and fix.row is not None
    checks = {f.check for f in FIX_TABLES["casme2"] if f.field == "apex"}
    assert checks == {"missing"}
    samm_checks = sorted({(f.field, f.check) for f in FIX_TABLES["samm"]})
    assert samm_checks == [("apex", "missing"), ("aus", "contains:or"), ("offset", "ordered")]
    assert {f.check for f in FIX_TABLES["mmew"] + FIX_TABLES["casme3a"]} == {"ordered"}
    assert fixes_version([APEX]) == fixes_version([APEX]) != fixes_version([OFFSET])


def test_fix_tables_import_without_the_readers() -> None:
    code = "import sys, calib.fixes; print('calib.datasets' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
