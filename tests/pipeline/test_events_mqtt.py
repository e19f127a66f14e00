"""`edge-run VIDEO --events-out mqtt://...`: every record of a run (events, the no-face
stretch, the summary) reaches a real Mosquitto broker, identical to the JSON-lines output."""

from __future__ import annotations

import json

import pytest

from edge.cli.run import main as run_main
from tests.fleet.servers import Collector, Mosquitto

pytestmark = [pytest.mark.torch, pytest.mark.ort, pytest.mark.slow]
pytest.importorskip("cv2")
pytest.importorskip("paho.mqtt.client")


def test_every_record_is_published(bundle_dir, video_gap, tmp_path, capsys):
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        collector = Collector(broker.port, "lab/events")
        url = f"{broker.url}/lab/events"
        args = ["--bundle", str(bundle_dir), str(video_gap.path), "--events-out", url]
        assert run_main(args + ["--mqtt-source", "cam-1"]) == 0
        err = capsys.readouterr().err
        count = int(err.split(" record(s) acknowledged by ")[0].rsplit(" ", 1)[1])
        published = collector.wait_for(count)
        collector.close()
    finally:
        broker.stop()
    assert url.replace("mqtt://", "") in err.replace("mqtt://", "")
    assert run_main(["--bundle", str(bundle_dir), str(video_gap.path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["type"] for r in published] == [r["type"] for r in lines]
    assert {"event", "no_face", "summary"} <= {r["type"] for r in published}
    assert [r["seq"] for r in published] == list(range(len(lines)))
    assert {r["source"] for r in published} == {"cam-1"}
    for sent, local in zip(published, lines):
        if sent["type"] == "event":
            assert sent["label"] == local["label"] and sent["apex_frame"] == local["apex_frame"]


def test_bad_mqtt_urls_are_usage_errors(bundle_dir, video_gap):
    for url in ("mqtt://user:pw@127.0.0.1/t", "mqtt://127.0.0.1/"):
        with pytest.raises(SystemExit) as exc:
            run_main(["--bundle", str(bundle_dir), str(video_gap.path), "--events-out", url])
        assert exc.value.code == 2
