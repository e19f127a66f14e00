"""MMNet loads official state_dicts faithfully, and every bad checkpoint gets its own error."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

from edge.errors import CheckpointError

torch = pytest.importorskip("torch")

from edge.models.mmnet import load_mmnet  # noqa: E402
from tests.official_mmnet import official_forward, official_shapes, official_state_dict  # noqa: E402

pytestmark = pytest.mark.torch


def save(tmp_path: Path, state, name="model.pth") -> Path:
    path = tmp_path / name
    torch.save(state, path)
    return path


def face_batch():
    from calib.faces import reference_pairs
    from edge.models.mmnet_spec import VARIANTS, mmnet_spec
    from edge.preprocess import prepare_inputs

    spec = mmnet_spec(VARIANTS["casme2-5"])
    feeds = [prepare_inputs(spec, {"onset": o, "apex": a}) for _, o, a in reference_pairs()]
    onset = torch.from_numpy(np.concatenate([f["onset"] for f in feeds]))
    apex = torch.from_numpy(np.concatenate([f["apex"] for f in feeds]))
    return onset, apex


def test_official_layout_matches_the_fact_sheet():
    shapes = official_shapes("casme2-5")
    assert len(shapes) == 146
    per_prefix = collections.Counter()
    for key, shape in shapes.items():
        per_prefix[key.split(".")[0]] += int(np.prod(shape)) if shape else 1
    assert per_prefix == {
        "timeembed": 49_284,
        "conv_act": 5_581,
        "pos": 3_585,
        "vit_pos": 6_411_782,
        "main_branch": 3_031_597,
        "head": 476_672,
    }


@pytest.mark.parametrize("variant", ["casme2-5", "casme2-3"])
def test_official_state_dict_loads_and_matches_the_official_forward(tmp_path, variant):
    state = official_state_dict(variant, seed=1)
    loaded = load_mmnet(save(tmp_path, state))
    assert loaded.spec.variant == variant
    assert loaded.info["trained"] is True
    assert "timeembed" in loaded.info["ignored_dead_keys"]
    onset, apex = face_batch()
    with torch.no_grad():
        ours = loaded.model(onset, apex)
        official = official_forward(state, onset, apex, variant)
    n = loaded.spec.num_classes
    assert ours.shape == (2, n)
    torch.testing.assert_close(ours, official[:, :n], rtol=1e-5, atol=1e-5)


def test_three_class_variant_is_inferred_and_keeps_three_of_five_rows(tmp_path):
    loaded = load_mmnet(save(tmp_path, official_state_dict("casme2-3")))
    assert loaded.spec.class_names == ("happiness", "surprise", "negative")
    assert loaded.model.main_branch.fc.out_features == 5
    assert any("first 3 logits" in note for note in loaded.spec.notes)


def test_module_prefix_is_stripped(tmp_path):
    state = {"module." + k: v for k, v in official_state_dict().items()}
    loaded = load_mmnet(save(tmp_path, state))
    assert loaded.info["stripped_prefix"] == "module."


def test_dead_modules_may_be_absent(tmp_path):
    state = {
        k: v
        for k, v in official_state_dict().items()
        if not k.startswith(("timeembed", "pos.", "head.", "vit_pos.head", "vit_pos.cls"))
    }
    assert load_mmnet(save(tmp_path, state)).info["ignored_dead_keys"] == [
        "vit_pos.to_Mask.0.bias",
        "vit_pos.to_Mask.0.weight",
    ]


def test_nested_state_dict_and_safetensors(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    state = official_state_dict()
    assert (
        load_mmnet(save(tmp_path, {"state_dict": state}, "wrapped.pt")).spec.variant == "casme2-5"
    )
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    assert load_mmnet(path).spec.variant == "casme2-5"


def test_class_names_override(tmp_path):
    names = ["pos", "sur", "neg"]
    loaded = load_mmnet(save(tmp_path, official_state_dict("casme2-3")), class_names=names)
    assert loaded.spec.class_names == tuple(names)
    with pytest.raises(Exception, match="3 classes"):
        load_mmnet(save(tmp_path, official_state_dict("casme2-3")), class_names=["a", "b"])


class _Payload:
    """Unpickling this would create a marker file: proof that pickled code ran."""

    marker = None

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickled_code_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.marker = str(marker)
    path = save(tmp_path, {"state_dict": official_state_dict(), "extra": payload})
    with pytest.raises(CheckpointError, match="pickled Python objects") as err:
        load_mmnet(path)
    assert str(path) in str(err.value)
    assert not marker.exists()


def test_truncated_checkpoint(tmp_path):
    path = save(tmp_path, official_state_dict())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated") as err:
        load_mmnet(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"this is not a checkpoint", "truncated or not a PyTorch checkpoint")],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_mmnet(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_mmnet(tmp_path / "nope.pth")


def test_wrong_architecture(tmp_path):
    state = {"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 512)}
    with pytest.raises(CheckpointError, match="not an MMNet state_dict") as err:
        load_mmnet(save(tmp_path, state))
    assert "conv1.weight" in str(err.value)


def test_not_a_state_dict(tmp_path):
    with pytest.raises(CheckpointError, match="expected a state_dict"):
        load_mmnet(save(tmp_path, [1, 2, 3]))


def test_shape_mismatch_lists_the_tensor(tmp_path):
    state = official_state_dict()
    state["main_branch.layer3.0.conv2.weight"] = torch.zeros(256, 128, 1, 1)
    with pytest.raises(CheckpointError, match="wrong shape") as err:
        load_mmnet(save(tmp_path, state))
    assert "main_branch.layer3.0.conv2.weight [256, 128, 1, 1] (expected [256, 256, 1, 1])" in str(
        err.value
    )


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    state = official_state_dict()
    del state["main_branch.layer2.0.bn1.running_var"]
    state["main_branch.extra.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError) as err:
        load_mmnet(save(tmp_path, state))
    text = str(err.value)
    assert "missing keys: main_branch.layer2.0.bn1.running_var" in text
    assert "unexpected keys: main_branch.extra.weight" in text


def test_non_finite_weights(tmp_path):
    state = official_state_dict()
    state["main_branch.fc.bias"][0] = float("nan")
    with pytest.raises(CheckpointError, match="NaN or Inf in 1 tensor"):
        load_mmnet(save(tmp_path, state))


def test_unknown_variant_needs_class_names(tmp_path):
    state = official_state_dict(fc_rows=4)
    with pytest.raises(CheckpointError, match="--class-names"):
        load_mmnet(save(tmp_path, state))
    loaded = load_mmnet(save(tmp_path, state), class_names=["a", "b", "c", "d"])
    assert loaded.spec.variant == "custom-d2-m4-c4"
    assert loaded.spec.num_classes == 4
