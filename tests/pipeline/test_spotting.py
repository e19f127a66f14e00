"""Spotting on real face crops with planted micro-expressions, and the variable-frame-rate clock."""

from __future__ import annotations

import numpy as np
import pytest

from edge.pipeline import FrameClock, Spotter, motion_image

cv2 = pytest.importorskip("cv2")
pytest.importorskip("skimage")


def _clip(events, frames=150, amplitude=1.5, noise=1.0, seed=0, drift_px_per_frame=0.0):
    """Registered crops of the astronaut: micro-expressions at `events` (onset, rise), sensor
    noise, and optional slow drift (a linear shift that spotting must ignore)."""
    from calib.faces import micro_expression_pair

    onset_img, _ = micro_expression_pair("astronaut", size=224)
    levels = {
        a: micro_expression_pair("astronaut", size=224, amplitude_px=amplitude * a / 10)[1]
        for a in range(11)
    }
    rng = np.random.default_rng(seed)
    out = []
    for index in range(frames):
        level = 0.0
        for start, rise in events:
            if start < index < start + 2 * rise:
                t = (
                    (index - start) / rise
                    if index <= start + rise
                    else (start + 2 * rise - index) / rise
                )
                level = max(level, 0.5 - 0.5 * np.cos(np.pi * t))
        frame = levels[int(round(level * 10))] if level > 0 else onset_img
        if drift_px_per_frame:
            shift = np.float32([[1, 0, drift_px_per_frame * index], [0, 1, 0]])
            frame = cv2.warpAffine(frame, shift, (224, 224), borderMode=cv2.BORDER_REPLICATE)
        noisy = frame.astype(np.float32) + rng.normal(0, noise, frame.shape)
        out.append(np.clip(noisy, 0, 255).astype(np.uint8)[:, :, ::-1].copy())
    return out


def _spot(frames, fps=30.0, **kwargs):
    spotter = Spotter(fps, **kwargs)
    spots = []
    for index, frame in enumerate(frames):
        spots += spotter.push(index, index / fps, motion_image(frame))
    return spots + spotter.flush()


def test_planted_events_are_spotted_at_their_apex():
    spots = _spot(_clip([(30, 5), (100, 6)]))
    assert [abs(s.apex - a) <= 1 for s, a in zip(spots, (35, 106))] == [True, True], spots
    assert len(spots) == 2
    for spot, onset in zip(spots, (30, 100)):
        assert abs(spot.onset - onset) <= 2 and spot.onset < spot.apex
        assert spot.magnitude > spot.threshold
        assert spot.apex_time_s == pytest.approx(spot.apex / 30.0)


def test_no_event_no_spot_even_with_slow_drift():
    assert _spot(_clip([])) == []
    assert _spot(_clip([], drift_px_per_frame=0.05)) == []


def test_spots_are_confirmed_with_a_bounded_lag():
    frames = _clip([(30, 5)], frames=90)
    spotter = Spotter(30.0)
    confirmed_at = None
    for index, frame in enumerate(frames):
        if spotter.push(index, index / 30.0, motion_image(frame)):
            confirmed_at = index
            break
    assert confirmed_at is not None and confirmed_at - 35 <= 3 * spotter.k + 1


def test_clock_uses_container_times_and_survives_bad_ones():
    clock = FrameClock(30.0)
    # variable frame rate: gaps of 33, 50 and 20 ms are kept as reported
    assert [clock.time(ms) for ms in (0.0, 33.0, 83.0, 103.0)] == pytest.approx(
        [0.0, 0.033, 0.083, 0.103]
    )
    # repeated, missing or NaN timestamps advance by the nominal frame time
    assert clock.time(103.0) == pytest.approx(0.103 + 1 / 30)
    assert clock.time(None) == pytest.approx(0.103 + 2 / 30)
    assert clock.time(float("nan")) == pytest.approx(0.103 + 3 / 30)
    assert FrameClock(0.0).fps == 30.0
