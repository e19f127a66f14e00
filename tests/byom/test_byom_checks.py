"""Spec vs model checks through the real `edge-build` CLI: each mismatch exits 2 before any work,
names the field or input and the fix, and writes nothing."""

from __future__ import annotations

import pytest

from quantize.cli.build import main as build_main
from tests.byom.tiny import spec_dict, tiny_onnx, write_spec

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytestmark = [pytest.mark.ort]


def _run(tmp_path, model, spec, *extra):
    """edge-build into tmp_path/work/out; returns (exit code, stderr, files left in work/)."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    args = ["--model", str(model), "--out", str(work / "out"), "--quiet", *extra]
    if spec is not None:
        args += ["--spec", str(spec)]
    return build_main(args), sorted(p.name for p in work.iterdir())


def _edit(path, change):
    model = onnx.load(str(path))
    change(model)
    onnx.save(model, str(path))
    return path


def _dim(model, input_index, axis, *, param=None, value=None):
    dim = model.graph.input[input_index].type.tensor_type.shape.dim[axis]
    if param is not None:
        dim.dim_param = param
    else:
        dim.dim_value = value


def _custom_op(model):
    from onnx import helper

    node = helper.make_node("Mystery", ["logits_raw"], ["logits"], name="mystery",
                            domain="com.example")  # fmt: skip
    model.graph.node[-1].output[0] = "logits_raw"
    model.graph.node.append(node)
    model.opset_import.append(helper.make_opsetid("com.example", 1))


CASES = {
    "input name": (
        {},
        lambda s: s["inputs"][0].update(name="first"),
        "inputs[0].name 'first': the model has no such input (its inputs: onset, apex); "
        "use the model's name in the spec",
    ),
    "undeclared output": (
        {},
        lambda s: s["outputs"].update(logits="scores"),
        "outputs[0].name 'scores': the model has no such output",
    ),
    "static size": (
        {},
        lambda s: s["preprocessing"].update(size=64),
        "inputs[0] 'onset' is [1, 3, 32, 32] in the model, the spec makes it [1, 3, 64, 64] "
        "(axis 2: 32 vs 64); set preprocessing.size to the model's input side",
    ),
    "class count": (
        {},
        lambda s: s.update(classes=["negative", "positive", "surprise"]),
        "outputs[0] 'logits' is [1, 5] in the model, the spec makes it [1, 3] (axis 1: 5 vs 3); "
        "list one class name per logit in classes",
    ),
    "rank": (
        {},
        lambda s: s["inputs"][0].update(source="depth:apex"),
        None,  # depth is 1 channel: a size error on axis 1
    ),
    "unknown frame role": (
        {},
        lambda s: s["inputs"][1].update(source="peak"),
        "inputs[1].source: unknown frame role 'peak'; one of: onset, apex",
    ),
    "spec typo": (
        {},
        lambda s: s["preprocessing"].update(stdev=[1, 1, 1]),
        "preprocessing.stdev: unknown key; did you mean 'std'?",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_spec_mismatch_exits_2_and_writes_nothing(case, tmp_path, capsys):
    _, change, message = CASES[case]
    model = tiny_onnx(tmp_path / "m.onnx")
    data = spec_dict()
    change(data)
    spec = write_spec(tmp_path / "m.yaml", data)
    code, left = _run(tmp_path, model, spec)
    err = capsys.readouterr().err
    assert code == 2, err
    assert left == []
    assert "edge-build: error:" in err and "m.yaml" in err
    if message:
        assert message in err
    if case == "rank":
        assert "inputs[0] 'onset' is [1, 3, 32, 32] in the model" in err


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda m: _dim(m, 0, 2, param="height"),
            "inputs[0] 'onset' axis 2 is dynamic (height) in the model; only the batch axis (0) "
            "may be: export it with a fixed size [1, 3, 32, 32]",
        ),
        (
            lambda m: m.graph.input[1].type.tensor_type.__setattr__("elem_type", 11),
            "inputs[1] 'apex' is float64 in the model; mer-edge feeds and reads float32",
        ),
        (
            lambda m: _dim(m, 0, 0, value=4),
            "inputs[0] 'onset' has a fixed batch of 4; export it with batch 1 or a dynamic batch",
        ),
        (
            lambda m: m.graph.input[0].type.tensor_type.shape.dim.pop(),
            "inputs[0] 'onset' has rank 3 [1, 3, 32] in the model, the spec makes it rank 4",
        ),
        (
            _custom_op,
            "TensorRT 10 would reject it: error: node 'mystery' (Mystery): operator of "
            "domain 'com.example' needs a TensorRT plugin",
        ),
    ],
    ids=["dynamic-height", "dtype", "batch-4", "rank", "lint"],
)
def test_model_file_problems_exit_2_and_write_nothing(change, message, tmp_path, capsys):
    model = _edit(tiny_onnx(tmp_path / "m.onnx"), change)
    spec = write_spec(tmp_path / "m.yaml", spec_dict())
    code, left = _run(tmp_path, model, spec)
    err = capsys.readouterr().err
    assert (code, left) == (2, []), err
    assert message in err


def test_opsets_newer_than_the_target_are_refused_older_ones_converted(tmp_path, capsys):
    spec = write_spec(tmp_path / "m.yaml", spec_dict())
    newer = tiny_onnx(tmp_path / "m18.onnx", opset=18)
    code, left = _run(tmp_path, newer, spec, "--target-trt", "10")
    err = capsys.readouterr().err
    assert (code, left) == (2, [])
    assert "opset 18 is newer than opset 17, which mer-edge builds for TensorRT 10" in err
    assert "re-export the model with opset_version=17" in err
    # TensorRT 8.5 gets opset 16: even opset 17 is too new there
    code, _ = _run(tmp_path, tiny_onnx(tmp_path / "m17.onnx"), spec, "--target-trt", "8.5")
    assert code == 2 and "opset 17 is newer than opset 16" in capsys.readouterr().err
    older = tiny_onnx(tmp_path / "m11.onnx", opset=11)
    code, left = _run(tmp_path, older, spec, "--lint-only")
    assert (code, left) == (0, []), capsys.readouterr().err


def test_usage_errors_of_the_options(tmp_path, capsys):
    model = tiny_onnx(tmp_path / "m.onnx")
    spec = write_spec(tmp_path / "m.yaml", spec_dict())
    code, left = _run(tmp_path, model, None)
    assert (code, left) == (2, []) and "--model needs --spec" in capsys.readouterr().err
    assert build_main(["--spec", str(spec), "--out", str(tmp_path / "o")]) == 2
    assert "--spec describes a --model file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        build_main(["--arch", "mmnet", "--model", str(model), "--spec", str(spec)])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    code, left = _run(tmp_path, model, spec, "--checkpoint", str(model))
    assert (code, left) == (2, []) and "drop --checkpoint" in capsys.readouterr().err
    code, left = _run(tmp_path, tmp_path / "absent.onnx", spec)
    assert (code, left) == (2, []) and "absent.onnx: no such model file" in capsys.readouterr().err
    (tmp_path / "m.tflite").write_bytes(b"x")
    code, left = _run(tmp_path, tmp_path / "m.tflite", spec)
    assert code == 2 and "an ONNX file (.onnx) or a torch.export program" in capsys.readouterr().err
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    code, left = _run(tmp_path, tmp_path / "junk.onnx", spec)
    assert (code, left) == (
        2,
        [],
    ) and "junk.onnx: not a valid ONNX model" in capsys.readouterr().err
    code, left = _run(tmp_path, model, spec, "--dynamic-batch")
    assert (code, left) == (2, [])
    assert "--dynamic-batch, but input 'onset' has a fixed batch" in capsys.readouterr().err


def test_the_summary_names_small_networks_macs_in_mmac():
    from quantize.cli.build import _macs_text

    assert _macs_text(0.0002) == "0.20 MMAC" and _macs_text(2.314) == "2.31 GMAC"
