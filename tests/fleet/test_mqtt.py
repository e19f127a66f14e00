"""`--events-out mqtt://`: records reach a real Mosquitto broker on localhost with QoS 1,
survive a broker restart, fail clearly after the outage bound, and keep secrets out of logs."""

from __future__ import annotations

import logging
import time

import pytest

from edge.errors import EdgeBuildError
from edge.fleet.mqtt import MqttAuth, MqttEvents, is_mqtt_url, parse_mqtt_url
from tests.fleet.servers import Collector, Mosquitto

pytest.importorskip("paho.mqtt.client")
TOPIC = "site/cam1/events"


@pytest.fixture
def broker(tmp_path):
    server = Mosquitto(tmp_path / "broker").start()
    yield server
    server.stop()


def test_url_parsing_and_refusals():
    target = parse_mqtt_url("mqtt://broker.lan/site/cam%201")
    assert (target.host, target.port, target.topic, target.tls) == (
        "broker.lan",
        1883,
        "site/cam 1",
        False,
    )
    assert parse_mqtt_url("mqtts://edge@h:9000/t").describe() == "mqtts://h:9000/t"
    assert is_mqtt_url("MQTT://h/t") and not is_mqtt_url("events.jsonl")
    for bad, why in (
        ("mqtt://u:secret@h/t", "no password"),
        ("mqtt://h/", "no topic"),
        ("mqtt://h/a/#", "wildcards"),
        ("http://h/t", "not an mqtt"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_mqtt_url(bad)


def test_records_arrive_as_json_with_source_and_seq(broker):
    collector = Collector(broker.port, TOPIC)
    sink = MqttEvents(parse_mqtt_url(f"{broker.url}/{TOPIC}"), source="jetson-07")
    try:
        for i in range(3):
            sink.write({"type": "event", "n": i})
        sink.write({"type": "summary", "events": 3})
        sink.close()
        assert sink.waiting == 0 and sink.published == 4
        records = collector.wait_for(4)
    finally:
        collector.close()
    assert [(r["type"], r["source"], r["seq"]) for r in records] == [
        ("event", "jetson-07", 0),
        ("event", "jetson-07", 1),
        ("event", "jetson-07", 2),
        ("summary", "jetson-07", 3),
    ]


def test_broker_restart_loses_nothing(broker):
    collector = Collector(broker.port, TOPIC)
    sink = MqttEvents(parse_mqtt_url(f"{broker.url}/{TOPIC}"), outage_s=30)
    try:
        for i in range(5):
            sink.write({"n": i})
        sink.flush()
        broker.stop()
        for i in range(5, 10):  # broker down: buffered by the client
            sink.write({"n": i})
        assert sink.waiting == 5
        time.sleep(1.5)
        broker.start()
        sink.close()  # waits for the broker to acknowledge all ten
        records = collector.wait_for(10)
    finally:
        collector.close()
    # QoS 1 is at least once: the broker may redeliver; (source, seq) names duplicates
    assert sorted({r["seq"] for r in records}) == list(range(10))
    assert sorted({r["n"] for r in records}) == list(range(10))


def test_outage_beyond_the_bound_is_a_clear_error(broker):
    sink = MqttEvents(parse_mqtt_url(f"{broker.url}/{TOPIC}"), outage_s=1.0)
    broker.stop()
    sink.write({"n": 0})  # within the bound: buffered
    time.sleep(1.5)
    with pytest.raises(
        EdgeBuildError, match=r"unreachable for more than 1 s.*1 record\(s\) not delivered"
    ):
        sink.write({"n": 1})
    with pytest.raises(EdgeBuildError, match="not delivered"):
        sink.close()


def test_full_buffer_is_a_clear_error(broker):
    sink = MqttEvents(parse_mqtt_url(f"{broker.url}/{TOPIC}"), buffer=3, outage_s=30)
    broker.stop()
    time.sleep(0.3)
    for i in range(3):
        sink.write({"n": i})
    with pytest.raises(EdgeBuildError, match="3 records already wait"):
        sink.write({"n": 3})
    broker.start()
    sink.close()


def test_no_broker_fails_fast(tmp_path):
    from tests.fleet.servers import free_port

    target = parse_mqtt_url(f"mqtt://127.0.0.1:{free_port()}/{TOPIC}")
    with pytest.raises(EdgeBuildError, match=r"no MQTT connection within 1 s"):
        MqttEvents(target, connect_s=1.0)


def test_credentials_from_env_and_never_logged(tmp_path, caplog, monkeypatch):
    secret = "s3cr3t-Pa55"
    server = Mosquitto(tmp_path / "auth", password=secret).start()
    caplog.set_level(logging.DEBUG)
    try:
        target = parse_mqtt_url(f"{server.url}/{TOPIC}")
        monkeypatch.setenv("EDGE_MQTT_USERNAME", "edge")
        monkeypatch.setenv("EDGE_MQTT_PASSWORD", "wrong-" + secret)
        with pytest.raises(EdgeBuildError) as refused:
            MqttEvents(target, MqttAuth.resolve(), connect_s=3.0)
        assert "refused" in str(refused.value) and secret not in str(refused.value)

        password_file = tmp_path / "password"
        password_file.write_text(secret + "\n")
        monkeypatch.delenv("EDGE_MQTT_PASSWORD")
        auth = MqttAuth.resolve(password_file=str(password_file))
        assert auth.username == "edge" and secret not in repr(auth)
        collector = Collector(server.port, TOPIC, username="edge", password=secret)
        sink = MqttEvents(target, auth)
        sink.write({"type": "event"})
        sink.close()
        assert len(collector.wait_for(1)) == 1
        collector.close()
    finally:
        server.stop()
    assert secret not in caplog.text


def test_tls_files_need_mqtts():
    with pytest.raises(EdgeBuildError, match="use mqtts://"):
        MqttEvents(parse_mqtt_url("mqtt://127.0.0.1:1/t"), MqttAuth(ca_file="/etc/ssl/ca.pem"))


def test_tls_with_the_ca_from_the_environment(tmp_path, monkeypatch):
    server = Mosquitto(tmp_path / "tls", tls=True).start()
    try:
        target = parse_mqtt_url(f"mqtts://127.0.0.1:{server.port}/{TOPIC}")
        with pytest.raises(EdgeBuildError, match="no MQTT connection"):
            MqttEvents(target, MqttAuth(), connect_s=2.0)  # system CAs do not know this one
        monkeypatch.setenv("EDGE_MQTT_CA_FILE", str(server.ca_file))
        sink = MqttEvents(target, MqttAuth.resolve())
        sink.write({"type": "event"})
        sink.close()  # the broker acknowledged it over TLS
        assert sink.published == 1 and sink.waiting == 0
    finally:
        server.stop()
