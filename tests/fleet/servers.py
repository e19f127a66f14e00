"""Real servers on localhost for the fleet tests: a Mosquitto broker and a subscriber that
collects what reaches it. Each test stops what it starts."""

from __future__ import annotations

import getpass
import ipaddress
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import List, Optional

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def make_certificates(workdir: Path) -> Path:
    """A throw-away CA and a server certificate for 127.0.0.1 (openssl CLI); returns the CA."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=workdir)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (workdir / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip
    for name in ("server.key", "ca.key"):
        (workdir / name).chmod(0o644)  # mosquitto may run as another user
    return workdir / "ca.crt"


class Mosquitto:
    """`mosquitto` on 127.0.0.1:port with persistence, so a restart keeps queued sessions.

    With `password`, only user `edge` with that password may connect."""

    def __init__(self, workdir: Path, *, password: Optional[str] = None, tls: bool = False) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            pytest.skip("mosquitto not installed (apt-get install mosquitto; .ci/run does)")
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            # as root, mosquitto would switch to user "mosquitto", which cannot write here
            f"user {getpass.getuser()}",
            "persistence true",
            f"persistence_location {workdir}/",
            "log_dest stderr",
        ]
        if password is None:
            lines.append("allow_anonymous true")
        else:
            passwd = workdir / "passwd"
            subprocess.run(
                ["mosquitto_passwd", "-b", "-c", str(passwd), "edge", password], check=True
            )
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        if tls:
            self.ca_file = make_certificates(workdir)
            lines += [
                f"cafile {self.ca_file}",
                f"certfile {workdir / 'server.crt'}",
                f"keyfile {workdir / 'server.key'}",
            ]
        self.config = workdir / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.log = workdir / "mosquitto.log"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> Mosquitto:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file
            self.proc.wait(timeout=10)
        self.proc = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


class Collector:
    """A persistent-session QoS 1 subscriber: messages sent while it is away (broker restart)
    are kept for it by the broker and delivered when it reconnects."""

    def __init__(self, port: int, topic: str, *, username=None, password=None) -> None:
        import paho.mqtt.client as mqtt

        self.records: List[dict] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"collector-{port}",
            clean_session=False,
        )
        if username:
            client.username_pw_set(username, password)
        client.reconnect_delay_set(min_delay=1, max_delay=1)
        client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_message = self._on_message
        client.connect("127.0.0.1", port, keepalive=10)
        client.loop_start()
        self.client = client
        if not self._subscribed.wait(10):
            raise TimeoutError("collector did not subscribe")

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.records.append(json.loads(message.payload))

    def wait_for(self, count: int, timeout: float = 30.0) -> List[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.records) >= count:
                    return list(self.records)
            time.sleep(0.05)
        with self._lock:
            return list(self.records)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _proc_address(text: str) -> str:
    """/proc/net/tcp{,6} hex address (32-bit words in host byte order) -> IP text."""
    words = [bytes.fromhex(text[i : i + 8])[::-1] for i in range(0, len(text), 8)]
    address = ipaddress.ip_address(b"".join(words))
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def listening_addresses(port: int) -> List[str]:
    """Local addresses with a TCP socket listening on `port`, as IPv4/IPv6 text."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                found.append(_proc_address(address))
    return found
