"""apply_fixes: applied fixes, spreadsheet drift, missing ids, and the shipped tables."""

from __future__ import annotations

import dataclasses

import pytest

from calib.datasets import Sample
from calib.fixes import FIX_TABLES, Fix, apply_fixes, fixes_version
from edge.errors import AnnotationFixMismatch

SAMPLES = [
    Sample("samm", "006", "006_1_2", 10, None, 20, "anger", ("12 or 14",)),
    Sample("samm", "007", "007_3_1", 5, 7, 4, "happiness", ("12",)),
]
APEX = Fix("samm/006/006_1_2", "apex", None, 15, "apex cell empty", "test")
OFFSET = Fix("samm/007/007_3_1", "offset", 4, 9, "offset before onset", "test")
AUS = Fix("samm/006/006_1_2", "aus", ("12 or 14",), ("12",), "'or' in AU cell", "test")


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
    corrected = [dataclasses.replace(SAMPLES[1], offset=9)] + SAMPLES[:1]
    with pytest.raises(AnnotationFixMismatch, match="sheet says 9"):
        apply_fixes(corrected, [OFFSET])


@pytest.mark.parametrize(
    ("fix", "samples", "match"),
    [
        (dataclasses.replace(APEX, sample_id="samm/999/x"), SAMPLES, "is missing"),
        (APEX, SAMPLES + SAMPLES[:1], "occurs twice"),
        (dataclasses.replace(APEX, field="subject"), SAMPLES, "cannot be fixed"),
    ],
)
def test_bad_targets(fix: Fix, samples, match: str) -> None:
    with pytest.raises(AnnotationFixMismatch, match=match):
        apply_fixes(samples, [fix])


def test_tables_are_declared_and_versioned() -> None:
    assert set(FIX_TABLES) == {"casme2", "samm", "mmew", "casme3a", "casme3c"}
    for table in FIX_TABLES.values():
        assert all(isinstance(f, Fix) for f in table)
    assert fixes_version([APEX]) == fixes_version([APEX]) != fixes_version([OFFSET])
    assert apply_fixes(SAMPLES, FIX_TABLES["samm"])[0] == SAMPLES
