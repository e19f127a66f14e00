"""Micro-expression dataset readers: vendor spreadsheets and frame folders -> `Sample` lists.

The dataset loaders apply the known annotation fixes (`calib.fixes`) unless `fixes=False`.

Reading a spreadsheet needs the host extra (openpyxl, xlrd); importing this package does not.
"""

from __future__ import annotations

from typing import Callable, Dict, List

from .casme2 import load_casme2, parse_casme2
from .casme3 import load_casme3, load_casme3_a, load_casme3_c, parse_casme3_a, parse_casme3_c
from .checks import Issue, validate
from .fixing import LoadedSamples
from .frames import frame_index, frame_paths
from .generic import load_generic, parse_generic
from .labels import SCHEMES, map_labels, unmapped_counts
from .mmew import load_mmew, parse_mmew
from .samm import load_samm, parse_samm
from .sample import Sample, with_midpoint_apex
from .splits import loso_splits
from .tables import read_table

__all__ = [
    "Sample",
    "LoadedSamples",
    "with_midpoint_apex",
    "read_table",
    "frame_paths",
    "frame_index",
    "parse_casme2",
    "parse_samm",
    "parse_mmew",
    "parse_casme3_a",
    "parse_casme3_c",
    "parse_generic",
    "load_casme2",
    "load_samm",
    "load_mmew",
    "load_casme3",
    "load_casme3_a",
    "load_casme3_c",
    "load_generic",
    "SCHEMES",
    "map_labels",
    "unmapped_counts",
    "loso_splits",
    "Issue",
    "validate",
    "DATASETS",
]

#: Dataset name -> loader taking the dataset root (`load(root, **options)`).
DATASETS: Dict[str, Callable[..., List[Sample]]] = {
    "casme2": load_casme2,
    "samm": load_samm,
    "mmew": load_mmew,
    "casme3": load_casme3,
    "casme3a": load_casme3_a,
    "casme3c": load_casme3_c,
    "generic": load_generic,
}
