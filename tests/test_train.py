"""`python -m calib.train`: a CPU smoke run of each recipe's code path, and its usage errors."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from calib.train import main  # noqa: E402

pytestmark = pytest.mark.torch

#: 12 clips over 6 pseudo-subjects, of which s04 and s05 are held out.
SMOKE = ["--samples", "12", "--subjects", "6", "--epochs", "1", "--workers", "1", "--device", "cpu"]


@pytest.mark.parametrize("arch", ["mmnet", "afnet_m"])
def test_cpu_smoke_run_writes_a_checkpoint_that_loads_strictly_and_its_card(arch, tmp_path, capsys):
    from edge.models import architecture

    out = tmp_path / f"{arch}.safetensors"
    assert main(["--arch", arch, "--out", str(out), *SMOKE]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["subjects"] == ["s04", "s05"] and 0 < printed["samples"] < 12
    loaded = architecture(arch).load(out)  # the strict loader of that architecture
    assert loaded.spec.arch == arch
    assert all(v.dtype in (torch.float16, torch.int64) for v in _tensors(out).values())
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["arch"] == arch and card["file"] == out.name
    assert card["held_out"]["samples"] + card["train_samples"] == 12
    assert card["training"]["epochs_run"] == 1 and card["training"]["hardware"].startswith("CPU")
    assert card["recipe_settings"]["subjects"] == 6
    assert set(card["held_out"]["decisions_kept_under_noise"]) == {"0.25", "1.0"}
    assert not list(tmp_path.glob("*.partial*"))


def _tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--samples", "5"], "held-out clips"),
        (["--subjects", "2"], "--subjects must be >= 3"),
        (["--out", "model.pt"], "must be a .safetensors file"),
    ],
)
def test_usage_errors_exit_2_before_any_work(args, message, tmp_path, capsys):
    argv = ["--arch", "mmnet", "--out", str(tmp_path / "m.safetensors"), *args]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--arch", "famnet", "--device", "cuda", "--out", str(tmp_path / "f.safetensors")])
    assert exit_.value.code == 2 and "PyTorch sees no CUDA device" in capsys.readouterr().err
