"""`.pt2` torch.export programs: loaded without running pickled code, built with PyTorch parity,
and the torch backend of a bring-your-own bundle (the .pt2 again, or a clear refusal for ONNX)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from edge.errors import CheckpointError, EdgeBuildError
from tests.byom.tiny import spec_dict, tiny_onnx, write_spec

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytestmark = [pytest.mark.torch, pytest.mark.ort]


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, onset, apex):
        return self.fc(torch.relu(self.conv(apex - onset)).mean((2, 3)))


def _program(path):
    torch.manual_seed(0)
    example = (torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32))
    torch.export.save(torch.export.export(Tiny().eval(), example), str(path))
    return path


class Payload:
    """Pickles to a call that creates `marker`: what a tampered archive member would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def _tamper(src, dst, member_suffix, payload: bytes):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith(member_suffix):
                data = payload
            zout.writestr(item, data)
    return dst


def test_a_tampered_member_is_refused_without_running_it(tmp_path):
    from edge.models.exported import load_exported_program

    good = _program(tmp_path / "good.pt2")
    assert load_exported_program(good).graph_signature.user_inputs == ("onset", "apex")
    marker = tmp_path / "ran"
    buffer = io.BytesIO()
    torch.save(Payload(marker), buffer)
    # the payload is live: an unrestricted load runs it
    torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    assert marker.read_text() == "ran"
    marker.unlink()
    # torch.export.load reads sample inputs with weights_only=True and, when that fails, again
    # with weights_only=False (torch/_export/serde/serialize.py): the path a tampered file takes
    evil = _tamper(good, tmp_path / "evil.pt2", "data/sample_inputs/model.pt", buffer.getvalue())
    with pytest.raises(CheckpointError, match="evil.pt2: cannot be loaded .* without running"):
        load_exported_program(evil)
    assert not marker.exists()
    # through the real CLI: a usage error before any work, nothing written, nothing run
    from quantize.cli.build import main as build_main

    spec = write_spec(tmp_path / "tiny.yaml", spec_dict())
    out = tmp_path / "work" / "out"
    assert build_main(["--model", str(evil), "--spec", str(spec), "--out", str(out),
                       "--quiet"]) == 2  # fmt: skip
    assert not marker.exists() and not (tmp_path / "work").exists()


def test_archives_with_code_members_or_the_old_format_are_refused(tmp_path):
    from edge.models.exported import load_exported_program

    good = _program(tmp_path / "good.pt2")
    with zipfile.ZipFile(good) as zin:
        root = zin.namelist()[0].split("/")[0]
    custom = tmp_path / "custom.pt2"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(custom, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, zin.read(item.filename))
        zout.writestr(f"{root}/data/constants/custom_obj_0", b"\x80\x04N.")
    with pytest.raises(CheckpointError, match="load by running code .*custom_obj_0"):
        load_exported_program(custom)
    old = tmp_path / "old.pt2"
    with zipfile.ZipFile(old, "w") as zout:
        zout.writestr("version", "1")
    with pytest.raises(CheckpointError, match="older archives are refused"):
        load_exported_program(old)
    (tmp_path / "junk.pt2").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a torch.export archive"):
        load_exported_program(tmp_path / "junk.pt2")


def test_pt2_builds_with_pytorch_parity_and_runs_on_the_torch_backend(tmp_path, capsys):
    from edge.bundle import Bundle
    from edge.cli.run import main as run_main
    from quantize.cli.build import main as build_main

    program = _program(tmp_path / "tiny.pt2")
    spec = write_spec(tmp_path / "tiny.json", spec_dict())
    out = tmp_path / "bundle"
    small = ["--val-samples", "10", "--hard-val-samples", "0", "--calib-samples", "0"]
    assert build_main(["--model", str(program), "--spec", str(spec), "--out", str(out),
                       "--quiet", *small]) == 0  # fmt: skip
    summary = capsys.readouterr().out
    assert "tiny.pt2 sha256" in summary and "vs PyTorch" in summary
    manifest = Bundle.load(out).manifest
    model = manifest["model"]
    assert model["model_format"] == "pt2" and model["model_file"] == "tiny.pt2"
    assert (
        model["spec_file"] == "tiny.json" and model["spec_file_content"]["model"] == "tiny-motion"
    )
    assert model["trained"] is True and manifest["config"]["arch"] is None
    assert "torch" in manifest["parity"]["export"]["reference"]
    assert manifest["parity"]["final"]["max_abs_error"] < 1e-4

    cv2 = pytest.importorskip("cv2")
    from calib.faces import micro_expression_pair

    onset, apex = micro_expression_pair("astronaut", size=64)
    cv2.imwrite(str(tmp_path / "onset.png"), onset[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "apex.png"), apex[:, :, ::-1])
    pair = ["--onset", str(tmp_path / "onset.png"), "--apex", str(tmp_path / "apex.png"), "--json"]
    assert run_main(["--bundle", str(out), *pair]) == 0
    ort_scores = json.loads(capsys.readouterr().out)["scores"]
    assert run_main(["--bundle", str(out), "--backend", "torch", *pair]) == 1
    assert "pass --checkpoint tiny.pt2 for the torch backend" in capsys.readouterr().err
    assert run_main(["--bundle", str(out), "--backend", "torch", "--checkpoint", str(program),
                     *pair]) == 0  # fmt: skip
    torch_scores = json.loads(capsys.readouterr().out)["scores"]
    assert torch_scores == pytest.approx(ort_scores, abs=1e-4)
    other = _program(tmp_path / "other.pt2")
    torch.export.save(torch.export.export(Tiny(), (torch.ones(1, 3, 32, 32),) * 2), str(other))
    assert run_main(["--bundle", str(out), "--backend", "torch", "--checkpoint", str(other),
                     *pair]) == 1  # fmt: skip
    assert "differs from the program this bundle was built from" in capsys.readouterr().err


def test_the_torch_backend_of_an_onnx_bundle_is_a_clear_error(tmp_path):
    from edge.bundle import Bundle
    from edge.runtime import make_runner
    from quantize.cli.build import main as build_main

    model = tiny_onnx(tmp_path / "tiny.onnx")
    spec = write_spec(tmp_path / "tiny.yaml", spec_dict())
    out = tmp_path / "bundle"
    assert build_main(["--model", str(model), "--spec", str(spec), "--out", str(out), "--quiet",
                       "--val-samples", "0", "--hard-val-samples", "0"]) == 0  # fmt: skip
    runner = make_runner(Bundle.load(out), "torch")
    with pytest.raises(EdgeBuildError, match="no PyTorch model to run: use --backend ort"):
        runner.__enter__()


def test_pt2_inputs_must_be_listed_in_the_programs_order(tmp_path, capsys):
    from quantize.cli.build import main as build_main

    program = _program(tmp_path / "tiny.pt2")
    data = spec_dict()
    data["inputs"].reverse()
    spec = write_spec(tmp_path / "tiny.yaml", data)
    assert build_main(["--model", str(program), "--spec", str(spec),
                       "--out", str(tmp_path / "o"), "--quiet"]) == 2  # fmt: skip
    assert "takes its inputs in the order ['onset', 'apex']" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
