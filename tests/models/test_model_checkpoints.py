"""Project checkpoint format for AFNet-M and FAMNet: round trip, registry, and every bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.errors import CheckpointError, EdgeBuildError
from edge.models.afnet_m_spec import AFNetMConfig
from edge.models.famnet_spec import FAMNetConfig

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from edge.models import afnet_m_arch, architecture, architecture_names, famnet_arch  # noqa: E402  # noqa: E402
from edge.models.checkpoint import META_ARCH, META_CONFIG, read_metadata  # noqa: E402

pytestmark = pytest.mark.torch

SMALL_AFNET = AFNetMConfig(size=32, stem_width=8, widths=(8, 16, 16, 32), reduction=2)
SMALL_FAMNET = FAMNetConfig(base_width=8, size=32, clip_length=4, reduction=2)
CASES = {
    "afnet_m": (afnet_m_arch, SMALL_AFNET),
    "famnet": (famnet_arch, SMALL_FAMNET),
}


def example(spec, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*[2] + list(t.shape[1:]), generator=g) for t in spec.inputs]


def outputs(loaded, args):
    with torch.no_grad():
        out = loaded.model(*args)
    return out if isinstance(out, tuple) else (out,)


def trained_like(arch, seed=3):
    """A seeded model with non-default BN statistics and fusion weights, as after training."""
    module, config = CASES[arch]
    loaded = module.build_seeded(seed, config)
    with torch.no_grad():
        for name, tensor in loaded.model.state_dict().items():
            if name.endswith(("running_mean", "running_var", "_weights")):
                tensor.uniform_(0.5, 1.5)
    return loaded


def test_registry_lists_both():
    assert {"afnet_m", "famnet", "mmnet"} <= set(architecture_names())
    assert architecture("afnet_m") is afnet_m_arch
    assert architecture("famnet") is famnet_arch


@pytest.mark.parametrize("arch", sorted(CASES))
def test_save_load_round_trip_gives_equal_outputs(tmp_path, arch):
    module, config = CASES[arch]
    original = trained_like(arch)
    path = module.save(original, tmp_path / f"{arch}.safetensors")
    meta = read_metadata(path)
    assert meta[META_ARCH] == arch
    assert json.loads(meta[META_CONFIG])["size"] == 32
    loaded = module.load(path)
    assert loaded.spec == original.spec
    assert loaded.info["trained"] is True
    assert loaded.info["config_source"] == "checkpoint metadata"
    assert loaded.info["checkpoint"] == str(path) and len(loaded.info["checkpoint_sha256"]) == 64
    args = example(loaded.spec)
    for a, b in zip(outputs(original, args), outputs(loaded, args)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_afnet_m_checkpoint_loads_in_either_mask_mode(tmp_path):
    path = afnet_m_arch.save(trained_like("afnet_m").model, tmp_path / "a.safetensors")
    constant = afnet_m_arch.load(path)
    as_input = afnet_m_arch.load(path, mask_mode="input")
    assert as_input.spec.input_names() == ("texture", "depth", "mask")
    texture, depth = example(constant.spec)
    mask = as_input.model.region_mask.expand(2, 1, 32, 32).contiguous()
    with torch.no_grad():
        torch.testing.assert_close(
            constant.model(texture, depth), as_input.model(texture, depth, mask), rtol=0, atol=1e-6
        )
    with pytest.raises(CheckpointError, match="mask_mode"):
        afnet_m_arch.load(path, mask_mode="sometimes")


def test_class_names_relabel_but_keep_the_count(tmp_path):
    path = famnet_arch.save(trained_like("famnet"), tmp_path / "f.safetensors")
    names = ["pos", "neg", "sur", "rep", "oth"]
    loaded = famnet_arch.load(path, class_names=names)
    assert loaded.spec.class_names == tuple(names)
    assert loaded.model.config.class_names == tuple(names)
    with pytest.raises(EdgeBuildError, match="5 classes"):
        famnet_arch.load(path, class_names=["a", "b"])


def test_other_architecture_metadata_is_refused(tmp_path):
    path = afnet_m_arch.save(trained_like("afnet_m"), tmp_path / "a.safetensors")
    with pytest.raises(CheckpointError, match="'afnet_m' checkpoint, not 'famnet'") as err:
        famnet_arch.load(path)
    assert str(path) in str(err.value)


def test_saving_the_wrong_model_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no mer-edge config"):
        famnet_arch.save(trained_like("afnet_m"), tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="needs a .safetensors name"):
        afnet_m_arch.save(trained_like("afnet_m"), tmp_path / "x.pt")
    assert not list(tmp_path.iterdir())


def _resave(path: Path, state, meta):
    safetensors_torch.save_file(
        {k: v.contiguous() for k, v in state.items()}, str(path), metadata=meta
    )
    return path


@pytest.mark.parametrize("arch", sorted(CASES))
def test_missing_and_unexpected_keys_are_named(tmp_path, arch):
    module, _ = CASES[arch]
    path = module.save(trained_like(arch), tmp_path / "m.safetensors")
    meta = read_metadata(path)
    state = safetensors_torch.load_file(str(path))
    victim = sorted(k for k in state if k.endswith(".weight"))[3]
    del state[victim]
    state["extra.weight"] = torch.zeros(2)
    with pytest.raises(CheckpointError) as err:
        module.load(_resave(path, state, meta))
    text = str(err.value)
    assert str(path) in text
    assert f"missing keys: {victim}" in text and "unexpected keys: extra.weight" in text


def test_wrong_shape_is_named(tmp_path):
    path = afnet_m_arch.save(trained_like("afnet_m"), tmp_path / "m.safetensors")
    meta = read_metadata(path)
    state = safetensors_torch.load_file(str(path))
    state["classifier.weight"] = torch.zeros(7, 72)
    with pytest.raises(CheckpointError, match="wrong shape") as err:
        afnet_m_arch.load(_resave(path, state, meta))
    assert "classifier.weight [7, 72] (expected [6, 72])" in str(err.value)


def test_non_finite_weights(tmp_path):
    path = famnet_arch.save(trained_like("famnet"), tmp_path / "m.safetensors")
    meta = read_metadata(path)
    state = safetensors_torch.load_file(str(path))
    state["amnet3d_heads.au.bias"][0] = float("inf")
    with pytest.raises(CheckpointError, match="NaN or Inf in 1 tensor.*amnet3d_heads.au.bias"):
        famnet_arch.load(_resave(path, state, meta))


def test_bad_config_metadata(tmp_path):
    path = famnet_arch.save(trained_like("famnet"), tmp_path / "m.safetensors")
    state = safetensors_torch.load_file(str(path))
    for config, match in [
        ("{not json", "not valid JSON"),
        ('{"size": 32, "depth": 50}', "unknown config field"),
        ('{"fusion": "max"}', "fusion"),
    ]:
        _resave(path, state, {META_ARCH: "famnet", META_CONFIG: config})
        with pytest.raises(CheckpointError, match=match) as err:
            famnet_arch.load(path)
        assert str(path) in str(err.value)


def test_plain_state_dict_uses_the_default_config(tmp_path):
    """A user's `torch.save(model.state_dict())` of a default-config model loads as is."""
    model = afnet_m_arch.build_seeded(5).model
    path = tmp_path / "plain.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}}, path)
    loaded = afnet_m_arch.load(path)
    assert loaded.info["stripped_prefix"] == "module."
    assert "default afnet_m config" in loaded.info["config_source"]
    args = example(loaded.spec)
    torch.testing.assert_close(outputs(loaded, args)[0], model(*args), rtol=0, atol=0)
    # a non-default model without metadata: the mismatch is reported key by key
    small = tmp_path / "small.pth"
    torch.save(trained_like("afnet_m").model.state_dict(), small)
    with pytest.raises(CheckpointError, match="wrong shape.*default afnet_m config"):
        afnet_m_arch.load(small)


