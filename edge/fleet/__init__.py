"""Fleet: a bundle behind a real Triton server, a model repository for a standalone Triton, and
events streamed to an MQTT broker.

Every third-party piece (PyTriton, tritonclient, paho-mqtt; the `fleet` extra) is imported
lazily by the module that uses it, so `edge` still imports on a Jetson without them.
"""

from __future__ import annotations

from edge.fleet.tensors import TritonTensor, served_outputs, triton_tensors

__all__ = ["TritonTensor", "served_outputs", "triton_tensors"]
