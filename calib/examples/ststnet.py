"""A tiny STSTNet-style optical-flow network: the shipped bring-your-own example.

STSTNet (Liong et al., "Shallow Triple Stream Three-dimensional CNN (STSTNet) for
Micro-expression Recognition", FG 2019, doi:10.1109/FG.2019.8756567) reads the horizontal and
vertical optical flow and the optical strain between onset and apex at 28x28, runs three shallow
convolutional streams, concatenates them, pools and classifies into the MEGC 2019 composite
classes negative / positive / surprise. Here each stream reads one field (u, v or strain):
a 3x3 convolution with `STREAM_WIDTH` filters, batch norm, ReLU and a 3x3 stride-3 max-pool
(28 -> 10), the streams concatenated, a 2x2 average pool (10 -> 5) and one linear layer. The
three streams are one grouped convolution (`groups=3`: group k sees only channel k), which is
the same computation and one TensorRT layer instead of three.

The input is the spec's `flow:image` (u, v, strain; `edge.flow`), computed by DIS at 112x112
from the registered onset/apex pair and scaled as `FLOW` declares: synthetic micro-expressions
(1-2 px at 224) move DIS flow by 0.1-0.6 px at 112 and give strain up to about 0.05
(measured: docs/flow.md), so u, v x4 and strain x40 bring both to about 0-2, and the clips at 4
keep a large head movement from dominating INT8 ranges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from edge._lazy import require
from edge.spec import FLOW_IMAGE, FlowSettings, ModelSpec, Preprocessing, TensorSpec

__all__ = [
    "CLASSES",
    "FLOW",
    "STREAM_WIDTH",
    "ASSETS",
    "ONNX_FILE",
    "SPEC_FILE",
    "CARD_FILE",
    "WEIGHTS_FILE",
    "load_model",
    "OPSET",
    "spec",
    "build_model",
    "export",
]

CLASSES = ("negative", "positive", "surprise")
FLOW = FlowSettings(
    method="dis", size=(112, 112), scale=4.0, clip=4.0, strain_scale=40.0, strain_clip=4.0
)
STREAM_WIDTH = 8
INPUT = "flow"
OUTPUT = "logits"
ASSETS = Path(__file__).resolve().parent / "assets"
ONNX_FILE = ASSETS / "ststnet.onnx"
SPEC_FILE = ASSETS / "ststnet.spec.yaml"
CARD_FILE = ASSETS / "ststnet.card.json"
WEIGHTS_FILE = ASSETS / "ststnet.safetensors"
#: TensorRT 8.5 (JetPack 5) parses opsets up to 17; 16 is what the project exports everywhere.
OPSET = 16


def spec() -> ModelSpec:
    """What the shipped spec file declares (the build reads the file, not this function)."""
    return ModelSpec(
        arch="ststnet",
        variant="28-dis",
        inputs=(
            TensorSpec(INPUT, (1, 3, 28, 28), description="u, v, optical strain (flow:image)"),
        ),
        outputs=(TensorSpec(OUTPUT, (1, len(CLASSES)), description="class logits"),),
        preprocessing=Preprocessing(
            size=(28, 28),
            color="RGB",
            scale=1.0,
            mean=(0.0, 0.0, 0.0),
            std=(1.0, 1.0, 1.0),
            frames=("onset", "apex"),
            feeds=((INPUT, FLOW_IMAGE),),
            flow=FLOW,
        ),
        class_names=CLASSES,
        protocol="MEGC 2019 composite (3 classes)",
        notes=("mean/std are unused: the only input is optical flow, scaled as flow declares",),
    )


def build_model(seed: int = 0):
    """The untrained network (PyTorch), its weights drawn from `seed`."""
    torch = require("torch", purpose="building the STSTNet example")
    nn = torch.nn
    torch.manual_seed(seed)
    width = 3 * STREAM_WIDTH
    model = nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, groups=3),  # three streams: u, v, strain
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=3, padding=1),  # 28 -> 10
        nn.AvgPool2d(2, stride=2),  # 10 -> 5
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(width * 5 * 5, len(CLASSES)),
    )
    return model.eval()


def export(model, out: Path) -> Dict[str, Path]:
    """Write the ONNX file `out` (static batch 1, opset 16), its spec file, and the FP32
    PyTorch weights it was exported from (so tests can hold the file to the training code);
    returns the paths written."""
    from edge.export import onnx_from_model

    safetensors_torch = require("safetensors.torch", purpose="saving the STSTNet example")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.float().eval().cpu()
    onnx_from_model(model, spec(), out, opset=OPSET)
    weights = out.with_suffix(".safetensors")
    safetensors_torch.save_file(
        {k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(weights)
    )
    spec_path = out.with_name(out.stem + ".spec.yaml")
    yaml = require("yaml", purpose="writing the example's spec file")
    spec_path.write_text(
        SPEC_HEADER + yaml.safe_dump(spec_file_content(), sort_keys=False), encoding="utf-8"
    )
    return {"onnx": out, "spec": spec_path, "weights": weights}


def load_model(weights: Path = WEIGHTS_FILE):
    """The PyTorch network with the weights `export` stored (no pickled code is executed)."""
    safetensors_torch = require("safetensors.torch", purpose="loading the STSTNet example")
    model = build_model()
    model.load_state_dict(safetensors_torch.load_file(str(weights)), strict=True)
    return model.eval()


SPEC_HEADER = (
    "# Spec file of the shipped STSTNet-style example, in the format of docs/byo.md:\n"
    "#   edge-build --model ststnet.onnx --spec ststnet.spec.yaml --precision int8\n"
    "# Written by calib.examples.ststnet.export; it parses into ststnet.spec() (tested).\n"
)


def spec_file_content() -> Dict[str, Any]:
    """The spec file a user would write for this network (docs/byo.md); `spec()` is what it
    parses into. Written out by hand, as a user would, not generated from `spec()`: the test
    that parses it and compares is what keeps the two together."""
    return {
        "spec_version": 1,
        "model": "ststnet",
        "variant": "28-dis",
        "classes": list(CLASSES),
        "label_scheme": "MEGC 2019 composite (3 classes)",
        "preprocessing": {"size": 28, "scale": 1.0, "mean": 0.0, "std": 1.0},
        "inputs": [
            {
                "name": INPUT,
                "source": FLOW_IMAGE,
                "description": "u, v, optical strain (flow:image)",
            },
        ],  # fmt: skip
        "flow": FLOW.to_dict(),
        "outputs": {"logits": OUTPUT},
        "notes": ["mean/std are unused: the only input is optical flow, scaled as flow declares"],
    }
