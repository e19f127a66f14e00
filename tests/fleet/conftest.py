"""A real FAMNet bundle with a batch axis and AU logits (the richest serving case), built once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def famnet_bundle(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from quantize.cli.build import main as build_main

    out = tmp_path_factory.mktemp("fleet") / "famnet"
    args = ["--arch", "famnet", "--dynamic-batch", "--val-samples", "0", "--calib-samples", "0"]
    assert build_main(args + ["--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="session")
def famnet_feeds(famnet_bundle):
    """Four different samples for the bundle's inputs."""
    import numpy as np

    from edge.bundle import Bundle

    rng = np.random.default_rng(0)
    spec = Bundle.load(famnet_bundle).spec
    return {
        t.name: rng.standard_normal((4,) + tuple(t.shape[1:])).astype(np.float32)
        for t in spec.inputs
    }
