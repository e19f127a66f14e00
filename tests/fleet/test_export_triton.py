"""`edge-export triton`: config.pbtxt checked against Triton's own ModelConfig protobuf, the
ONNX model batching as the config promises, and the Jetson path picking this device's engine."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edge.bundle import Bundle, write_manifest
from edge.cli.export import main as export_main
from edge.errors import EdgeBuildError, IncompatibleEngineError

pytestmark = pytest.mark.ort
pb = pytest.importorskip("tritonclient.grpc.model_config_pb2")
text_format = pytest.importorskip("google.protobuf.text_format")


def read_config(path):
    # Parse raises on any field or enum value Triton's ModelConfig does not define.
    return text_format.Parse(path.read_text(), pb.ModelConfig())


def test_onnx_repository_batches_as_its_config_says(famnet_bundle, famnet_feeds, tmp_path):
    repo = tmp_path / "repo"
    args = ["triton", "--bundle", str(famnet_bundle), "--out", str(repo), "--instances", "2"]
    assert export_main(args + ["--max-batch", "4", "--queue-delay-us", "500"]) == 0
    config = read_config(repo / "famnet" / "config.pbtxt")
    assert config.name == "famnet" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 4
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    assert [(g.count, g.kind) for g in config.instance_group] == [
        (2, pb.ModelInstanceGroup.KIND_AUTO)
    ]
    spec = Bundle.load(famnet_bundle).spec
    assert [(i.name, list(i.dims), i.data_type) for i in config.input] == [
        (t.name, list(t.shape[1:]), pb.TYPE_FP32) for t in spec.inputs
    ]
    assert [(o.name, list(o.dims)) for o in config.output] == [("logits", [5]), ("au_logits", [12])]

    from edge.runtime.ort import OrtRunner

    with OrtRunner(repo / "famnet" / "1" / "model.onnx") as runner:
        whole = runner.infer(famnet_feeds)
        for i in range(4):
            one = runner.infer({k: v[i : i + 1] for k, v in famnet_feeds.items()})
            for name in ("logits", "au_logits"):
                np.testing.assert_allclose(whole[name][i : i + 1], one[name], atol=1e-4)


def fixed_copy(famnet_bundle, root):
    """The bundle as a fixed-batch (batch 1) export declares itself."""
    shutil.copytree(famnet_bundle, root)
    manifest = json.loads((root / "manifest.json").read_text())
    for tensor in manifest["model"]["spec"]["inputs"] + manifest["model"]["spec"]["outputs"]:
        tensor["shape"][0] = 1
    write_manifest(root, manifest)
    return root


def test_fixed_batch_bundle_needs_max_batch_0(famnet_bundle, tmp_path, capsys):
    fixed = fixed_copy(famnet_bundle, tmp_path / "fixed")
    repo = tmp_path / "repo"
    assert export_main(["triton", "--bundle", str(fixed), "--out", str(repo)]) == 1
    err = capsys.readouterr().err
    assert "--dynamic-batch" in err and "--max-batch 0" in err and err.count("\n") == 1
    assert not repo.exists() or not any(repo.iterdir())

    args = ["triton", "--bundle", str(fixed), "--out", str(repo), "--max-batch", "0"]
    assert export_main(args + ["--model-name", "mer_fixed", "--instance-kind", "cpu"]) == 0
    config = read_config(repo / "mer_fixed" / "config.pbtxt")
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert list(config.input[0].dims)[0] == 1
    assert config.instance_group[0].kind == pb.ModelInstanceGroup.KIND_CPU


def test_usage_errors_and_foreign_directory(famnet_bundle, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        export_main(["triton", "--bundle", str(famnet_bundle), "--out", "x", "--instances", "0"])
    assert exc.value.code == 2
    foreign = tmp_path / "repo" / "famnet"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    assert (
        export_main(["triton", "--bundle", str(famnet_bundle), "--out", str(tmp_path / "repo")])
        == 1
    )
    assert "config.pbtxt" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "mine"


def test_jetson_exports_the_engine_built_for_this_device(famnet_bundle, tmp_path):
    from edge._trtcompat import caps_from_module
    from edge.engine import engine_file, engine_key
    from edge.engine.build import record_engine
    from edge.fleet.repository import RepositoryOptions, write_repository
    from tests.trt.conftest import ORIN
    from tests.trt.fake_tensorrt import make_fake

    root = fixed_copy(famnet_bundle, tmp_path / "bundle")
    trt = make_fake("10.3")
    key = engine_key(ORIN, caps_from_module(trt).version_text, "fp32")
    entry = {"file": engine_file(key), "precision": "fp32", "key": key.to_dict()}
    record_engine(Bundle.load(root), entry, {entry["file"]: b"plan bytes for orin"})

    repo = tmp_path / "repo"
    batched = RepositoryOptions(model_name="famnet", max_batch=8)
    with pytest.raises(EdgeBuildError, match="fixed batch.*--max-batch 0"):
        write_repository(Bundle.load(root), repo, batched, jetson=True, trt=trt, device=ORIN)
    options = RepositoryOptions(model_name="famnet", max_batch=0)
    target = write_repository(Bundle.load(root), repo, options, jetson=True, trt=trt, device=ORIN)
    assert (target / "1" / "model.plan").read_bytes() == b"plan bytes for orin"
    config = read_config(target / "config.pbtxt")
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 0
    assert list(config.input[0].dims) == [1, 3, 112, 112]
    assert config.instance_group[0].kind == pb.ModelInstanceGroup.KIND_GPU

    xavier = ORIN.__class__(
        model="Jetson Xavier NX", l4t="35.4.1", jetpack="5.1.2", compute_capability="7.2"
    )
    with pytest.raises(IncompatibleEngineError, match="edge.cli.engine"):
        write_repository(Bundle.load(root), repo, options, jetson=True, trt=trt, device=xavier)
