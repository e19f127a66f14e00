"""The live loop: decode, register each clip once, spot onset/apex, classify, report.

A `FaceTracker` follows one face (the largest, or `face`-th from the left): a full search
acquires it, a window re-detection every few frames follows it. A clip starts when a face is
acquired; its registration (one similarity transform) is reused for every frame until the
tracked face is lost or has moved by `drift_px`, which ends the clip and starts the next.
Events are classified as soon as the spotter confirms them.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Deque, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from edge._lazy import require
from edge.align.aligner import FaceAligner, NoFace, Registration
from edge.align.detector import Detection
from edge.align.event import warp_event
from edge.align.tracker import FaceTracker, TrackedFace, TrackerConfig
from edge.errors import EdgeBuildError
from edge.frames import is_depth, role_indices
from edge.pipeline.classifier import EventClassifier, EventPrediction
from edge.pipeline.depth import DepthSource
from edge.pipeline.events import AnnotatedVideo, JsonLines
from edge.pipeline.roles import check_depth, event_frames, needed_frames
from edge.pipeline.source import Frame, VideoSource
from edge.pipeline.spotting import Spot, Spotter, motion_image

__all__ = ["PipelineConfig", "StageTimer", "run_spotting", "run_given", "crop_upscale"]

#: Above this many crop pixels per image pixel (each way), most of the model's input is
#: interpolated: at 2x, three of every four input pixels are made up between real ones.
MAX_UPSCALE = 2.0

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    """Spotting and tracking settings (seconds, grey levels and crop pixels).

    The tracked face is re-detected every `track_s` and searched for in the whole frame every
    `search_s` (and every `retry_s` while there is none); it is re-detected at once when the
    registered crop differs from the clip's first crop by more than `lost_change` grey levels
    on average (the face left or moved far): a micro-expression changes it by about one grey
    level. A face that moved `drift_px` crop pixels since registration is registered anew.
    """

    half_window_s: float = 0.2
    z: float = 8.0
    min_motion: float = 0.5
    track_s: float = 0.1
    search_s: float = 5.0
    retry_s: float = 0.1
    drift_px: float = 16.0
    lost_change: float = 20.0
    face: Optional[int] = None

    def tracker(self, fps: float) -> TrackerConfig:
        def frames(seconds: float) -> int:
            return max(1, int(round(seconds * fps)))

        return TrackerConfig(
            track_every=frames(self.track_s),
            search_every=frames(self.search_s),
            retry_every=frames(self.retry_s),
            face=self.face,
        )


class StageTimer:
    """Accumulates milliseconds per stage; reports the mean per call."""

    def __init__(self) -> None:
        self.total: Dict[str, float] = defaultdict(float)
        self.count: Dict[str, int] = defaultdict(int)

    def add(self, stage: str, start_ns: int) -> int:
        now = time.perf_counter_ns()
        self.total[stage] += (now - start_ns) / 1e6
        self.count[stage] += 1
        return now

    def means(self) -> Dict[str, float]:
        return {k: round(self.total[k] / self.count[k], 3) for k in self.total if self.count[k]}


def _rgb(bgr: np.ndarray) -> np.ndarray:
    cv2 = require("cv2", purpose="colour conversion")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def crop_upscale(registration: Registration) -> float:
    """Crop pixels per image pixel along each axis (the similarity transform's scale)."""
    return float(np.sqrt(abs(np.linalg.det(registration.matrix[:, :2]))))


def _drift(registration: Registration, then: Detection, now: Detection) -> float:
    """How far the face moved since registration, in crop pixels (detector keypoints, or the
    box corners for aligners whose detections have none)."""
    if len(then.keypoints) and len(then.keypoints) == len(now.keypoints):
        a, b = then.keypoints[:4], now.keypoints[:4]
    else:
        a, b = np.reshape(then.box, (2, 2)), np.reshape(now.box, (2, 2))
    return float(np.linalg.norm(np.asarray(a) - b, axis=1).mean()) * crop_upscale(registration)


def _frames(source: VideoSource, timer: StageTimer) -> Iterator[Frame]:
    iterator = iter(source)
    while True:
        start = time.perf_counter_ns()
        try:
            frame = next(iterator)
        except StopIteration:
            return
        timer.add("decode", start)
        yield frame


class _Run:
    """State of one `run_spotting` call (kept off the public functions to keep them short)."""

    def __init__(self, source, aligner, classifier, sink, annotated, config, depth) -> None:
        self.source: VideoSource = source
        self.aligner: FaceAligner = aligner
        self.classifier: EventClassifier = classifier
        self.sink: JsonLines = sink
        self.annotated: Optional[AnnotatedVideo] = annotated
        self.config: PipelineConfig = config
        self.depth: Optional[DepthSource] = depth
        self.timer = StageTimer()
        self.tracker = FaceTracker(aligner.faces(), config.tracker(source.fps))
        self.face: Optional[TrackedFace] = None
        self.registered: Optional[TrackedFace] = None
        self.registration: Optional[Registration] = None
        self.spotter: Optional[Spotter] = None
        self.clip = -1
        self.events = 0
        self.no_face_frames = 0
        self.no_face_start: Optional[Tuple[int, float, str]] = None
        self.face_sizes: Deque[float] = deque(maxlen=1000)
        self.upscales: Deque[float] = deque(maxlen=1000)
        self.small_warned = False
        self.crops: Deque[Tuple[int, float, np.ndarray]] = deque()
        self.reference: Optional[np.ndarray] = None

    # clips -------------------------------------------------------------------------------------
    def start_clip(self, frame: Frame, registration: Registration, face: TrackedFace) -> None:
        self.registration = registration
        self.registered = face
        self.clip += 1
        self.spotter = Spotter(
            self.source.fps,
            half_window_s=self.config.half_window_s,
            z=self.config.z,
            min_motion=self.config.min_motion,
        )
        self.crops = deque(maxlen=8 * self.spotter.k + 4)
        self.reference = None
        upscale = crop_upscale(registration)
        self.upscales.append(upscale)
        logger.info(
            "clip %d starts at frame %d (%s; face %.0f px, %s of %d)", self.clip, frame.index,
            registration.method, face.size, face.choice, face.faces,
        )  # fmt: skip
        if upscale > MAX_UPSCALE and not self.small_warned:
            self.small_warned = True
            logger.warning(
                "face is %.0f px wide at frame %d: the %d px model input is %.1fx upscaled, mostly "
                "interpolation (faces under %.0f px are); move closer or use a longer lens",
                face.size, frame.index, registration.size[0], upscale,
                face.size * upscale / MAX_UPSCALE,
            )  # fmt: skip

    def end_clip(self) -> None:
        if self.spotter is not None:
            for spot in self.spotter.flush():
                self.emit(spot)
        self.registration = None
        self.spotter = None

    def no_face(self, frame: Frame, reason: str) -> None:
        self.no_face_frames += 1
        if self.no_face_start is None:
            self.no_face_start = (frame.index, frame.time_s, reason)

    def face_back(self, frame: Frame) -> None:
        if self.no_face_start is not None:
            index, time_s, reason = self.no_face_start
            self.sink.write(
                {
                    "type": "no_face",
                    "start_frame": index,
                    "end_frame": frame.index - 1,
                    "start_time_s": round(time_s, 4),
                    "end_time_s": round(frame.time_s, 4),
                    "reason": reason,
                }
            )
            self.no_face_start = None

    # per frame ---------------------------------------------------------------------------------
    def register(self, frame: Frame, face: TrackedFace) -> Union[Registration, NoFace]:
        start = time.perf_counter_ns()
        result = self.aligner.register(frame.bgr, detection=face.detection, bgr=True)
        self.timer.add("register", start)
        return result

    def step(self, frame: Frame, *, force: bool = False) -> Optional[Registration]:
        """Keep or renew the clip's registration for this frame; None when there is no face."""
        start = time.perf_counter_ns()
        face = self.face = self.tracker.update(frame.bgr, bgr=True, force=force)
        self.timer.add("track", start)
        if face is None:
            if self.registration is not None:
                self.end_clip()
            self.no_face(frame, self.tracker.reason)
            return None
        if face.fresh:
            self.face_sizes.append(face.size)
        new_track = self.registered is None or face.track != self.registered.track
        if not new_track and self.registration is not None and self.registered is not None:
            if not face.fresh:
                return self.registration
            drift = _drift(self.registration, self.registered.detection, face.detection)
            if drift <= self.config.drift_px:
                return self.registration
            logger.info("face moved %.1f px at frame %d; re-registering", drift, frame.index)
        if self.registration is not None:
            self.end_clip()
        found = self.register(frame, face)
        if isinstance(found, NoFace):
            self.no_face(frame, found.reason)
            return None
        self.face_back(frame)
        self.start_clip(frame, found, face)
        return self.registration

    def process(self, frame: Frame) -> None:
        registration = self.step(frame)
        if registration is None or self.spotter is None:
            if self.annotated is not None:
                self.annotated.write(frame.bgr, None)
            return
        start = time.perf_counter_ns()
        aligned = self.aligner.warp(frame.bgr, registration)
        start = self.timer.add("align", start)
        grey = motion_image(aligned)
        if self.reference is None:
            self.reference = grey
        elif float(np.abs(grey - self.reference).mean()) > self.config.lost_change:
            clip = self.clip
            registration = self.step(frame, force=True)
            if registration is None or self.spotter is None:
                if self.annotated is not None:
                    self.annotated.write(frame.bgr, None)
                return
            if clip == self.clip:  # same face, same place: accept the new look
                self.reference = grey
            else:
                aligned = self.aligner.warp(frame.bgr, registration)
                grey = self.reference = motion_image(aligned)
            start = time.perf_counter_ns()
        self.crops.append((frame.index, frame.time_s, aligned))
        spots = self.spotter.push(frame.index, frame.time_s, grey)
        self.timer.add("spot", start)
        for spot in spots:
            self.emit(spot)
        if self.annotated is not None:
            start = time.perf_counter_ns()
            self.annotated.write(frame.bgr, registration.crop_corners())
            self.timer.add("annotate", start)

    def face_record(self) -> Optional[Dict[str, Any]]:
        """The followed face, for events: size in px, upscale into the crop, and which face."""
        face, registration = self.face or self.registered, self.registration
        if face is None or registration is None:
            return None
        return {
            "px": round(face.size, 1),
            "upscale": round(crop_upscale(registration), 3),
            "followed": face.choice,
            "faces": face.faces,
            "track": face.track,
        }

    def emit(self, spot: Spot) -> None:
        crops = {index: crop for index, _, crop in self.crops}
        frames = None
        if self.registration is not None:
            frames = event_frames(
                self.classifier.spec, spot.onset, spot.apex,
                lambda i: _rgb(crops[i]) if i in crops else None, self.registration, self.depth,
            )  # fmt: skip
        if frames is None:
            logger.warning("event at frame %d: its frames left the buffer; skipped", spot.apex)
            return
        prediction = self.classifier(frames)
        self.events += 1
        timing = self.timer.means()
        timing.update(
            {
                "preprocess": round(prediction.preprocess_ms, 3),
                "infer": round(prediction.infer_ms, 3),
            }
        )
        self.sink.write(
            {
                "type": "event",
                "event": self.events,
                "clip": self.clip,
                "source": "spotting",
                "onset_frame": spot.onset,
                "apex_frame": spot.apex,
                "onset_time_s": round(spot.onset_time_s, 4),
                "apex_time_s": round(spot.apex_time_s, 4),
                "label": prediction.label,
                "scores": {k: round(v, 6) for k, v in prediction.scores.items()},
                "motion": round(spot.magnitude, 4),
                "threshold": round(spot.threshold, 4),
                "face": self.face_record(),
                **_extras(prediction, self.depth),
                "timing_ms": timing,
            }
        )
        if self.annotated is not None:
            self.annotated.show(f"{prediction.label} (apex {spot.apex})", int(self.source.fps))


#: Placeholder crop for colour frames the fused preprocessor already turned into model input.
_FUSED = np.zeros((0,), dtype=np.uint8)


def _extras(prediction: EventPrediction, depth: Optional[DepthSource]) -> Dict[str, Any]:
    """AU scores for models with an AU head; where depth came from for models that read it."""
    extra: Dict[str, Any] = {}
    if prediction.au_scores is not None:
        extra["aus"] = [n for n, p in prediction.au_scores.items() if p > 0.5]
        extra["au_scores"] = {k: round(v, 6) for k, v in prediction.au_scores.items()}
    if depth is not None:
        extra["depth"] = depth.name if depth.measured else "proxy (not measured)"
    return extra


def _summary(source: VideoSource, timer: StageTimer, wall_s: float, first, last, **extra):
    duration = 0.0
    if first is not None and last is not None:
        duration = last - first + 1.0 / source.fps
    record: Dict[str, Any] = {
        "type": "summary",
        "source": source.name,
        "frames": source.frames_read,
        "corrupt_frames": source.corrupt_frames,
        "fps": round(source.fps, 3),
        "duration_s": round(duration, 4),
        "wall_s": round(wall_s, 4),
        "realtime_factor": round(duration / wall_s, 3) if wall_s > 0 else None,
        "stage_ms": timer.means(),
    }
    record.update(extra)
    return record


def run_spotting(
    source: VideoSource,
    aligner: FaceAligner,
    classifier: EventClassifier,
    sink: JsonLines,
    *,
    annotated: Optional[AnnotatedVideo] = None,
    config: Optional[PipelineConfig] = None,
    depth: Optional[DepthSource] = None,
) -> Dict[str, Any]:
    """Spot and classify every micro-expression in an open source; returns the summary record."""
    check_depth(classifier.spec, depth)
    run = _Run(source, aligner, classifier, sink, annotated, config or PipelineConfig(), depth)
    start = time.perf_counter()
    first = last = None
    for frame in _frames(source, run.timer):
        first = frame.time_s if first is None else first
        last = frame.time_s
        run.process(frame)
    run.end_clip()
    if run.no_face_start is not None:
        index, time_s, reason = run.no_face_start
        sink.write(
            {
                "type": "no_face",
                "start_frame": index,
                "end_frame": None,
                "start_time_s": round(time_s, 4),
                "end_time_s": None,
                "reason": reason,
            }
        )
    summary = _summary(
        source,
        run.timer,
        time.perf_counter() - start,
        first,
        last,
        clips=run.clip + 1,
        events=run.events,
        no_face_frames=run.no_face_frames,
        face_px=round(float(np.median(run.face_sizes)), 1) if run.face_sizes else None,
        face_upscale=round(float(np.median(run.upscales)), 3) if run.upscales else None,
        followed=run.registered.choice if run.registered is not None else None,
        searches=run.tracker.searches,
        redetections=run.tracker.redetections,
        executor=classifier.executor,
    )
    sink.write(summary)
    return summary


def run_given(
    source: VideoSource,
    aligner: FaceAligner,
    classifier: EventClassifier,
    sink: JsonLines,
    *,
    onset: int,
    apex: int,
    depth: Optional[DepthSource] = None,
    preprocessor: Optional[Any] = None,
) -> Dict[str, Any]:
    """Classify one event whose onset and apex frame numbers are known; register on the onset.

    With a `preprocessor` from `edge.native.preproc.make_preprocessor`, colour frames go from the
    decoded frame to the model input in one fused warp + normalise (on the GPU with the CUDA
    library); `precropped` input keeps OpenCV's resize. Flow models keep the OpenCV warp too:
    their inputs are computed from uint8 onset/apex crops, which the fused kernel does not give.
    """
    if onset < 0 or apex <= onset:
        raise EdgeBuildError(f"--onset {onset} and --apex {apex}: need 0 <= onset < apex")
    check_depth(classifier.spec, depth)
    wanted = needed_frames(classifier.spec, onset, apex) | {onset}
    timer = StageTimer()
    start = time.perf_counter()
    kept: Dict[int, Frame] = {}
    first = last = None
    for frame in _frames(source, timer):
        first = frame.time_s if first is None else first
        last = frame.time_s
        if frame.index in wanted:
            kept[frame.index] = frame
        if frame.index >= apex:
            break
    for role, index in (("onset", onset), ("apex", apex)):
        if index not in kept:
            raise EdgeBuildError(
                f"{source.name}: --{role} frame {index} was not decoded (the video has {source.frames_read} readable frames)"
            )
    t0 = time.perf_counter_ns()
    registration = aligner.register(_rgb(kept[onset].bgr))
    t0 = timer.add("register", t0)
    if isinstance(registration, NoFace):
        raise EdgeBuildError(f"{source.name}: frame {onset}: {registration.reason}")
    box = registration.box
    fused = preprocessor is not None and registration.method != "precropped"
    if fused and classifier.spec.preprocessing.reads_flow:
        logger.info("flow inputs need uint8 crops: warping with OpenCV, not the fused kernel")
        fused = False
    normalized: Dict[str, np.ndarray] = {}
    if fused:
        prep = classifier.spec.preprocessing
        order = sorted(kept)
        # one call for onset, apex (and any clip frames): one staging pass and one sync on a GPU
        batch = preprocessor.warp_normalize_batch(  # type: ignore[union-attr]
            [kept[i].bgr for i in order],
            registration.matrix,
            registration.size,
            prep.mean,
            prep.std,
            prep.scale,
            "BGR",
            prep.color,
        )  # fmt: skip
        by_index = dict(zip(order, batch))
        roles = classifier.spec.preprocessing.frames
        for role, index in zip(roles, role_indices(roles, onset, apex)):
            if not is_depth(role):
                normalized[role] = by_index[index]
        crops: Dict[int, np.ndarray] = {}
    else:
        warped = warp_event(aligner, registration, {i: kept[i].bgr for i in sorted(kept)})
        crops = {i: _rgb(crop) for i, crop in warped.items()}
    timer.add("align+normalize" if fused else "align", t0)
    crop = (lambda i: _FUSED) if fused else crops.get
    frames = event_frames(classifier.spec, onset, apex, crop, registration, depth)
    if frames is None:  # every needed frame was decoded above; a gap means a corrupt video
        raise EdgeBuildError(f"{source.name}: frames between {onset} and {apex} were not decoded")
    frames = {r: f for r, f in frames.items() if f is not _FUSED}
    prediction = classifier(frames, normalized)
    timing = timer.means()
    timing.update(
        {"preprocess": round(prediction.preprocess_ms, 3), "infer": round(prediction.infer_ms, 3)}
    )
    sink.write(
        {
            "type": "event",
            "event": 1,
            "clip": 0,
            "source": "given",
            "onset_frame": onset,
            "apex_frame": apex,
            "onset_time_s": round(kept[onset].time_s, 4),
            "apex_time_s": round(kept[apex].time_s, 4),
            "label": prediction.label,
            "scores": {k: round(v, 6) for k, v in prediction.scores.items()},
            "face": {
                "px": round(max(box[2] - box[0], box[3] - box[1]), 1),
                "upscale": round(crop_upscale(registration), 3),
            },
            **_extras(prediction, depth),
            "timing_ms": timing,
        }
    )
    summary = _summary(
        source,
        timer,
        time.perf_counter() - start,
        first,
        last,
        clips=1,
        events=1,
        no_face_frames=0,
        executor=classifier.executor,
    )
    sink.write(summary)
    return summary
