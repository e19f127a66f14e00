"""The shipped STSTNet-style example: its ONNX file agrees with its spec file and with the
training code (the PyTorch network with the weights it was exported from), and the trainer's
example path writes all three files and a card measured on the ONNX file itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.preprocess import prepare_inputs

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from calib.examples import ststnet  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.ort]


def _dims(value_info):
    return tuple(d.dim_value if d.HasField("dim_value") else d.dim_param
                 for d in value_info.type.tensor_type.shape.dim)  # fmt: skip


def test_shipped_files_exist_and_are_small():
    for path in (ststnet.ONNX_FILE, ststnet.SPEC_FILE, ststnet.CARD_FILE, ststnet.WEIGHTS_FILE):
        assert path.is_file(), path
        assert path.stat().st_size < 64_000, path


def test_shipped_onnx_matches_its_spec_file():
    from quantize.spec_file import load_spec_file

    spec = load_spec_file(ststnet.SPEC_FILE).spec  # the file a user passes to edge-build --spec
    assert spec == ststnet.spec()
    model = onnx.load(str(ststnet.ONNX_FILE))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [16]
    inputs = {i.name: _dims(i) for i in model.graph.input}
    outputs = {o.name: _dims(o) for o in model.graph.output}
    assert inputs == {t.name: tuple(t.shape) for t in spec.inputs} == {"flow": (1, 3, 28, 28)}
    assert outputs == {t.name: tuple(t.shape) for t in spec.outputs} == {"logits": (1, 3)}
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in model.graph.input)
    prep = spec.preprocessing
    assert prep.feeds == (("flow", "flow:image"),) and prep.frames == ("onset", "apex")
    assert prep.flow == ststnet.FLOW and prep.storage_size == (112, 112)


def _reference_feeds(spec):
    from calib.faces import reference_samples

    prep = spec.preprocessing
    return [
        prepare_inputs(spec, frames)
        for _, frames in reference_samples(prep.frames, prep.storage_size)
    ]


def test_shipped_onnx_computes_what_the_training_code_computes():
    spec = ststnet.spec()
    model = ststnet.load_model()
    session = ort.InferenceSession(str(ststnet.ONNX_FILE), providers=["CPUExecutionProvider"])
    feeds = _reference_feeds(spec)
    rng = np.random.default_rng(0)
    # the real faces' flow, plus flow-like fields over the whole clipped range
    feeds += [{"flow": rng.uniform(-4, 4, (1, 3, 28, 28)).astype(np.float32)} for _ in range(4)]
    for feed in feeds:
        with torch.no_grad():
            expected = model(torch.from_numpy(feed["flow"])).numpy()
        got = session.run(["logits"], feed)[0]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_card_reports_held_out_figures_measured_on_the_onnx_file():
    card = json.loads(ststnet.CARD_FILE.read_text())
    assert card["arch"] == "ststnet" and card["file"] == ststnet.ONNX_FILE.name
    assert "onnxruntime" in card["measured_on"].lower() or "ONNX" in card["measured_on"]
    from calib.model_card import split_indices
    from calib.recipes import recipe_for

    recipe = recipe_for("ststnet")
    assert card["recipe_settings"] == json.loads(json.dumps(recipe.to_dict()))
    held = card["held_out"]
    assert held["subjects"] == list(recipe.held_out)
    assert held["samples"] == len(split_indices(recipe, ststnet.CLASSES)[1]) == 372
    assert held["accuracy"] > 1.5 / 3 and held["uar"] > 1.5 / 3  # well above chance (1/3)
    assert all(v is not None for v in held["decisions_kept_under_noise"].values())


def test_trainer_writes_the_example_and_a_card_measured_on_it(tmp_path, capsys):
    from calib.train import main

    out = tmp_path / "ststnet.onnx"
    smoke = ["--samples", "12", "--subjects", "6", "--epochs", "1", "--workers", "1"]
    assert main(["--arch", "ststnet", "--out", str(out), "--device", "cpu", *smoke]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["card"] == str(tmp_path / "ststnet.card.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ststnet.card.json", "ststnet.onnx", "ststnet.safetensors", "ststnet.spec.yaml",
    ]  # fmt: skip
    card = json.loads((tmp_path / "ststnet.card.json").read_text())
    assert card["held_out"]["samples"] + card["train_samples"] == 12
    assert card["storage"].startswith("ONNX opset 16")
    kept = card["held_out"]["decisions_kept_under_noise"]
    assert set(kept) == {"0.25", "1.0"} and all(0.0 <= v <= 1.0 for v in kept.values())
    # the exported file computes what the trained network computes
    model = ststnet.load_model(tmp_path / "ststnet.safetensors")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    feed = _reference_feeds(ststnet.spec())[0]
    with torch.no_grad():
        expected = model(torch.from_numpy(feed["flow"])).numpy()
    np.testing.assert_allclose(session.run(["logits"], feed)[0], expected, rtol=1e-4, atol=1e-4)


def test_the_example_must_be_written_as_onnx(tmp_path, capsys):
    from calib.train import main

    with pytest.raises(SystemExit) as exit_:
        main(["--arch", "ststnet", "--out", str(tmp_path / "s.safetensors")])
    assert exit_.value.code == 2 and "written as an .onnx file" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
