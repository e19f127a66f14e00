"""The validation tiers a bundle carries (standard and hard) and FP32's noise stability."""

from __future__ import annotations

import numpy as np
import pytest

from edge.models.mmnet_spec import VARIANTS, mmnet_spec
from edge.noise import noise_stability, with_pixel_noise
from quantize.data import HARD_START, ValidationSet, validation_tiers

SPEC = mmnet_spec(VARIANTS["casme2-5"])


def test_both_tiers_are_labelled_disjoint_and_the_hard_one_is_cached(tmp_path):
    tiers = validation_tiers(SPEC, standard=5, hard=6, seed=3, cache_dir=tmp_path)
    assert list(tiers) == ["standard", "hard"]
    standard, hard = tiers["standard"], tiers["hard"]
    assert (standard.tier, standard.file) == ("standard", "validation.npz")
    assert (hard.tier, hard.file) == ("hard", "validation_hard.npz")
    assert hard.frames.shape == (6, 2, 224, 224, 3) and hard.frames.dtype == np.uint8
    assert sorted(hard.labels.tolist()) == sorted([0, 1, 2, 3, 4, 0])
    assert not set(hard.names) & set(standard.names)
    assert hard.names[0].endswith(f"/{HARD_START}")
    # pseudo-subjects beyond the demo recipes' s00..s15
    assert all(int(n.split("/")[1][1:]) >= 16 for n in hard.names)
    cached = list(tmp_path.glob("validation-hard-*.npz"))
    assert len(cached) == 1
    again = validation_tiers(SPEC, standard=5, hard=6, seed=3, cache_dir=tmp_path)["hard"]
    np.testing.assert_array_equal(again.frames, hard.frames)
    assert again.source == hard.source and again.tier == "hard"
    other = validation_tiers(SPEC, standard=0, hard=6, seed=4, cache_dir=tmp_path)
    assert list(other) == ["hard"] and not np.array_equal(other["hard"].frames, hard.frames)
    # a damaged cache entry is rebuilt, not trusted
    cached[0].write_bytes(b"broken")
    rebuilt = validation_tiers(SPEC, standard=0, hard=6, seed=3, cache_dir=tmp_path)["hard"]
    np.testing.assert_array_equal(rebuilt.frames, hard.frames)


def test_hard_frames_go_through_the_runtime_preprocessing(tmp_path):
    hard = validation_tiers(SPEC, standard=0, hard=2, seed=0, cache_dir=tmp_path)["hard"]
    feeds = hard.feeds(SPEC)
    assert feeds[0]["onset"].shape == (1, 3, 224, 224) and feeds[0]["onset"].dtype == np.float32
    path = tmp_path / "v.npz"
    hard.save(path, np.zeros((2, 5), np.float32))
    loaded = ValidationSet.load(path, tier="hard")
    np.testing.assert_array_equal(loaded.frames, hard.frames)
    with np.load(path) as data:
        assert data["reference_logits"].shape == (2, 5)


def test_models_without_synthetic_classes_get_no_tiers(tmp_path):
    spec = mmnet_spec(VARIANTS["casme2-5"]).with_class_names(("a", "b", "c", "d", "e"))
    assert validation_tiers(spec, standard=4, hard=4, cache_dir=tmp_path) == {}


def _linear(weights):
    return lambda feed: np.stack([(feed["x"] * w).sum(axis=(1, 2, 3)) for w in weights], axis=1)


def test_noise_stability_counts_the_decisions_kept():
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.normal(size=(1, 3, 4, 4)).astype(np.float32)} for _ in range(50)]
    std = (0.229, 0.224, 0.225)
    w = rng.normal(size=(2, 3, 4, 4))
    infer = _linear(w)
    assert noise_stability(infer, feeds, std, 0.0) == 1.0
    assert noise_stability(infer, feeds, std, 0.01, seed=1) == 1.0
    shaky = noise_stability(infer, feeds, std, 2000.0, seed=1)  # noise swamps the signal
    assert 0.2 < shaky < 0.9
    # the same draw as with_pixel_noise: a reference saves a pass, and the result is the same
    clean = np.concatenate([infer(f) for f in feeds])
    noisy = np.concatenate([infer(f) for f in with_pixel_noise(feeds, std, 2000.0, seed=1)])
    expected = np.mean(noisy.argmax(1) == clean.argmax(1))
    assert noise_stability(infer, feeds, std, 2000.0, seed=1, reference=clean) == expected
    with pytest.raises(ValueError, match="no feeds"):
        noise_stability(infer, [], std, 0.5)
