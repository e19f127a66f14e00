"""Depth frames for depth-reading models (AFNet-M) from the CAS(ME)^3 layout: `<clip>/color/` and
`<clip>/depth/` side by side, 16-bit PNGs in millimetres, registered like the colour frames."""

from __future__ import annotations

import numpy as np
import pytest

from calib.datasets.sample import Sample
from edge.errors import CalibrationError

pytestmark = [pytest.mark.torch]
cv2 = pytest.importorskip("cv2")


def _clip(root, name, *, depth: bool):
    from calib.faces import face_crop

    colour = root / name / "color"
    colour.mkdir(parents=True)
    face = face_crop("astronaut", 160)[:, :, ::-1]
    for n in range(1, 6):
        cv2.imwrite(str(colour / f"{n}.jpg"), face)
    if depth:
        (root / name / "depth").mkdir()
        for n in range(1, 6):
            d = np.full((160, 160), 800, np.uint16)
            d[40:120, 40:120] = 700 - 10 * n  # the face comes nearer frame by frame
            cv2.imwrite(str(root / name / "depth" / f"{n}.png"), d)
    return colour


def _spec():
    from edge.models.afnet_m_spec import AFNetMConfig, afnet_m_spec

    return afnet_m_spec(AFNetMConfig())


def test_depth_is_read_beside_the_colour_frames_and_made_relative(tmp_path):
    from calib.prepare import prepare_samples

    spec = _spec()
    samples = [
        Sample("casme3a", f"spNO.{i}", "a", 1, 4, 5, spec.class_names[i % 6],
               frame_dir=_clip(tmp_path, f"s{i}", depth=True))
        for i in range(3)
    ]  # fmt: skip
    prepared = prepare_samples(spec, samples, 3, source="casme3", cache_dir=None)
    depth = prepared.inputs["depth"]
    assert depth.shape == (3, 1, 112, 112)
    # relative depth: the nearest (face) region at +1.0, the background 100+ mm behind at -1.0
    assert depth.max() == pytest.approx(1.0) and depth.min() == pytest.approx(-1.0)
    assert prepared.inputs["texture"].shape == (3, 3, 112, 112)


def test_a_depth_model_on_a_dataset_without_depth_says_so(tmp_path):
    from calib.prepare import prepare_samples

    spec = _spec()
    sample = Sample("casme3a", "spNO.1", "a", 1, 4, 5, "anger",
                    frame_dir=_clip(tmp_path, "s", depth=False))  # fmt: skip
    with pytest.raises(CalibrationError, match="no sibling depth/ folder"):
        prepare_samples(spec, [sample], 1, source="casme3", cache_dir=None)