class _Payload:
    """Unpickling this would create a marker file: proof that pickled code ran."""

    marker = None

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickled_code_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.marker = str(marker)
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": trained_like("famnet").model.state_dict(), "x": payload}, path)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        famnet_arch.load(path)
    assert not marker.exists()


def test_truncated_safetensors(tmp_path):
    path = famnet_arch.save(trained_like("famnet"), tmp_path / "m.safetensors")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable safetensors file") as err:
        famnet_arch.load(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("arch", sorted(CASES))
def test_demo_is_the_fitted_asset_with_its_card(arch):
    module, _ = CASES[arch]
    demo = module.build_demo()
    card = demo.info["demo_card"]
    assert demo.info["trained"] is True and card["arch"] == arch
    assert card["held_out"]["samples"] > 0 and Path(demo.info["checkpoint"]).name == card["file"]
    assert json.loads(json.dumps(demo.info["config"])) == card["config"]


@pytest.mark.parametrize("arch", sorted(CASES))
def test_without_the_asset_the_demo_is_seeded_and_labelled_untrained(arch, tmp_path):
    module, _ = CASES[arch]
    a, b = module.build_demo(tmp_path / "absent.safetensors"), module.build_seeded(0)
    assert a.info["trained"] is False and a.info["seed"] == 0
    assert a.info["config"]["variant"] == a.spec.variant
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(x, y), name
    other = module.build_seeded(1, CASES[arch][1])
    assert other.spec.inputs[0].shape[-1] == 32
