"""Finding faces anywhere in 720p and 1080p frames, and following one through a video: the
BlazeFace variants on square regions, the search pyramid, the tracker's schedules."""

from __future__ import annotations

import numpy as np
import pytest

from calib.video import compose_frame
from edge.align import MediaPipeAligner, Registration
from edge.align.detector import BACK_CAMERA, FULL_RANGE, SHORT_RANGE, BlazeFace
from edge.align.search import BANDS, FaceSearch, search_regions
from edge.align.tracker import FaceTracker, TrackerConfig

cv2 = pytest.importorskip("cv2")

FRAMES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def _noisy(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, 2.0, rgb.shape)
    return np.clip(rgb + noise, 0, 255).astype(np.uint8)


def _hit(detection, box) -> bool:
    """The detection's centre lies within 30% of the face box side of the box centre."""
    side = box[2] - box[0]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return abs(detection.centre[0] - cx) < 0.3 * side and abs(detection.centre[1] - cy) < 0.3 * side


@pytest.fixture(scope="module")
def search() -> FaceSearch:
    return FaceSearch(min_face=48)


@pytest.mark.parametrize("frame", sorted(FRAMES))
@pytest.mark.parametrize(
    "face_px, centre", [(80, (0.15, 0.8)), (170, (0.7, 0.3)), (400, (0.45, 0.5))]
)
def test_faces_from_80_to_400_px_are_found_anywhere(search, frame, face_px, centre):
    rgb, (box,) = compose_frame(FRAMES[frame], [("astronaut", face_px, centre)])
    found = search.search(_noisy(rgb)[:, :, ::-1].copy(), bgr=True)
    assert len(found) == 1 and _hit(found[0], box)
    # BlazeFace's box spans cheek to cheek, about 0.6 of the photograph's face box
    assert 0.45 * face_px < found[0].size < 0.85 * face_px


def test_batched_regions_match_one_call_each(astronaut):
    """A batch comes back layer by layer; decoded per input it equals separate calls."""
    rgb, (box,) = compose_frame((1280, 720), [("cameraman", 150, (0.3, 0.4))])
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    regions = [(900.0, 300.0, 400.0), (cx - 200, cy - 180, 400.0)]
    for model in (SHORT_RANGE, FULL_RANGE, BACK_CAMERA):
        detector = BlazeFace(model)
        together = detector.detect(rgb, regions)
        alone = detector.detect(rgb, regions[1:]) + detector.detect(rgb, regions[:1])
        assert len(together) == len(alone) >= 1
        np.testing.assert_allclose(together[0].box, alone[0].box, atol=1e-3)


@pytest.mark.parametrize("side", [260.0, 333.3, 900.0])
def test_regions_map_back_exactly(side):
    """Shrunk (area) or warped (bilinear), a window maps its detections back to the frame."""
    rgb, (box,) = compose_frame((1280, 720), [("astronaut", 160, (0.4, 0.45))])
    detector = BlazeFace()
    reference = BlazeFace().detect(rgb, [(box[0] - 100.3, box[1] - 90.7, 360.0)])[0]
    cx, cy = reference.centre
    found = detector.detect(rgb, [(cx - side / 2 + 17.3, cy - side / 2 - 11.1, side)])
    assert found and _hit(found[0], box)
    # keypoints agree within ~2% of the face: the model sees it at a different scale
    assert np.abs(found[0].keypoints[:4] - reference.keypoints[:4]).max() < 0.03 * side


@pytest.mark.parametrize("band", sorted(BANDS.values()))
@pytest.mark.parametrize("frame", sorted(FRAMES))
def test_every_face_fits_some_region_within_the_models_band(band, frame):
    width, height = FRAMES[frame]
    regions = search_regions(width, height, 48, band)
    lo, hi = band
    rng = np.random.default_rng(0)
    for _ in range(300):
        size = float(np.exp(rng.uniform(np.log(48), np.log(min(width, height) * 0.6))))
        x, y = rng.uniform(0, width - size), rng.uniform(0, height - size)
        fits = [
            r for r in regions
            if r[0] <= x and r[1] <= y and x + size <= r[0] + r[2] and y + size <= r[1] + r[2]
            and lo * r[2] <= size * 1.001 and size <= hi * r[2]
        ]  # fmt: skip
        assert fits, (size, x, y)


