"""The typed Manifest: it reads bundles written before it existed, writes them back unchanged,
carries per-precision quantization records and unknown fields, and is the only writer."""

from __future__ import annotations

import json
import shutil

import pytest

from edge.bundle import (
    FP32_FILE,
    MANIFEST_NAME,
    REDUCED_FILES,
    Bundle,
    Manifest,
    ModelEntry,
    model_file,
)
from edge.errors import BundleError
from tests.conftest import ROOT

#: manifest.json exactly as edge-build wrote it at commit a4f05cd, before the typed Manifest
OLD = ROOT / "tests" / "assets" / "manifest_a4f05cd.json"


def test_reads_a_bundle_written_before_the_typed_manifest():
    manifest = Manifest.read(OLD)
    raw = json.loads(OLD.read_text())
    assert manifest.schema_version == 1
    assert list(manifest.models) == ["fp32"]
    fp32 = manifest.models["fp32"]
    assert (fp32.file, fp32.precision) == (FP32_FILE, "fp32")
    assert fp32.details["nodes"] == raw["models"]["fp32"]["nodes"]
    assert fp32.tolerance is None and fp32.quantization is None
    assert manifest.target_tensorrt == "10" and manifest.trained is raw["model"]["trained"]
    assert manifest.section("parity") == raw["parity"]
    assert manifest.engines == [] and manifest.files == raw["files"]


def test_an_old_manifest_is_written_back_byte_for_byte(tmp_path):
    manifest = Manifest.read(OLD)
    assert json.dumps(manifest.to_dict()) == json.dumps(json.loads(OLD.read_text()))
    manifest.save(tmp_path)
    assert (tmp_path / MANIFEST_NAME).read_text() == OLD.read_text()


def test_per_precision_quantization_and_unknown_fields_survive(tmp_path):
    manifest = Manifest.read(OLD)
    int8 = ModelEntry(REDUCED_FILES["int8"], "int8", {"nodes": 120})
    int8.quantization = {"macs": {"int8_share": 0.93, "fp16_share": 0.05, "fp32_share": 0.02,
                                  "total_gmac": 1.2}, "kept": ["/conv_act/"]}  # fmt: skip
    manifest.models["int8"] = int8
    manifest.sections["from_a_newer_writer"] = {"anything": [1, 2]}
    manifest.save(tmp_path)
    again = Manifest.read(tmp_path / MANIFEST_NAME)
    assert again.models["int8"].quantization["macs"]["int8_share"] == 0.93
    assert again.models["int8"].details["nodes"] == 120
    assert again.section("from_a_newer_writer") == {"anything": [1, 2]}
    assert again.to_dict() == manifest.to_dict()


def test_write_hashes_every_file_and_the_bundle_verifies(tmp_path):
    (tmp_path / FP32_FILE).write_bytes(b"onnx")
    (tmp_path / "engines").mkdir()
    (tmp_path / "engines" / "x.plan").write_bytes(b"plan")
    manifest = Manifest(models={"fp32": ModelEntry(FP32_FILE, "fp32")})
    manifest.write(tmp_path)
    bundle = Bundle.load(tmp_path)
    assert sorted(bundle.info.files) == ["engines/x.plan", FP32_FILE]
    assert bundle.onnx_path("fp32") == tmp_path / FP32_FILE
    assert bundle.manifest == bundle.info.to_dict()
    (tmp_path / FP32_FILE).write_bytes(b"ONNX")
    with pytest.raises(BundleError, match="does not match its sha256"):
        Bundle.load(tmp_path)


def test_add_engine_replaces_the_same_key_only():
    manifest = Manifest()
    manifest.add_engine({"file": "engines/a/engine.fp32.plan", "build_s": 1})
    manifest.add_engine({"file": "engines/b/engine.fp32.plan", "build_s": 2})
    manifest.add_engine({"file": "engines/a/engine.fp32.plan", "build_s": 3})
    assert [(e["file"], e["build_s"]) for e in manifest.engines] == [
        ("engines/b/engine.fp32.plan", 2),
        ("engines/a/engine.fp32.plan", 3),
    ]


def test_file_names_live_in_the_bundle_module():
    assert model_file("fp32") == "model.fp32.onnx"
    assert model_file("int8") == "model.int8.qdq.onnx" and model_file("fp16") == "model.fp16.onnx"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(schema_version=2), "schema_version 2 is not supported"),
        (lambda d: d.pop("files"), "no 'files' table"),
        (lambda d: d["models"]["fp32"].pop("file"), "models\\['fp32'\\] names no file"),
        (lambda d: d.update(engines={"fp32": "plan"}), "'engines' must be a list"),
    ],
)
def test_bad_manifests_name_the_file_and_the_problem(tmp_path, edit, message):
    data = json.loads(OLD.read_text())
    edit(data)
    path = tmp_path / MANIFEST_NAME
    path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match=message) as info:
        Manifest.read(path)
    assert str(path) in str(info.value)


def test_unreadable_manifest(tmp_path):
    shutil.copy(OLD, tmp_path / MANIFEST_NAME)
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(BundleError, match="unreadable manifest"):
        Bundle.load(tmp_path)
