"""Label schemes: MMNet 5/3-class, MEGC composite per dataset, CAS(ME)^3 4-class, drops."""

from __future__ import annotations

import logging

from calib.datasets import SCHEMES, Sample, map_labels, unmapped_counts
from calib.datasets import labels as L


def _s(dataset: str, emotion: str, clip: str = "c") -> Sample:
    return Sample(dataset, "s1", clip, 1, 2, 3, emotion)


def test_mmnet_casme2_orders_match_the_model_spec() -> None:
    from edge.models.mmnet_spec import CASME2_3_CLASSES, CASME2_5_CLASSES

    assert L.MMNET_CASME2_5_CLASSES == CASME2_5_CLASSES
    assert L.MMNET_CASME2_3_CLASSES == CASME2_3_CLASSES


def test_every_scheme_maps_into_its_classes() -> None:
    for classes, mapping in SCHEMES.values():
        assert set(mapping.values()) == set(classes)


def test_mmnet_3_class_negative_and_drops(caplog) -> None:
    samples = [_s("casme2", e, e) for e in L.CASME2_EMOTIONS]
    with caplog.at_level(logging.INFO, logger="calib.datasets.labels"):
        mapped = map_labels(samples, L.MMNET_CASME2_3)
    assert [s.emotion for s in mapped] == [
        "happiness",
        "surprise",
        "negative",
        "negative",
        "negative",
        "negative",
    ]
    assert mapped[2].notes == ("emotion disgust -> negative",)
    assert unmapped_counts(samples, L.MMNET_CASME2_3) == {"casme2/others": 1}
    assert "dropped 1 of 7" in caplog.text


def test_megc_composite_is_dataset_specific() -> None:
    samples = [
        _s("casme2", "fear"),
        _s("samm", "fear"),
        _s("casme3a", "happy"),
        _s("samm", "other"),
    ]
    mapped = map_labels(samples, L.MEGC_3)
    assert [(s.dataset, s.emotion) for s in mapped] == [
        ("samm", "negative"),
        ("casme3a", "positive"),
    ]
    assert unmapped_counts(samples, L.MEGC_3) == {"casme2/fear": 1, "samm/other": 1}


def test_casme3_4_class_covers_both_parts() -> None:
    part_a = [_s("casme3a", e, e) for e in L.CASME3A_EMOTIONS]
    part_c = [_s("casme3c", e, e) for e in L.CASME3C_EMOTIONS]
    mapped = map_labels(part_a + part_c, L.CASME3_4)
    assert len(mapped) == len(part_a) + len(part_c)
    assert {s.clip: s.emotion for s in mapped[:7]} == {
        "disgust": "negative",
        "surprise": "surprise",
        "others": "others",
        "fear": "negative",
        "anger": "negative",
        "sad": "negative",
        "happy": "positive",
    }


def test_mmew_4_class_undoes_meb_rename() -> None:
    assert [s.emotion for s in map_labels([_s("mmew", "repression")], L.MMNET_MMEW_4)] == ["others"]
