"""Spec files: what they parse into, and a clear error (file, field path, fix) for every
mistake, unknown keys included."""

from __future__ import annotations

import copy

import pytest

from edge.spec import FlowSettings
from quantize.spec_file import SpecFileError, load_spec_file, parse_spec
from tests.byom.tiny import CLASSES, spec_dict, write_spec

yaml = pytest.importorskip("yaml")


def _parse(data):
    return parse_spec(data, "x.yaml")


def _error(data) -> str:
    with pytest.raises(SpecFileError) as info:
        _parse(data)
    return str(info.value)


def test_yaml_and_json_parse_into_the_same_model_spec(tmp_path):
    data = spec_dict(size=32)
    from_yaml = load_spec_file(write_spec(tmp_path / "m.yaml", data))
    from_json = load_spec_file(write_spec(tmp_path / "m.json", data))
    assert from_yaml.spec == from_json.spec
    spec = from_yaml.spec
    assert spec.arch == "tiny-motion" and spec.variant == "custom"
    assert spec.class_names == tuple(CLASSES) and spec.protocol == "CASME II 5-class"
    assert [(t.name, t.shape, t.dtype) for t in spec.inputs] == [
        ("onset", (1, 3, 32, 32), "float32"), ("apex", (1, 3, 32, 32), "float32")]  # fmt: skip
    assert [(t.name, t.shape) for t in spec.outputs] == [("logits", (1, 5))]
    prep = spec.preprocessing
    assert prep.size == (32, 32) and prep.scale == pytest.approx(1 / 255)
    assert prep.mean == (0.5, 0.5, 0.5) and prep.std == (0.25, 0.25, 0.25)
    assert prep.frames == ("onset", "apex") and prep.feeds == (("onset", "onset"), ("apex", "apex"))
    assert prep.flow is None and len(from_yaml.sha256) == 64


def test_flow_roles_read_onset_and_apex_and_carry_the_flow_settings():
    data = spec_dict(size=28, classes=["negative", "positive", "surprise"])
    data["inputs"] = [{"name": "flow", "source": "flow:image"}]
    data["flow"] = {"method": "farneback", "size": 112, "scale": 0.5, "clip": 4,
                    "strain_scale": 2, "strain_clip": 1}  # fmt: skip
    spec, _ = _parse(data)
    prep = spec.preprocessing
    assert prep.frames == ("onset", "apex") and prep.feeds == (("flow", "flow:image"),)
    assert prep.flow == FlowSettings("farneback", (112, 112), 0.5, 4.0, 2.0, 1.0)
    assert spec.inputs[0].shape == (1, 3, 28, 28)
    data["inputs"] = [{"name": n, "source": f"flow:{n}"} for n in ("u", "v", "strain")]
    spec, _ = _parse(data)
    assert [t.shape for t in spec.inputs] == [(1, 1, 28, 28)] * 3


def test_clip_depth_and_au_outputs():
    data = spec_dict(size=64)
    data["clip_length"] = 4
    data["inputs"] = [{"name": "apex", "source": "apex"}, {"name": "clip", "source": "clip"},
                      {"name": "depth", "source": "depth:apex"}]  # fmt: skip
    data["outputs"] = {"logits": "logits", "au_logits": "aus", "au_names": ["AU1", "AU12"]}
    data["precision"] = {"hints": ["/head/"], "keep_out_of_int8": ["stem"]}
    spec, keep_out = _parse(data)
    assert spec.preprocessing.frames == ("apex", "clip:0", "clip:1", "clip:2", "clip:3",
                                         "depth:apex")  # fmt: skip
    assert [t.shape for t in spec.inputs] == [(1, 3, 64, 64), (1, 3, 4, 64, 64), (1, 1, 64, 64)]
    assert spec.output_names() == ("logits", "aus") and spec.au_names == ("AU1", "AU12")
    assert spec.outputs[1].shape == (1, 2)
    assert spec.precision_hints == ("/head/",) and keep_out == ("stem",)


def test_preprocessing_given_per_input_must_agree():
    data = spec_dict()
    data["inputs"][1]["size"] = 32  # the same as the block: fine
    _parse(data)
    data["inputs"][1]["size"] = [64, 64]
    message = _error(data)
    assert "x.yaml: inputs[1].size: (64, 64) differs from preprocessing.size = (32, 32)" in message
    assert "one preprocessing" in message


