"""The specs and the region mask are device-side: they import and work with numpy only."""

from __future__ import annotations

from tests.blocking import run_blocked

HOST_STACK = ("torch", "onnx", "onnxruntime", "safetensors", "tensorrt", "cuda", "pandas")


def test_specs_and_region_mask_need_no_host_stack():
    code = (
        "from edge.face_regions import region_mask\n"
        "from edge.models.afnet_m_spec import AFNetMConfig, afnet_m_spec\n"
        "from edge.models.famnet_spec import FAMNetConfig, famnet_spec\n"
        "import edge.models.loaded\n"
        "from edge.spec import ModelSpec\n"
        "spec = famnet_spec(FAMNetConfig())\n"
        "assert ModelSpec.from_dict(spec.to_dict()) == spec\n"
        "spec = afnet_m_spec(AFNetMConfig(mask_mode='input'))\n"
        "assert ModelSpec.from_dict(spec.to_dict()) == spec\n"
        "print(region_mask((112, 112)).shape)\n"
    )
    proc = run_blocked(code, HOST_STACK)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(112, 112)"


def test_architecture_without_torch_names_the_extra():
    code = (
        "from edge.models import architecture\n"
        "from edge.errors import MissingDependencyError\n"
        "for name in ('afnet_m', 'famnet'):\n"
        "    try:\n        architecture(name)\n"
        "    except MissingDependencyError as e:\n        print(name, 'torch==2.13.0' in str(e))\n"
    )
    proc = run_blocked(code, ("torch",))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["afnet_m", "True", "famnet", "True"]
