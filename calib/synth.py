"""Synthetic micro-expressions from real face photographs, for calibration, validation and the
demo model.

Real data cannot ship (dataset licences) and nothing may be downloaded, so clips are made from
the public-domain face photographs packaged with scikit-image (`calib.faces`):

* identity variation per pseudo-subject (photo, mirror, scale, rotation, colour gains, lighting
  gradient, gamma) plus small per-clip pose jitter and per-frame sensor noise;
* facial action units (AU1, AU2, AU4, AU6, AU9, AU12, AU14, AU15, AU17, AU26) imitated by smooth
  local displacement fields centred on annotated landmarks, at micro-expression amplitude
  (about 1-2 px at 224x224), ramped in from onset to apex and out to offset;
* CASME II-style emotions as AU combinations (happiness = AU6+12, surprise = AU1+2(+26), ...).

Everything is deterministic in (seed, sample index). `measure_motion` measures the motion that
was actually produced with optical flow, so amplitudes are checked rather than assumed.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from calib.faces import FACE_PHOTOS
from calib.roles import frames_for_roles, needs_depth, ramp_weight
from edge._lazy import require
from edge.depth import face_depth_proxy, relative_depth
from edge.frames import is_depth, role_position

__all__ = [
    "LANDMARKS",
    "ACTION_UNITS",
    "EMOTION_AUS",
    "CLASSES",
    "SynthSample",
    "Conditions",
    "HARD",
    "generate",
    "subject_schedule",
    "amplitude_for",
    "MICRO_AMPLITUDE_PX",
    "MACRO_AMPLITUDE_PX",
    "render_clip",
    "render_depth",
    "write_generic",
    "measure_motion",
]

Point = Tuple[float, float]

#: Landmarks in the 224x224 face crop of `calib.faces.face_crop` (x, y), annotated by hand on a
#: 3x enlarged grid; `_l` is image-left. The cameraman is in profile, so his far-side points are
#: approximate.
LANDMARKS: Dict[str, Dict[str, Point]] = {
    "astronaut": {
        "brow_inner_l": (92, 75), "brow_outer_l": (67, 73), "brow_inner_r": (127, 77),
        "brow_outer_r": (155, 80), "eye_l": (80, 85), "eye_r": (142, 88),
        "nose_wing_l": (95, 122), "nose_wing_r": (118, 123), "mouth_l": (82, 140),
        "mouth_r": (137, 140), "lip_upper": (108, 140), "lip_lower": (108, 157),
        "chin": (110, 187), "cheek_l": (72, 127), "cheek_r": (143, 128),
    },
    "cameraman": {
        "brow_inner_l": (152, 102), "brow_outer_l": (125, 100), "brow_inner_r": (162, 104),
        "brow_outer_r": (168, 106), "eye_l": (137, 112), "eye_r": (160, 114),
        "nose_wing_l": (150, 150), "nose_wing_r": (160, 152), "mouth_l": (132, 173),
        "mouth_r": (152, 170), "lip_upper": (150, 167), "lip_lower": (148, 179),
        "chin": (143, 200), "cheek_l": (110, 143), "cheek_r": (150, 145),
    },
}  # fmt: skip

#: AU -> (landmark, (outward, down)) moves; `outward` points away from the face midline.
ACTION_UNITS: Dict[str, Tuple[Tuple[str, Point], ...]] = {
    "AU1": (("brow_inner_l", (0.0, -1.0)), ("brow_inner_r", (0.0, -1.0))),
    "AU2": (("brow_outer_l", (0.0, -1.0)), ("brow_outer_r", (0.0, -1.0))),
    "AU4": (("brow_inner_l", (-0.7, 0.6)), ("brow_inner_r", (-0.7, 0.6))),
    "AU6": (("cheek_l", (0.0, -0.6)), ("cheek_r", (0.0, -0.6))),
    "AU9": (("nose_wing_l", (0.0, -0.8)), ("nose_wing_r", (0.0, -0.8)), ("lip_upper", (0.0, -0.3))),
    "AU12": (("mouth_l", (0.6, -0.8)), ("mouth_r", (0.6, -0.8))),
    "AU14": (("mouth_l", (0.8, 0.0)), ("mouth_r", (0.8, 0.0))),
    "AU15": (("mouth_l", (0.0, 1.0)), ("mouth_r", (0.0, 1.0))),
    "AU17": (("chin", (0.0, -0.8)), ("lip_lower", (0.0, -0.6))),
    "AU26": (("chin", (0.0, 1.0)), ("lip_lower", (0.0, 0.8))),
}  # fmt: skip

#: CASME II 5-class emotions (MMNet's label order) as alternative AU combinations.
EMOTION_AUS: Dict[str, Tuple[Tuple[str, ...], ...]] = {
    "happiness": (("AU6", "AU12"), ("AU12",)),
    "repression": (("AU15", "AU17"), ("AU14",), ("AU17",)),
    "disgust": (("AU9",), ("AU4", "AU9")),
    "surprise": (("AU1", "AU2"), ("AU1", "AU2", "AU26")),
    "others": (("AU4",),),
}
CLASSES: Tuple[str, ...] = tuple(EMOTION_AUS)
# Composite classes of the 3-class protocols (MMNet CASME II 3-class, MEGC): same AU recipes.
EMOTION_AUS["negative"] = EMOTION_AUS["repression"] + EMOTION_AUS["disgust"]
EMOTION_AUS["positive"] = EMOTION_AUS["happiness"]
# The other basic expressions (BU-3DFE's six, for AFNet-M), from the usual EMFACS prototypes
# restricted to the AUs above; macro-expression models calibrate on them at larger amplitude.
EMOTION_AUS["anger"] = (("AU4", "AU17"), ("AU4", "AU9", "AU17"))
EMOTION_AUS["fear"] = (("AU1", "AU2", "AU4"), ("AU1", "AU4", "AU26"))
EMOTION_AUS["sadness"] = (("AU1", "AU4", "AU15"), ("AU1", "AU15", "AU17"))

SIZE = 224
#: Expression amplitude (px at 224x224): micro-expressions for models that see the motion from an
#: earlier frame to the apex; macro-expressions for models that read the apex alone (AFNet-M),
#: which must see the expression itself.
MICRO_AMPLITUDE_PX = (1.0, 2.0)
MACRO_AMPLITUDE_PX = (6.0, 10.0)


def amplitude_for(roles: Sequence[str]) -> Tuple[float, float]:
    """The expression amplitude synthetic data needs for a model reading frame `roles`."""
    colour = [role_position(r, roles) for r in roles if not is_depth(r)]
    return MICRO_AMPLITUDE_PX if any(p < 1.0 for p in colour) else MACRO_AMPLITUDE_PX


@dataclass(frozen=True)
class SubjectStyle:
    """What makes a pseudo-subject look like one person across its clips."""

    photo: str
    mirror: bool
    scale: float
    rotation_deg: float
    gains: Tuple[float, float, float]
    light_angle: float
    light_strength: float
    gamma: float


@dataclass(frozen=True)
class SynthSample:
    """One synthetic clip's onset and apex (RGB uint8), the frames of any other roles, its label
    and generation facts."""

    sample_id: str
    subject: str
    photo: str
    emotion: str
    aus: Tuple[str, ...]
    amplitude_px: float
    onset: np.ndarray
    apex: np.ndarray
    #: role -> frame for the roles asked of `generate` (colour HxWx3, depth HxW relative u8)
    frames: Dict[str, np.ndarray]


def _subject_style(seed: int, subject: int) -> SubjectStyle:
    rng = np.random.default_rng([seed, 1_000_003, subject])
    photos = sorted(FACE_PHOTOS)
    return SubjectStyle(
        photo=photos[subject % len(photos)],
        mirror=bool(subject // len(photos) % 2),
        scale=float(rng.uniform(0.92, 1.08)),
        rotation_deg=float(rng.uniform(-6, 6)),
        gains=tuple(float(g) for g in rng.uniform(0.85, 1.15, 3)),  # type: ignore[arg-type]
        light_angle=float(rng.uniform(0, 2 * math.pi)),
        light_strength=float(rng.uniform(0.0, 0.25)),
        gamma=float(rng.uniform(0.85, 1.2)),
    )


def _similarity(angle_deg: float, scale: float, shift: Point, mirror: bool) -> np.ndarray:
    """2x3 matrix about the crop centre: rotate, scale, optionally mirror, then shift."""
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    m = np.array([[c, -s], [s, c]])
    if mirror:
        m = m @ np.array([[-1.0, 0.0], [0.0, 1.0]])
    centre = np.array([SIZE / 2.0, SIZE / 2.0])
    t = centre + np.asarray(shift) - m @ centre
    return np.hstack([m, t[:, None]])


def _photo_to_crop(photo: str) -> np.ndarray:
    top, bottom, left, right = FACE_PHOTOS[photo].box
    sx, sy = SIZE / (right - left), SIZE / (bottom - top)
    return np.array([[sx, 0.0, -left * sx], [0.0, sy, -top * sy]])


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    full = np.vstack([inner, [0, 0, 1]])
    return (np.vstack([outer, [0, 0, 1]]) @ full)[:2]


def _landmarks(photo: str, variation: np.ndarray, mirror: bool) -> Dict[str, Point]:
    points = {}
    for name, (x, y) in LANDMARKS[photo].items():
        nx, ny = variation @ np.array([x, y, 1.0])
        if mirror:  # image-left and image-right swap sides
            name = (
                name[:-2] + ("_r" if name.endswith("_l") else "_l")
                if name[-2:] in ("_l", "_r")
                else name
            )
        points[name] = (float(nx), float(ny))
    return points


def _displacement(points: Dict[str, Point], aus: Sequence[str], amplitude: float):
    """Smooth displacement field (dx, dy) for the AUs at `amplitude` pixels."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    eye_l, eye_r = np.array(points["eye_l"]), np.array(points["eye_r"])
    sigma = max(8.0, 0.22 * float(np.linalg.norm(eye_r - eye_l)))
    midline = 0.5 * (eye_l[0] + eye_r[0])
    dx = np.zeros((SIZE, SIZE), np.float32)
    dy = np.zeros((SIZE, SIZE), np.float32)
    for au in aus:
        for landmark, (outward, down) in ACTION_UNITS[au]:
            cx, cy = points[landmark]
            side = 0.0 if landmark in ("chin", "lip_upper", "lip_lower") else np.sign(cx - midline)
            bump = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
            dx += amplitude * outward * side * bump
            dy += amplitude * down * bump
    magnitude = np.sqrt(dx**2 + dy**2)
    peak = float(magnitude.max())
    if peak > 0:  # overlapping bumps must not exceed the requested amplitude
        dx *= amplitude / peak
        dy *= amplitude / peak
    # Far tails are below remap's 1/32 px resolution; zero them so the frame border is untouched.
    far = magnitude < 1e-3 * peak
    dx[far] = 0.0
    dy[far] = 0.0
    return dx, dy


