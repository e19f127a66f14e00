"""Class schemes as data, and relabelling samples into one of them.

A mapping takes a dataset-native emotion (lower case, as the readers produce it) to a class
name; a key may also be `<dataset>/<emotion>`, which wins over the bare emotion, because a
composite treats the same word differently per dataset (MEGC counts CASME II fear as unused but
SAMM fear as negative). Emotions absent from the mapping are dropped.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from .sample import Sample

__all__ = [
    "CASME2_EMOTIONS",
    "SAMM_EMOTIONS",
    "CASME3A_EMOTIONS",
    "CASME3C_EMOTIONS",
    "MMNET_CASME2_5_CLASSES",
    "MMNET_CASME2_5",
    "MMNET_CASME2_3_CLASSES",
    "MMNET_CASME2_3",
    "MMNET_SAMM_5_CLASSES",
    "MMNET_SAMM_5",
    "MMNET_MMEW_4_CLASSES",
    "MMNET_MMEW_4",
    "MEGC_3_CLASSES",
    "MEGC_3",
    "CASME3_4_CLASSES",
    "CASME3_4",
    "SCHEMES",
    "target_class",
    "unmapped_counts",
    "map_labels",
]

logger = logging.getLogger(__name__)

# Dataset-native emotions (after lower-casing) with the counts our fact sheet records.
CASME2_EMOTIONS = ("happiness", "surprise", "disgust", "repression", "fear", "sadness", "others")
SAMM_EMOTIONS = (
    "anger",
    "happiness",
    "other",
    "surprise",
    "contempt",
    "disgust",
    "fear",
    "sadness",
)
CASME3A_EMOTIONS = ("disgust", "surprise", "others", "fear", "anger", "sad", "happy")
CASME3C_EMOTIONS = ("negative", "surprise", "others", "positive")

#: MMNet `CASME2_5.py` label order (index = class id) and mapping.
MMNET_CASME2_5_CLASSES = ("happiness", "repression", "disgust", "surprise", "others")
MMNET_CASME2_5: Dict[str, str] = {c: c for c in MMNET_CASME2_5_CLASSES}

#: MMNet `CASME2_3.py`: negative = repression, disgust, fear, sadness.
MMNET_CASME2_3_CLASSES = ("happiness", "surprise", "negative")
MMNET_CASME2_3: Dict[str, str] = {
    "happiness": "happiness",
    "surprise": "surprise",
    "repression": "negative",
    "disgust": "negative",
    "fear": "negative",
    "sadness": "negative",
}

#: SAMM 5-class as used in MMNet's table (SAMM's `Other` is the `others` class).
MMNET_SAMM_5_CLASSES = ("happiness", "anger", "contempt", "surprise", "others")
MMNET_SAMM_5: Dict[str, str] = {
    "happiness": "happiness",
    "anger": "anger",
    "contempt": "contempt",
    "surprise": "surprise",
    "other": "others",
}

#: MMEW 4-class (MMNet/SZU); meb's `others -> repression` rename is undone here.
MMNET_MMEW_4_CLASSES = ("happiness", "surprise", "disgust", "others")
MMNET_MMEW_4: Dict[str, str] = {
    "happiness": "happiness",
    "surprise": "surprise",
    "disgust": "disgust",
    "others": "others",
    "repression": "others",
}

#: MEGC 2019 composite (CASME II + SAMM, + CAS(ME)^3 here); class order is ours (alphabetical).
MEGC_3_CLASSES = ("negative", "positive", "surprise")
MEGC_3: Dict[str, str] = {
    "casme2/happiness": "positive",
    "casme2/surprise": "surprise",
    "casme2/disgust": "negative",
    "casme2/repression": "negative",
    "samm/happiness": "positive",
    "samm/surprise": "surprise",
    "samm/anger": "negative",
    "samm/contempt": "negative",
    "samm/disgust": "negative",
    "samm/fear": "negative",
    "samm/sadness": "negative",
    "casme3a/happy": "positive",
    "casme3a/surprise": "surprise",
    "casme3a/disgust": "negative",
    "casme3a/fear": "negative",
    "casme3a/anger": "negative",
    "casme3a/sad": "negative",
    "casme3c/positive": "positive",
    "casme3c/surprise": "surprise",
    "casme3c/negative": "negative",
}

#: CAS(ME)^3 4-class: positive = happy; negative = disgust/fear/anger/sad (Part C pre-grouped).
CASME3_4_CLASSES = ("positive", "negative", "surprise", "others")
CASME3_4: Dict[str, str] = {
    "happy": "positive",
    "disgust": "negative",
    "fear": "negative",
    "anger": "negative",
    "sad": "negative",
    "surprise": "surprise",
    "others": "others",
    "positive": "positive",
    "negative": "negative",
}

#: Scheme name -> (class order, mapping).
SCHEMES: Dict[str, Tuple[Tuple[str, ...], Mapping[str, str]]] = {
    "mmnet-casme2-5": (MMNET_CASME2_5_CLASSES, MMNET_CASME2_5),
    "mmnet-casme2-3": (MMNET_CASME2_3_CLASSES, MMNET_CASME2_3),
    "mmnet-samm-5": (MMNET_SAMM_5_CLASSES, MMNET_SAMM_5),
    "mmnet-mmew-4": (MMNET_MMEW_4_CLASSES, MMNET_MMEW_4),
    "megc-3": (MEGC_3_CLASSES, MEGC_3),
    "casme3-4": (CASME3_4_CLASSES, CASME3_4),
}


def target_class(sample: Sample, mapping: Mapping[str, str]) -> Optional[str]:
    """The class `sample` maps to (dataset-qualified key first), or None."""
    qualified = f"{sample.dataset}/{sample.emotion}"
    if qualified in mapping:
        return mapping[qualified]
    return mapping.get(sample.emotion)


def unmapped_counts(samples: Iterable[Sample], mapping: Mapping[str, str]) -> Dict[str, int]:
    """How many samples per `dataset/emotion` the mapping would drop."""
    counts = Counter(
        f"{s.dataset}/{s.emotion}" for s in samples if target_class(s, mapping) is None
    )
    return dict(sorted(counts.items()))


def map_labels(samples: Iterable[Sample], mapping: Mapping[str, str]) -> List[Sample]:
    """Samples relabelled into the mapping's classes; unmapped ones are dropped and counted in
    a log record (use `unmapped_counts` for the numbers). Relabels are noted in `notes`."""
    samples = list(samples)
    mapped: List[Sample] = []
    for sample in samples:
        target = target_class(sample, mapping)
        if target is None:
            continue
        if target != sample.emotion:
            note = f"emotion {sample.emotion} -> {target}"
            sample = sample.with_note(note, emotion=target)
        mapped.append(sample)
    dropped = len(samples) - len(mapped)
    if dropped:
        logger.info(
            "map_labels dropped %d of %d samples: %s",
            dropped,
            len(samples),
            unmapped_counts(samples, mapping),
        )
    return mapped
