"""The live pipeline behind `edge-run SOURCE|--camera N`: decode, align per clip, spot onset and
apex, classify each event through any Runner, and write JSON lines. numpy-only at import."""

from __future__ import annotations

from edge.pipeline.classifier import EventClassifier, EventPrediction, make_runner
from edge.pipeline.depth import DepthSource, FolderDepth, ProxyDepth, make_depth_source
from edge.pipeline.events import AnnotatedVideo, JsonLines
from edge.pipeline.live import PipelineConfig, run_given, run_spotting
from edge.pipeline.source import Frame, FrameClock, VideoSource
from edge.pipeline.spotting import Spot, Spotter, motion_image
from edge.pipeline.uri import SourceSpec, parse_source

__all__ = [
    "AnnotatedVideo",
    "DepthSource",
    "FolderDepth",
    "ProxyDepth",
    "make_depth_source",
    "EventClassifier",
    "EventPrediction",
    "Frame",
    "FrameClock",
    "JsonLines",
    "PipelineConfig",
    "SourceSpec",
    "Spot",
    "Spotter",
    "VideoSource",
    "make_runner",
    "motion_image",
    "parse_source",
    "run_given",
    "run_spotting",
]