def _appearance(image: np.ndarray, style: SubjectStyle) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE - 0.5
    ramp = 1.0 + style.light_strength * (
        math.cos(style.light_angle) * xx + math.sin(style.light_angle) * yy
    )
    out = image.astype(np.float32) / 255.0
    gains = np.asarray(style.gains, dtype=np.float32)
    out = np.power(np.clip(out, 0, 1), np.float32(style.gamma)) * gains * ramp[..., None]
    return out.astype(np.float32)  # cv2.remap is exact on float32, not on float64


def _finish(linear: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    noisy = linear * 255.0 + rng.normal(0.0, noise, linear.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Conditions:
    """Capture conditions a clip can add on top of the standard rendering (all off by default).

    They make the hard validation tier (`quantize.data`): the head moves between onset and apex
    (pixels / degrees / relative scale at the apex, drawn uniformly in +-range), the light
    changes (relative gain and gradient at the apex), and the frames pass a JPEG round trip at
    a quality drawn from `jpeg_quality`, as a compressed video would.
    """

    head_shift_px: float = 0.0
    head_rotation_deg: float = 0.0
    head_scale: float = 0.0
    light_change: float = 0.0
    jpeg_quality: Optional[Tuple[int, int]] = None

    def to_dict(self) -> Dict[str, object]:
        return {
            "head_shift_px": self.head_shift_px,
            "head_rotation_deg": self.head_rotation_deg,
            "head_scale": self.head_scale,
            "light_change": self.light_change,
            "jpeg_quality": list(self.jpeg_quality) if self.jpeg_quality else None,
        }


#: The hard validation tier's conditions: JPEG compression at quality 50-80, which (with smaller
#: expressions) takes the demo MMNet below 95% UAR without reducing it to chance; head motion
#: or a light change between onset and apex as small as 0.25 px or 2% already does.
HARD = Conditions(jpeg_quality=(50, 80))


@dataclass(frozen=True)
class _Capture:
    """One clip's draw of `Conditions`: the apex's head motion, light change and JPEG quality."""

    motion: np.ndarray  # 2x3 similarity at the apex, about the crop centre
    gain: float
    gradient: Tuple[float, float]
    jpeg_quality: Optional[int]


@dataclass(frozen=True)
class _ClipPlan:
    style: SubjectStyle
    variation: np.ndarray
    aus: Tuple[str, ...]
    amplitude: float
    noise: float
    capture: Optional[_Capture] = None


def _plan(seed: int, index: int, subject: int, emotion: str, amplitude_range) -> _ClipPlan:
    style = _subject_style(seed, subject)
    rng = np.random.default_rng([seed, index])
    combos = EMOTION_AUS[emotion]
    aus = combos[int(rng.integers(len(combos)))]
    variation = _similarity(
        style.rotation_deg + float(rng.uniform(-3, 3)),
        style.scale * float(rng.uniform(0.97, 1.03)),
        (float(rng.uniform(-4, 4)), float(rng.uniform(-4, 4))),
        style.mirror,
    )
    return _ClipPlan(
        style=style,
        variation=variation,
        aus=aus,
        amplitude=float(rng.uniform(*amplitude_range)),
        noise=float(rng.uniform(0.5, 2.0)),
    )


def _draw_capture(conditions: Conditions, seed: int, index: int) -> Optional[_Capture]:
    """Its own random stream, so clips without conditions render exactly as before."""
    if conditions == Conditions():
        return None
    rng = np.random.default_rng([seed, index, 13])
    motion = _similarity(
        float(rng.uniform(-1, 1)) * conditions.head_rotation_deg,
        1.0 + float(rng.uniform(-1, 1)) * conditions.head_scale,
        tuple(float(v) * conditions.head_shift_px for v in rng.uniform(-1, 1, 2)),  # type: ignore[arg-type]
        False,
    )
    angle = float(rng.uniform(0, 2 * math.pi))
    strength = float(rng.uniform(0, 1)) * conditions.light_change
    quality = conditions.jpeg_quality
    return _Capture(
        motion=motion,
        gain=1.0 + float(rng.uniform(-1, 1)) * conditions.light_change,
        gradient=(strength * math.cos(angle), strength * math.sin(angle)),
        jpeg_quality=int(rng.integers(quality[0], quality[1] + 1)) if quality else None,
    )


def _partial_motion(capture: _Capture, weight: float) -> np.ndarray:
    """The head's pose at ramp `weight` (0 at onset, 1 at apex): the motion interpolated."""
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return identity + float(weight) * (capture.motion - identity)


def _captured(image: np.ndarray, capture: Optional[_Capture], weight: float, cv2) -> np.ndarray:
    """The float frame as the camera sees it at ramp `weight`: head moved, light changed."""
    if capture is None or weight == 0.0:
        return image
    moved = cv2.warpAffine(image, _partial_motion(capture, weight), (SIZE, SIZE),
                           flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)  # fmt: skip
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE - 0.5
    light = 1.0 + weight * (
        capture.gain - 1.0 + capture.gradient[0] * xx + capture.gradient[1] * yy
    )
    return (moved * light[..., None]).astype(np.float32)


def _compressed(frame: np.ndarray, capture: Optional[_Capture], cv2) -> np.ndarray:
    """JPEG round trip (OpenCV's default 4:2:0 chroma), as a compressed camera stream does."""
    if capture is None or capture.jpeg_quality is None:
        return frame
    ok, data = cv2.imencode(
        ".jpg", frame[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, capture.jpeg_quality]
    )
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode a synthetic frame")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1].copy()


def render_clip(
    plan: _ClipPlan, profile: Sequence[float], *, seed: int, index: int
) -> List[np.ndarray]:
    """Frames whose AU displacement is `amplitude * profile[i]` (profile 0 = neutral)."""
    cv2 = require("cv2", purpose="rendering synthetic faces")
    photo = FACE_PHOTOS[plan.style.photo].load()
    matrix = _compose(plan.variation, _photo_to_crop(plan.style.photo))
    neutral = cv2.warpAffine(photo, matrix, (SIZE, SIZE), flags=cv2.INTER_CUBIC,
                             borderMode=cv2.BORDER_REFLECT)  # fmt: skip
    points = _landmarks(plan.style.photo, plan.variation, plan.style.mirror)
    dx, dy = _displacement(points, plan.aus, 1.0)
    base = _appearance(neutral, plan.style)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    rng = np.random.default_rng([seed, index, 7])
    frames = []
    for weight in profile:
        a = plan.amplitude * float(weight)
        if a == 0.0:
            moved = base
        else:  # remap samples the source at (x - dx, y - dy): content moves by (+dx, +dy)
            moved = cv2.remap(base, xx - a * dx, yy - a * dy, interpolation=cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_REFLECT)  # fmt: skip
        moved = _captured(moved, plan.capture, float(weight), cv2)
        frames.append(_compressed(_finish(moved, rng, plan.noise), plan.capture, cv2))
    return frames


def render_depth(
    plan: _ClipPlan, profile: Sequence[float], *, seed: int, index: int, range_mm: float
) -> List[np.ndarray]:
    """Relative depth frames of the face-shaped proxy, posed and deformed like the colour clip.

    A proxy, not a measurement: the photographs carry no depth. It gives depth-reading models
    (AFNet-M) a face-like input whose pose and AU motion match the colour frames.
    """
    cv2 = require("cv2", purpose="rendering synthetic depth")
    surface = cv2.warpAffine(face_depth_proxy((SIZE, SIZE)), plan.variation, (SIZE, SIZE),
                             flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    points = _landmarks(plan.style.photo, plan.variation, plan.style.mirror)
    dx, dy = _displacement(points, plan.aus, 1.0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    rng = np.random.default_rng([seed, index, 11])
    frames = []
    for weight in profile:
        a = plan.amplitude * float(weight)
        moved = surface if a == 0.0 else cv2.remap(
            surface, xx - a * dx, yy - a * dy, interpolation=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        if plan.capture is not None and weight:  # the head moves the depth surface too
            moved = cv2.warpAffine(moved, _partial_motion(plan.capture, float(weight)),
                                   (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        noisy = moved + rng.normal(0.0, 0.5, moved.shape).astype(np.float32)  # sensor noise, mm
        frames.append(relative_depth(noisy, range_mm))
    return frames


def _schedule(n: int, subjects: int, classes: Sequence[str]) -> List[Tuple[int, str]]:
    """(subject, emotion) per sample index: classes cycle exactly, and the subject shifts by one
    every class cycle, so every subject meets every class whatever the two counts are."""
    return [_scheduled(i, subjects, classes) for i in range(n)]


def _scheduled(index: int, subjects: int, classes: Sequence[str]) -> Tuple[int, str]:
    c = len(classes)
    return (index % c + index // c) % subjects, classes[index % c]


def subject_schedule(indices: Iterable[int], subjects: int, classes: Sequence[str]) -> List[str]:
    """The pseudo-subject ("s03") that `generate` gives each sample index, without rendering:
    how a trainer finds the clips of its held-out subjects."""
    return [f"s{_scheduled(i, subjects, classes)[0]:02d}" for i in indices]


def generate(
    n: int,
    *,
    seed: int = 0,
    subjects: int = 8,
    classes: Sequence[str] = CLASSES,
    amplitude_px: Tuple[float, float] = (1.0, 2.0),
    start: int = 0,
    roles: Sequence[str] = ("onset", "apex"),
    depth_range_mm: float = 100.0,
    indices: Optional[Sequence[int]] = None,
    conditions: Conditions = Conditions(),
    subject_offset: int = 0,
) -> List[SynthSample]:
    """`n` clips (indices `start`..`start+n-1`, or exactly `indices` when given), balanced over
    classes and subjects, rendered at the frame `roles` a model reads (`edge.frames`): onset,
    apex, clip frames, depth. `conditions` adds head motion, light change and compression;
    `subject_offset` numbers the pseudo-subjects from there (new identities, e.g. s16..s23)."""
    unknown = [c for c in classes if c not in EMOTION_AUS]
    if unknown:
        raise ValueError(f"no AU recipe for classes {unknown}")
    samples = []
    for index in range(start, start + n) if indices is None else indices:
        subject, emotion = _scheduled(index, subjects, classes)
        subject += subject_offset
        plan = _plan(seed, index, subject, emotion, amplitude_px)
        capture = _draw_capture(conditions, seed, index)
        if capture is not None:
            plan = dataclasses.replace(plan, capture=capture)
        # Onset and apex first, in this order, so pair-reading models see the same frames
        # whatever else is rendered.
        extra = sorted({role_position(r, roles) for r in roles} - {0.0, 1.0})
        weights = [0.0, 1.0] + [ramp_weight(p) for p in extra]
        rendered = dict(zip([0.0, 1.0] + extra, render_clip(plan, weights, seed=seed, index=index)))
        depth = {}
        if needs_depth(roles):
            depth = dict(zip([0.0, 1.0] + extra, render_depth(
                plan, weights, seed=seed, index=index, range_mm=depth_range_mm)))  # fmt: skip
        onset, apex = rendered[0.0], rendered[1.0]
        frames = frames_for_roles(
            roles, rendered.__getitem__, depth.__getitem__ if depth else None,
            where=f"synthetic sample {index}",
        )  # fmt: skip
        samples.append(
            SynthSample(
                sample_id=f"synthetic/s{subject:02d}/{index:05d}",
                subject=f"s{subject:02d}",
                photo=plan.style.photo,
                emotion=emotion,
                aus=plan.aus,
                amplitude_px=plan.amplitude,
                onset=onset,
                apex=apex,
                frames=frames,
            )
        )
    return samples


def _profile(frames: int, apex: int) -> List[float]:
    """0 at onset, 1 at apex, back towards 0 at the last frame (raised-cosine ramps)."""
    out = []
    for i in range(frames):
        if i <= apex:
            t = i / max(apex, 1)
        else:
            t = 1.0 - (i - apex) / max(frames - 1 - apex, 1)
        out.append(0.5 - 0.5 * math.cos(math.pi * t))
    return out


def write_generic(
    root: Path,
    n_clips: int,
    *,
    seed: int = 0,
    subjects: int = 4,
    frames: int = 9,
    apex_frame: int = 4,
) -> Path:
    """Write clips as `root/<clip>/img<N>.jpg` plus `root/labels.csv` (the generic layout)."""
    cv2 = require("cv2", purpose="writing synthetic clips")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    schedule = _schedule(n_clips, subjects, CLASSES)
    for index in range(n_clips):
        subject, emotion = schedule[index]
        plan = _plan(seed, index, subject, emotion, (1.0, 2.0))
        clip = f"clip{index:04d}"
        (root / clip).mkdir(exist_ok=True)
        for number, frame in enumerate(
            render_clip(plan, _profile(frames, apex_frame), seed=seed, index=index), start=1
        ):
            path = root / clip / f"img{number}.jpg"
            cv2.imwrite(str(path), frame[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        rows.append({"clip": clip, "subject": f"s{subject:02d}", "onset": 1,
                     "apex": apex_frame + 1, "offset": frames, "label": emotion})  # fmt: skip
    with open(root / "labels.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["clip"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def measure_motion(onset: np.ndarray, apex: np.ndarray, *, percentile: float = 99.9) -> float:
    """Peak motion (px) between two RGB frames by Farneback optical flow (high percentile, so
    sensor noise and single outliers do not dominate)."""
    cv2 = require("cv2", purpose="measuring motion")
    a = cv2.cvtColor(onset, cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(apex, cv2.COLOR_RGB2GRAY)
    flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 5, 5, 1.2, 0)
    return float(np.percentile(np.linalg.norm(flow, axis=2), percentile))
