"""The bundle's reference inputs and FP32 outputs in Polygraphy's JSON formats.

Jetson users already check engines with Polygraphy; with these two files the same check runs on
the host (`--onnxrt`) and on the device (`--trt`, or the built engine):

    polygraphy run model.fp32.onnx --onnxrt \\
        --load-inputs polygraphy_inputs.json --load-outputs polygraphy_outputs.json

The files are written with Polygraphy's own serialisers (`polygraphy.json.save_json` for the
list of feed dicts that `--load-inputs` reads, `RunResults.save` for what `--load-outputs`
reads), not by hand: the format is Polygraphy's to change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from edge._lazy import require
from edge.bundle import POLYGRAPHY_INPUTS_FILE as INPUTS_FILE
from edge.bundle import POLYGRAPHY_OUTPUTS_FILE as OUTPUTS_FILE

__all__ = ["INPUTS_FILE", "OUTPUTS_FILE", "SAMPLES", "write_polygraphy_references", "check_command"]

#: Samples kept: two are enough to catch a wrong engine, and each MMNet sample is ~1.6 MB of JSON.
SAMPLES = 2


def check_command(model: str, backend: str = "--onnxrt") -> str:
    """The `polygraphy run` command that checks `model` against the bundle's references."""
    return f"polygraphy run {model} {backend} --load-inputs {INPUTS_FILE} --load-outputs {OUTPUTS_FILE}"


def write_polygraphy_references(
    directory: Path,
    feeds: Sequence[Mapping[str, np.ndarray]],
    outputs: Sequence[Mapping[str, np.ndarray]],
    *,
    runner_name: str,
    model_file: str,
) -> Dict[str, Any]:
    """Write the first `SAMPLES` feeds and their outputs; returns the manifest entry.

    Args:
        directory: the bundle being written.
        feeds: model inputs, one dict per inference, as `--load-inputs` replays them.
        outputs: the FP32 model's outputs for the same feeds.
        runner_name: what produced `outputs` (named in Polygraphy's comparison report).
        model_file: the bundle's FP32 ONNX, named in the recorded command.
    """
    logger = require("polygraphy.logger", purpose="writing the bundle's Polygraphy references")
    # Polygraphy logs each save on stdout; edge-build's output is its own.
    with logger.G_LOGGER.verbosity(logger.G_LOGGER.ERROR):
        return _write(directory, feeds, outputs, runner_name, model_file)


def _write(directory, feeds, outputs, runner_name, model_file) -> Dict[str, Any]:
    from polygraphy import json as pjson
    from polygraphy.comparator import RunResults

    count = min(SAMPLES, len(feeds))
    inputs: List[Dict[str, np.ndarray]] = [
        {k: np.ascontiguousarray(v) for k, v in feeds[i].items()} for i in range(count)
    ]
    pjson.save_json(inputs, str(directory / INPUTS_FILE), description="reference inputs")
    results = RunResults()
    results.add(
        [{k: np.ascontiguousarray(v) for k, v in outputs[i].items()} for i in range(count)],
        runner_name=runner_name,
    )
    results.save(str(directory / OUTPUTS_FILE))
    return {
        "inputs": INPUTS_FILE,
        "outputs": OUTPUTS_FILE,
        "samples": count,
        "reference": f"{runner_name} on {model_file}",
        "host_check": check_command(model_file),
    }