def test_head_and_shoulders_are_not_taken_for_a_larger_face(search):
    """Coarse levels propose a box about twice the face just below it; refinement drops it."""
    for centre, face_px in (((0.7, 0.3), 170), ((0.45, 0.3), 250)):
        rgb, (box,) = compose_frame((1920, 1080), [("astronaut", face_px, centre)])
        found = search.search(_noisy(rgb, 1))
        assert [_hit(d, box) for d in found] == [True]


def test_largest_face_or_the_nth_from_the_left():
    rgb, boxes = compose_frame(
        (1280, 720), [("astronaut", 120, (0.25, 0.4)), ("cameraman", 220, (0.7, 0.45))]
    )
    bgr = rgb[:, :, ::-1].copy()
    search = FaceSearch()
    largest = FaceTracker(search).update(bgr, bgr=True)
    assert largest is not None and largest.faces == 2 and largest.choice == "largest"
    assert _hit(largest.detection, boxes[1])
    left = FaceTracker(search, TrackerConfig(face=0)).update(bgr, bgr=True)
    assert left is not None and _hit(left.detection, boxes[0]) and left.choice == "0 from the left"
    missing = FaceTracker(search, TrackerConfig(face=2))
    assert missing.update(bgr, bgr=True) is None and missing.reason == "face 2 asked for, 2 found"


def test_tracker_redetects_after_the_face_leaves_and_comes_back():
    search = FaceSearch()
    tracker = FaceTracker(search, TrackerConfig(track_every=2, retry_every=3, lost_after=2))
    empty, _ = compose_frame((1280, 720), [])
    seen = []
    for index in range(36):
        if index < 12:  # drifting right, 2 px per frame
            rgb, (box,) = compose_frame(
                (1280, 720), [("astronaut", 150, (0.3 + index * 0.0016, 0.4))]
            )
        elif index < 24:
            rgb, box = empty, None
        else:  # back, elsewhere
            rgb, (box,) = compose_frame((1280, 720), [("astronaut", 150, (0.75, 0.6))])
        face = tracker.update(_noisy(rgb, index))
        seen.append(face.track if face is not None else None)
        if face is not None and box is not None and face.fresh:
            assert _hit(face.detection, box)
    assert seen[:12] == [1] * 12  # one track while it drifts
    assert all(s is None for s in seen[16:24])  # lost within lost_after x track_every frames
    assert seen[24:27].count(2) >= 1 and all(s == 2 for s in seen[27:])  # re-found, new track
    # searches ran only to acquire and while the face was away, not on every frame
    assert tracker.searches <= 2 + 12 // 3 + 2
    assert tracker.redetections <= 36 // 2 + 2


def test_fast_aligner_registers_a_tracked_face_in_a_1080p_frame():
    rgb, (box,) = compose_frame((1920, 1080), [("astronaut", 100, (0.8, 0.7))])
    bgr = _noisy(rgb)[:, :, ::-1].copy()
    for aligner in (MediaPipeAligner(landmarks="detector"), MediaPipeAligner()):
        face = FaceTracker(aligner.faces()).update(bgr, bgr=True)
        assert face is not None
        tracked = aligner.register(bgr, detection=face.detection, bgr=True)
        searched = aligner.register(bgr[:, :, ::-1].copy())  # RGB, no hint: searches itself
        assert isinstance(tracked, Registration) and isinstance(searched, Registration)
        np.testing.assert_allclose(tracked.matrix, searched.matrix, atol=1e-6)
        crop = aligner.warp(bgr, tracked)
        assert crop.shape == (224, 224, 3)
