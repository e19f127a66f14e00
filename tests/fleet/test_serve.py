"""`edge-serve` as a user runs it: a subprocess with a real Triton server (PyTriton) on free
localhost ports, asked over HTTP and gRPC with tritonclient, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.fleet.servers import free_port, listening_addresses

pytestmark = [pytest.mark.ort, pytest.mark.slow]
pytest.importorskip("pytriton")
httpclient = pytest.importorskip("tritonclient.http")
grpcclient = pytest.importorskip("tritonclient.grpc")


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


@pytest.fixture(scope="module")
def server(famnet_bundle, tmp_path_factory):
    ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    command = [
        sys.executable, "-m", "edge.cli.serve", "--bundle", str(famnet_bundle),
        "--http-port", str(ports["http"]), "--grpc-port", str(ports["grpc"]),
        "--metrics-port", str(ports["metrics"]), "--max-batch", "8",
        "--queue-delay-us", "50000", "--threads", "1",
    ]  # fmt: skip
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)  # edge-serve must find this interpreter's libpython itself
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    url = f"http://127.0.0.1:{ports['http']}/v2/models/famnet/ready"
    while True:
        try:
            if _get(url)[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("edge-serve did not become ready:\n" + log.read_text()[-3000:])
        time.sleep(0.25)
    yield proc, ports, log
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def metric_counts(port: int) -> dict:
    """famnet's Prometheus counters (PyTriton restricts the statistics API to its own token)."""
    counts = {}
    for line in _get(f"http://127.0.0.1:{port}/metrics")[1].splitlines():
        if line.startswith("nv_inference") and 'model="famnet"' in line:
            counts[line.split("{", 1)[0]] = float(line.rsplit(" ", 1)[1])
    return counts


def direct(famnet_bundle, feeds):
    from edge.bundle import Bundle
    from edge.runtime import make_runner

    with make_runner(Bundle.load(famnet_bundle), "ort", threads=1) as runner:
        return runner.infer(feeds)


def test_metadata_health_and_metrics(server, famnet_bundle):
    from edge.bundle import Bundle

    _, ports, log = server
    client = httpclient.InferenceServerClient(f"127.0.0.1:{ports['http']}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("famnet")
    meta = client.get_model_metadata("famnet")
    spec = Bundle.load(famnet_bundle).spec
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
        (t.name, "FP32", [-1] + list(t.shape[1:])) for t in spec.inputs
    ]
    assert [(o["name"], o["shape"]) for o in meta["outputs"]] == [
        ("logits", [-1, 5]),
        ("au_logits", [-1, 12]),
    ]
    assert client.get_model_config("famnet")["max_batch_size"] == 8
    status, text = _get(f"http://127.0.0.1:{ports['metrics']}/metrics")
    assert status == 200 and "nv_inference_request_success" in text
    # every endpoint listens on the loopback address only
    for port in ports.values():
        assert set(listening_addresses(port)) == {"127.0.0.1"}, port
    assert "ready: HTTP http://127.0.0.1:" in log.read_text()


def test_http_and_grpc_answer_like_the_runner(server, famnet_bundle, famnet_feeds):
    _, ports, _ = server
    want = direct(famnet_bundle, famnet_feeds)
    for module, port in ((httpclient, ports["http"]), (grpcclient, ports["grpc"])):
        client = module.InferenceServerClient(f"127.0.0.1:{port}")
        inputs = []
        for name, value in famnet_feeds.items():
            tensor = module.InferInput(name, list(value.shape), "FP32")
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
        result = client.infer("famnet", inputs)
        for name in ("logits", "au_logits"):
            np.testing.assert_allclose(result.as_numpy(name), want[name], atol=1e-4)


def test_dynamic_batching_merges_concurrent_requests(server, famnet_feeds):
    from pytriton.client import ModelClient

    _, ports, _ = server
    url = f"127.0.0.1:{ports['http']}"
    sample = {k: v[0] for k, v in famnet_feeds.items()}

    def one(_):
        with ModelClient(url, "famnet") as client:
            return client.infer_sample(**sample)["logits"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    assert all(np.allclose(r, results[0], atol=1e-5) for r in results)
    counts = metric_counts(ports["metrics"])
    # requests arrived together within the 50 ms queue delay: fewer executions than requests
    assert counts["nv_inference_count"] >= 8
    assert counts["nv_inference_exec_count"] < counts["nv_inference_count"]


def test_sigterm_stops_cleanly(server):
    proc, ports, log = server
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    assert "edge-serve: stopped" in log.read_text()
    for port in ports.values():
        assert listening_addresses(port) == []


def test_batched_and_sample_by_sample_agree(famnet_bundle, famnet_feeds):
    from edge.bundle import Bundle
    from edge.fleet.serve import BatchedModel
    from edge.runtime import make_runner

    with make_runner(Bundle.load(famnet_bundle), "ort", threads=1) as runner:
        names = ["logits", "au_logits"]
        whole = BatchedModel(runner, names, batch_axis=True)(famnet_feeds)
        looped = BatchedModel(runner, names, batch_axis=False)(famnet_feeds)
    for name in names:
        assert whole[name].shape[0] == 4
        np.testing.assert_allclose(whole[name], looped[name], atol=1e-4)


def test_taken_port_and_usage_errors(famnet_bundle, capsys):
    import socket

    from edge.cli.serve import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        code = main(["--bundle", str(famnet_bundle), "--http-port", str(port)])
    assert code == 1
    assert f"127.0.0.1:{port}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--bundle", str(famnet_bundle), "--max-batch", "0"])
    assert exc.value.code == 2


def test_libpython_goes_first_on_the_library_path():
    import sysconfig

    from edge.fleet.serve import ensure_libpython_on_path

    environ = {"LD_LIBRARY_PATH": "/opt/x"}
    added = ensure_libpython_on_path(environ)
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        assert added is None and environ == {"LD_LIBRARY_PATH": "/opt/x"}
    else:
        assert environ["LD_LIBRARY_PATH"] == f"{added}:/opt/x"
        assert ensure_libpython_on_path(environ) == added
        assert environ["LD_LIBRARY_PATH"] == f"{added}:/opt/x"  # not added twice
