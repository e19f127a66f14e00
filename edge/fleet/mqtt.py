"""`edge-run --events-out mqtt://HOST:PORT/TOPIC`: every record published to a broker.

Records are JSON, QoS 1 (the broker acknowledges each), so delivery is at least once: each
record gains `source` (which device; the host name unless told) and `seq` (its number in this
run), by which a consumer of a fleet's shared topic tells devices apart and drops duplicates. paho-mqtt keeps unacknowledged and
not-yet-sent messages in its own queue and resends them after it reconnects, so a broker that
restarts loses nothing; this module only bounds that: at most `buffer` records waiting, and at
most `outage_s` seconds without a broker, after which writing (or closing) fails with a clear
error. Credentials and TLS files come from options or EDGE_MQTT_* variables and are never
logged: every message names the broker by `MqttTarget.describe()`, which holds no secrets.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Set
from urllib.parse import unquote, urlsplit

from edge._lazy import require
from edge.errors import EdgeBuildError

__all__ = ["ENV", "MqttAuth", "MqttEvents", "MqttTarget", "is_mqtt_url", "parse_mqtt_url"]

log = logging.getLogger(__name__)

#: Environment variables read when the matching option is not given.
ENV = {
    "username": "EDGE_MQTT_USERNAME",
    "password": "EDGE_MQTT_PASSWORD",
    "ca_file": "EDGE_MQTT_CA_FILE",
    "cert_file": "EDGE_MQTT_CERT_FILE",
    "key_file": "EDGE_MQTT_KEY_FILE",
}

SCHEMES = {"mqtt": 1883, "mqtts": 8883}


def is_mqtt_url(text: str) -> bool:
    """True for `mqtt://...` and `mqtts://...` (anything else is a file path)."""
    scheme, sep, _ = str(text).partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


@dataclass(frozen=True)
class MqttTarget:
    """Broker address and topic; `tls` for `mqtts://`."""

    host: str
    port: int
    topic: str
    tls: bool
    username: Optional[str] = None

    def describe(self) -> str:
        """The broker and topic, safe to print (no credentials)."""
        return "{}://{}:{}/{}".format(
            "mqtts" if self.tls else "mqtt", self.host, self.port, self.topic
        )


def parse_mqtt_url(url: str) -> MqttTarget:
    """`mqtt[s]://[USER@]HOST[:PORT]/TOPIC`.

    Raises:
        ValueError: not such a URL, no topic, a wildcard topic, or a password in the URL
            (it would end up in shell history and process lists; use EDGE_MQTT_PASSWORD).
    """
    # The topic is everything after the host, verbatim: '#' and '?' are topic characters
    # here, not a URL fragment or query.
    scheme_part, _, rest = url.partition("://")
    netloc, _, raw_topic = rest.partition("/")
    parts = urlsplit(f"{scheme_part}://{netloc}")
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"{url!r} is not an mqtt:// or mqtts:// URL")
    if parts.password is not None:
        raise ValueError(
            f"put no password in the URL; set {ENV['password']} or pass --mqtt-password-file"
        )
    if not parts.hostname:
        raise ValueError("the MQTT URL names no host: mqtt://HOST:PORT/TOPIC")
    topic = unquote(raw_topic)
    if not topic:
        raise ValueError("the MQTT URL names no topic: mqtt://HOST:PORT/TOPIC")
    if "+" in topic or "#" in topic:
        raise ValueError(f"topic {topic!r}: wildcards are for subscribing, not publishing")
    try:
        port = parts.port or SCHEMES[scheme]
    except ValueError as exc:
        raise ValueError(f"bad port in the MQTT URL: {exc}") from exc
    username = unquote(parts.username) if parts.username else None
    return MqttTarget(parts.hostname, port, topic, scheme == "mqtts", username)


@dataclass(frozen=True)
class MqttAuth:
    """Credentials and TLS files; `repr` hides the password."""

    username: Optional[str] = None
    password: Optional[str] = None
    ca_file: Optional[str] = None
    cert_file: Optional[str] = None
    key_file: Optional[str] = None

    def __repr__(self) -> str:
        shown = "***" if self.password else None
        return (
            f"MqttAuth(username={self.username!r}, password={shown}, ca_file={self.ca_file!r}, "
            f"cert_file={self.cert_file!r}, key_file={self.key_file!r})"
        )

    @classmethod
    def resolve(
        cls,
        *,
        username: Optional[str] = None,
        password_file: Optional[str] = None,
        ca_file: Optional[str] = None,
        cert_file: Optional[str] = None,
        key_file: Optional[str] = None,
        environ: Optional[Mapping[str, str]] = None,
    ) -> MqttAuth:
        """Options first, then EDGE_MQTT_* variables. A password comes from a file or the
        environment, never from the command line."""
        env = os.environ if environ is None else environ
        password = env.get(ENV["password"]) or None
        if password_file:
            try:
                with open(password_file, encoding="utf-8") as handle:
                    password = handle.read().rstrip("\r\n")
            except OSError as exc:
                raise EdgeBuildError(
                    f"{password_file}: cannot read the MQTT password: {exc}"
                ) from exc
        return cls(
            username=username or env.get(ENV["username"]) or None,
            password=password,
            ca_file=ca_file or env.get(ENV["ca_file"]) or None,
            cert_file=cert_file or env.get(ENV["cert_file"]) or None,
            key_file=key_file or env.get(ENV["key_file"]) or None,
        )


class MqttEvents:
    """A JSON-record sink (`write`, `close`) that publishes to an MQTT topic with QoS 1.

    Args:
        target: broker and topic.
        auth: credentials and TLS files (TLS only with an `mqtts://` target).
        buffer: most records held while the broker is away; one more is an error.
        outage_s: longest time without a broker before `write` / `close` fail.
        connect_s: how long the first connection may take.
        source: the `source` field of every record (default: this host's name).
    """

    def __init__(
        self,
        target: MqttTarget,
        auth: Optional[MqttAuth] = None,
        *,
        buffer: int = 10000,
        outage_s: float = 60.0,
        connect_s: float = 10.0,
        client_id: Optional[str] = None,
        source: Optional[str] = None,
    ) -> None:
        self.target = target
        self.source = source or socket.gethostname()
        self.outage_s = outage_s
        self.buffer = buffer
        auth = auth or MqttAuth()
        if not target.tls and (auth.ca_file or auth.cert_file or auth.key_file):
            raise EdgeBuildError(
                f"{target.describe()}: TLS files given for a plain mqtt:// broker; use mqtts://"
            )
        mqtt = require("paho.mqtt.client", purpose="--events-out mqtt://")
        self._mqtt = mqtt
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._answered = threading.Event()  # first CONNACK, accepted or refused
        self._refused: Optional[str] = None
        self._down_since: Optional[float] = time.monotonic()
        self._last_problem = "no answer yet"
        # mids sent but not acknowledged; paho's MQTTMessageInfo.rc keeps a stale NO_CONN or
        # CONN_LOST after a resend succeeds, so acknowledgements are counted from on_publish.
        self._unacked: Set[int] = set()
        self._acked_first: Set[int] = set()
        self.published = 0
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"edge-run-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv311,
        )
        username = auth.username or target.username
        if username or auth.password:
            client.username_pw_set(username, auth.password)
        if target.tls:
            try:
                client.tls_set(
                    ca_certs=auth.ca_file, certfile=auth.cert_file, keyfile=auth.key_file
                )
            except (OSError, ValueError) as exc:
                raise EdgeBuildError(f"{target.describe()}: TLS setup failed: {exc}") from exc
        client.max_queued_messages_set(buffer)
        client.reconnect_delay_set(min_delay=1, max_delay=4)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        client.connect_async(target.host, target.port, keepalive=30)
        client.loop_start()
        self._answered.wait(connect_s)
        if self._refused is not None or not self._connected.is_set():
            self._stop()
            if self._refused is not None:  # wrong credentials do not get better by retrying
                raise EdgeBuildError(f"{target.describe()}: {self._refused}")
            raise EdgeBuildError(
                f"{target.describe()}: no MQTT connection within {connect_s:g} s ({self._last_problem})"
            )

    # paho callbacks (its network thread) -----------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._last_problem = f"the broker refused the connection: {reason_code}"
            log.warning("%s: %s", self.target.describe(), self._last_problem)
            if not self._answered.is_set():
                self._refused = self._last_problem
                self._answered.set()
            return
        with self._lock:
            self._down_since = None
        self._connected.set()
        self._answered.set()
        log.info("%s: connected", self.target.describe())

    def _on_connect_fail(self, client, userdata) -> None:
        self._last_problem = "connection failed"

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
        self._connected.clear()
        self._last_problem = f"disconnected: {reason_code}"
        log.warning("%s: lost the broker (%s); buffering", self.target.describe(), reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            if mid in self._unacked:
                self._unacked.discard(mid)
            else:  # acknowledged before publish() returned its mid
                self._acked_first.add(mid)

    # sink ----------------------------------------------------------------------------------
    def _check_outage(self, waiting: int) -> None:
        with self._lock:
            down = self._down_since
        if down is not None and time.monotonic() - down > self.outage_s:
            raise EdgeBuildError(
                f"{self.target.describe()}: broker unreachable for more than {self.outage_s:g} s "
                f"({self._last_problem}); {waiting} record(s) not delivered"
            )

    @property
    def waiting(self) -> int:
        """Records not yet acknowledged by the broker."""
        with self._lock:
            return len(self._unacked)

    def write(self, record: Dict[str, Any]) -> None:
        self._check_outage(self.waiting)
        payload = dict(record, source=self.source, seq=self.published)
        info = self._client.publish(self.target.topic, json.dumps(payload), qos=1)
        if info.rc == self._mqtt.MQTT_ERR_QUEUE_SIZE:
            raise EdgeBuildError(
                f"{self.target.describe()}: {self.buffer} records already wait for the broker "
                f"({self._last_problem}); record not buffered"
            )
        if info.rc not in (self._mqtt.MQTT_ERR_SUCCESS, self._mqtt.MQTT_ERR_NO_CONN):
            raise EdgeBuildError(
                f"{self.target.describe()}: publish failed: {self._mqtt.error_string(info.rc)}"
            )
        with self._lock:
            if info.mid in self._acked_first:
                self._acked_first.discard(info.mid)
            else:
                self._unacked.add(info.mid)
        self.published += 1

    def flush(self) -> None:
        """Wait until the broker acknowledged every record, within the outage bound (also
        when it is connected but stops acknowledging)."""
        waiting = self.waiting
        stalled_since = time.monotonic()
        while waiting:
            self._check_outage(waiting)
            if time.monotonic() - stalled_since > self.outage_s:
                raise EdgeBuildError(
                    f"{self.target.describe()}: the broker acknowledged nothing for "
                    f"{self.outage_s:g} s; {waiting} record(s) not delivered"
                )
            time.sleep(0.05)
            now_waiting = self.waiting
            if now_waiting < waiting:
                stalled_since = time.monotonic()
            waiting = now_waiting

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._stop()

    def _stop(self) -> None:
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()