def _mutate(path: str, value):
    data = spec_dict()
    target = data
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if value is KeyError:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return data


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("modle", "x", "x.yaml: modle: unknown key; did you mean 'model'?"),
        ("preprocessing.sclae", 1, "preprocessing.sclae: unknown key; did you mean 'scale'?"),
        ("inputs.0.role", "onset", "inputs[0].role: unknown key; did you mean 'source'?"),
        ("outputs.logit", "y", "outputs.logit: unknown key; did you mean 'logits'?"),
        (
            "inputs.0.source",
            "onsett",
            "inputs[0].source: unknown frame role 'onsett'; one of: onset",
        ),
        ("inputs.0.source", "flow:w", "unknown frame role 'flow:w'"),
        ("inputs.0.source", "clip:x", "unknown frame role 'clip:x'"),
        ("model", KeyError, "x.yaml: model: missing (required)"),
        ("model", "my model", "model: 'my model': use letters, digits"),
        ("classes", ["a"], "classes: expected at least 2 names"),
        ("classes", ["a", "a"], "classes: duplicate names ['a']"),
        ("inputs", [], "inputs: expected a non-empty list"),
        ("inputs.1.name", "onset", "inputs[1].name: 'onset' is declared twice"),
        ("preprocessing.size", 4, "preprocessing.size: each side must be >= 8 px"),
        ("preprocessing.size", KeyError, "preprocessing.size: missing"),
        ("preprocessing.color", "YUV", "preprocessing.color: 'YUV' is not one of RGB, BGR"),
        ("preprocessing.layout", "NHWC", "put a Transpose at the model's input"),
        ("preprocessing.std", [1, 0, 1], "preprocessing.std[1]: must be > 0"),
        ("preprocessing.mean", [1, 2], "preprocessing.mean: expected 3 per-channel numbers"),
        ("preprocessing.scale", "a lot", "preprocessing.scale: expected a finite number"),
        ("inputs.0.dtype", "uint8", "inputs[0].dtype: 'uint8': mer-edge feeds float32"),
        ("outputs", {"au_logits": "a"}, "outputs.logits: missing (required)"),
        ("outputs.au_logits", "aus", "outputs.au_names: missing: name the AU logits' columns"),
        ("outputs.au_names", ["AU1"], "outputs.au_names: given without outputs.au_logits"),
        ("flow", {"method": "dis", "size": 64}, "flow: given, but no input reads a flow:* source"),
        ("spec_version", 2, "spec_version: 2 is not supported"),
        ("inputs.0.source", "clip", "clip_length: missing: inputs[0].source reads 'clip'"),
    ],
)
def test_every_mistake_names_the_file_the_field_and_the_fix(path, value, message):
    assert message in _error(_mutate(path, value))


def test_flow_inputs_need_the_flow_block():
    data = spec_dict()
    data["inputs"] = [{"name": "flow", "source": "flow:image"}]
    assert "flow: missing: an input reads optical flow" in _error(data)
    data["flow"] = {"method": "dis"}
    assert "flow.size: missing" in _error(data)
    data["flow"] = {"method": "dis", "size": 64, "clip": -1}
    assert "flow.clip: must be >= 0" in _error(data)
    data["flow"] = {"method": "dis", "size": 64, "methd": "x"}
    assert "flow.methd: unknown key; did you mean 'method'?" in _error(data)


def test_clip_frame_outside_the_clip():
    data = spec_dict()
    data["clip_length"] = 3
    data["inputs"][0]["source"] = "clip:3"
    assert "'clip:3' is outside a clip of 3 frames" in _error(data)


def test_files_that_are_not_spec_files(tmp_path):
    with pytest.raises(SpecFileError, match="no such spec file"):
        load_spec_file(tmp_path / "absent.yaml")
    (tmp_path / "m.txt").write_text("model: x")
    with pytest.raises(SpecFileError, match="ends in .yaml, .yml or .json"):
        load_spec_file(tmp_path / "m.txt")
    (tmp_path / "bad.yaml").write_text("model: [unclosed")
    with pytest.raises(SpecFileError, match="bad.yaml: not valid YAML"):
        load_spec_file(tmp_path / "bad.yaml")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SpecFileError, match="bad.json: not valid JSON"):
        load_spec_file(tmp_path / "bad.json")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(SpecFileError, match="list.yaml: : expected a mapping|expected a mapping"):
        load_spec_file(tmp_path / "list.yaml")


def test_yaml_python_tags_are_not_executed(tmp_path):
    """safe_load: a tag naming a Python callable is a YAML error, never a call."""
    marker = tmp_path / "ran"
    data = copy.deepcopy(spec_dict())
    text = yaml.safe_dump(data) + (f"notes: !!python/object/apply:os.system ['touch {marker}']\n")
    path = tmp_path / "evil.yaml"
    path.write_text(text)
    with pytest.raises(SpecFileError, match="not valid YAML"):
        load_spec_file(path)
    assert not marker.exists()


def _registered_specs():
    from edge.models.afnet_m_spec import AFNetMConfig, afnet_m_spec
    from edge.models.famnet_spec import FAMNetConfig, famnet_spec
    from edge.models.mmnet_spec import VARIANTS, mmnet_spec

    return [mmnet_spec(VARIANTS["casme2-5"]), famnet_spec(FAMNetConfig()),
            afnet_m_spec(AFNetMConfig())]  # fmt: skip


@pytest.mark.parametrize("index", [0, 1, 2], ids=["mmnet", "famnet", "afnet_m"])
def test_a_registered_interface_written_as_a_spec_file_parses_back(index, tmp_path):
    """spec_file_dict is how a model's code writes the spec it ships; the registered
    architectures' interfaces (clip, depth, mask, AU outputs) round-trip through a file."""
    from quantize.spec_file import spec_file_dict

    spec = _registered_specs()[index]
    parsed = load_spec_file(write_spec(tmp_path / "s.yaml", spec_file_dict(spec))).spec
    assert [(t.name, t.shape) for t in parsed.inputs] == [(t.name, t.shape) for t in spec.inputs]
    assert parsed.outputs[0].shape == spec.outputs[0].shape
    assert [(t.name, t.shape) for t in parsed.outputs] == [(t.name, t.shape) for t in spec.outputs]
    assert parsed.class_names == spec.class_names and parsed.au_names == spec.au_names
    prep, want = parsed.preprocessing, spec.preprocessing
    assert prep.input_sources(parsed.input_names()) == want.input_sources(spec.input_names())
    assert prep.frames == want.frames
    for key in ("size", "color", "scale", "mean", "std", "depth_mean", "depth_std", "flow"):
        assert getattr(prep, key) == getattr(want, key), key
    assert parsed.precision_hints == spec.precision_hints


def test_a_flow_interface_round_trips():
    from quantize.spec_file import spec_file_dict
    from tests.byom.tiny import flow_spec_dict

    spec, _ = _parse(flow_spec_dict())
    again, _ = _parse(spec_file_dict(spec))
    assert again == spec
