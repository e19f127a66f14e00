"""Fleet: a bundle behind a real Triton server (`edge.fleet.serve`), a model repository for a
standalone Triton (`edge.fleet.repository`), and events streamed to an MQTT broker
(`edge.fleet.mqtt`).

Every third-party piece (PyTriton, tritonclient, paho-mqtt; the `fleet` extra) is imported
lazily by the module that uses it, so `edge` still imports on a Jetson without them. Nothing
is imported here, so `edge-run` can reach the MQTT sink without loading the serving modules.
"""

from __future__ import annotations

from typing import List

__all__: List[str] = []
