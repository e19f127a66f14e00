"""Leave-one-subject-out folds."""

from __future__ import annotations

from calib.datasets import Sample, loso_splits


def test_one_fold_per_subject_across_datasets() -> None:
    samples = [
        Sample("casme2", "sub02", "a", 1, 2, 3, "x"),
        Sample("casme2", "sub01", "b", 1, 2, 3, "x"),
        Sample("casme2", "sub02", "c", 1, 2, 3, "x"),
        Sample("samm", "sub01", "d", 1, 2, 3, "x"),  # same name, different person
    ]
    folds = loso_splits(samples)
    assert [key for key, _, _ in folds] == ["casme2/sub01", "casme2/sub02", "samm/sub01"]
    for key, train, test in folds:
        assert train + test and not set(map(id, train)) & set(map(id, test))
        assert sorted(s.clip for s in train + test) == ["a", "b", "c", "d"]
        assert all(f"{s.dataset}/{s.subject}" == key for s in test)
    assert [s.clip for s in folds[1][2]] == ["a", "c"]


def test_empty() -> None:
    assert loso_splits([]) == []
