"""The procedural toy world: coloured shapes moving, bouncing and rotating over varied backgrounds.

Seeded and exact: besides the frames, a clip carries per-object centres, angles, visible masks (after
occlusion) and full masks, so metrics on this world are ground truth rather than estimates. Every scene
is described by a prompt from a small vocabulary ("a red circle and a blue square on a striped
background"), and any prompt of that grammar can be turned back into a scene.

Coordinates: ``(x, y)`` with pixel centres at integers; angles as ``atan2`` in image coordinates.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

SHAPES = ("circle", "square", "triangle", "star")
OBJECT_COLORS = {
    "red": (225, 35, 35),
    "green": (35, 190, 60),
    "blue": (40, 80, 235),
    "yellow": (240, 215, 30),
    "purple": (160, 50, 210),
    "orange": (245, 135, 20),
    "cyan": (30, 205, 215),
    "white": (248, 248, 248),
}
BACKGROUNDS = ("plain", "striped", "checkered", "gradient", "dotted")
# Muted, darker colour pairs: never mistaken for an object's saturated colour.
BACKGROUND_PALETTES = (
    ((88, 92, 104), (116, 120, 132)),
    ((70, 92, 78), (96, 118, 102)),
    ((104, 88, 74), (132, 114, 96)),
    ((62, 70, 98), (88, 96, 124)),
    ((52, 52, 56), (84, 84, 90)),
)
VOCABULARY = ("<pad>", "a", "an", "and", "on", "background", ",", *OBJECT_COLORS, *SHAPES, *BACKGROUNDS)
SUPERSAMPLE = 4


@dataclass(frozen=True)
class WorldConfig:
    size: int = 64
    min_objects: int = 1
    max_objects: int = 3
    radius_range: tuple[float, float] = (7.0, 12.0)  # at size 64; scaled with size
    speed_range: tuple[float, float] = (0.4, 2.0)  # pixels per frame at size 64
    angular_speed_range: tuple[float, float] = (-0.12, 0.12)  # radians per frame
    leave_probability: float = 0.15  # scenes whose objects bounce off a boundary outside the frame

    @property
    def scale(self) -> float:
        return self.size / 64


@dataclass(frozen=True)
class ObjectSpec:
    shape: str
    color: str
    radius: float
    position: tuple[float, float]
    velocity: tuple[float, float]
    angle: float
    angular_velocity: float


@dataclass(frozen=True)
class Background:
    kind: str
    colors: tuple[tuple[int, int, int], tuple[int, int, int]]
    period: float = 8.0
    direction: float = 0.0


@dataclass(frozen=True)
class Scene:
    objects: tuple[ObjectSpec, ...]
    background: Background
    leaves_frame: bool = False

    @property
    def prompt(self) -> str:
        return describe(self)


@dataclass
class Clip:
    frames: np.ndarray  # uint8 [T, H, W, 3]
    centers: np.ndarray  # float [T, N, 2]
    angles: np.ndarray  # float [T, N]
    visible_masks: np.ndarray  # bool [T, N, H, W]: the full mask minus pixels of objects in front
    full_masks: np.ndarray  # bool [T, N, H, W]
    in_frame: np.ndarray  # bool [T, N]
    scene: Scene = field(repr=False)

    @property
    def prompt(self) -> str:
        return self.scene.prompt


@dataclass(frozen=True)
class PromptSpec:
    objects: tuple[tuple[str, str], ...]  # (color, shape)
    background: str


# ----- prompts -----------------------------------------------------------------------------------


def describe(scene: Scene) -> str:
    """The scene's prompt: "a red circle, a blue square and a green star on a dotted background"."""
    names = [f"{_article(o.color)} {o.color} {o.shape}" for o in scene.objects]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{listed} on a {scene.background.kind} background"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _words(prompt: str) -> list[str]:
    return re.sub(",", " , ", prompt.lower()).split()


def tokenize(prompt: str, max_len: int = 16) -> list[int]:
    """Token ids of ``prompt`` padded with 0 to ``max_len``."""
    ids = []
    for word in _words(prompt):
        if word not in VOCABULARY:
            raise ValueError(
                f"unknown word {word!r} in prompt; the vocabulary is: {' '.join(VOCABULARY[1:])}"
            )
        ids.append(VOCABULARY.index(word))
    if len(ids) > max_len:
        raise ValueError(f"the prompt has {len(ids)} tokens; at most {max_len} fit")
    return ids + [0] * (max_len - len(ids))


def parse_prompt(prompt: str) -> PromptSpec:
    """The objects and background a prompt of the toy grammar names."""
    match = re.fullmatch(r"\s*(.+?)\s+on\s+an?\s+(\w+)\s+background\s*", prompt.lower())
    if not match or match.group(2) not in BACKGROUNDS:
        raise ValueError(
            f"cannot read {prompt!r}: expected e.g. 'a red circle and a blue square on a striped background' "
            f"(backgrounds: {', '.join(BACKGROUNDS)})"
        )
    objects = []
    for part in re.split(r"\s*,\s*|\s+and\s+", match.group(1)):
        words = part.split()
        if (
            len(words) != 3
            or words[0] not in ("a", "an")
            or words[1] not in OBJECT_COLORS
            or words[2] not in SHAPES
        ):
            raise ValueError(
                f"cannot read {part!r} in {prompt!r}: expected 'a <colour> <shape>' with colours "
                f"{', '.join(OBJECT_COLORS)} and shapes {', '.join(SHAPES)}"
            )
        objects.append((words[1], words[2]))
    return PromptSpec(tuple(objects), match.group(2))


# ----- scenes ------------------------------------------------------------------------------------


def _sample_object(rng: np.random.Generator, config: WorldConfig, color: str, shape: str) -> ObjectSpec:
    s = config.scale
    radius = float(rng.uniform(*config.radius_range)) * s
    margin = radius + 1
    position = tuple(float(v) for v in rng.uniform(margin, config.size - 1 - margin, 2))
    speed = float(rng.uniform(*config.speed_range)) * s
    heading = float(rng.uniform(0, 2 * math.pi))
    velocity = (speed * math.cos(heading), speed * math.sin(heading))
    spin = float(rng.uniform(*config.angular_speed_range)) if shape != "circle" else 0.0
    return ObjectSpec(shape, color, radius, position, velocity, float(rng.uniform(0, 2 * math.pi)), spin)


def _sample_background(rng: np.random.Generator, config: WorldConfig, kind: str) -> Background:
    palette = BACKGROUND_PALETTES[int(rng.integers(len(BACKGROUND_PALETTES)))]
    if rng.random() < 0.5:
        palette = palette[::-1]
    period = float(rng.uniform(5, 10)) * config.scale
    direction = float(rng.choice([0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4]))
    return Background(kind, palette, period, direction)


def sample_scene(rng: np.random.Generator, config: WorldConfig = WorldConfig()) -> Scene:
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    pairs = [(c, s) for c in OBJECT_COLORS for s in SHAPES]
    chosen = rng.choice(len(pairs), count, replace=False)
    colors_used: set[str] = set()
    picked = []
    for index in chosen:  # distinct colours keep objects separable by colour
        color, shape = pairs[int(index)]
        while color in colors_used:
            color = list(OBJECT_COLORS)[int(rng.integers(len(OBJECT_COLORS)))]
        colors_used.add(color)
        picked.append((color, shape))
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    return _scene(rng, config, tuple(picked), kind)


def scene_from_prompt(prompt: str, rng: np.random.Generator, config: WorldConfig = WorldConfig()) -> Scene:
    """A scene with exactly the objects and background that ``prompt`` names (random placement)."""
    spec = parse_prompt(prompt)
    return _scene(rng, config, spec.objects, spec.background, allow_leaving=False)


def _scene(rng, config, objects, kind, allow_leaving: bool = True) -> Scene:
    specs = tuple(_sample_object(rng, config, c, s) for c, s in objects)
    leaves = allow_leaving and bool(rng.random() < config.leave_probability)
    return Scene(specs, _sample_background(rng, config, kind), leaves)


# ----- motion ------------------------------------------------------------------------------------


def _bounce(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Position of a point moving freely, reflected between ``low`` and ``high`` (a triangle wave)."""
    span = high - low
    u = np.mod(x - low, 2 * span)
    return low + np.where(u <= span, u, 2 * span - u)


def trajectory(
    obj: ObjectSpec, frames: int, config: WorldConfig, leaves_frame: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Centres ``[T, 2]`` and angles ``[T]`` of an object over ``frames`` frames."""
    t = np.arange(frames, dtype=np.float64)
    margin = -2.5 * obj.radius if leaves_frame else obj.radius
    low, high = margin, config.size - 1 - margin
    xy = np.stack([_bounce(obj.position[i] + obj.velocity[i] * t, low, high) for i in range(2)], axis=1)
    return xy, obj.angle + obj.angular_velocity * t


# ----- rendering ---------------------------------------------------------------------------------


def _polygon(shape: str, radius: float) -> np.ndarray:
    """Vertices ``[K, 2]`` of a polygonal shape at angle 0, centred at the origin."""
    if shape == "square":
        k, r, start = 4, radius, math.pi / 4
        return np.array(
            [[r * math.cos(start + i * math.pi / 2), r * math.sin(start + i * math.pi / 2)] for i in range(k)]
        )
    if shape == "triangle":
        return np.array(
            [
                [
                    radius * math.cos(-math.pi / 2 + i * 2 * math.pi / 3),
                    radius * math.sin(-math.pi / 2 + i * 2 * math.pi / 3),
                ]
                for i in range(3)
            ]
        )
    if shape == "star":
        points = []
        for i in range(10):
            r = radius if i % 2 == 0 else radius * 0.45
            a = -math.pi / 2 + i * math.pi / 5
            points.append([r * math.cos(a), r * math.sin(a)])
        return np.array(points)
    raise ValueError(f"unknown shape {shape!r}; shapes: {', '.join(SHAPES)}")


def _inside_polygon(x: np.ndarray, y: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test, vectorised over points."""
    inside = np.zeros(x.shape, bool)
    vx, vy = vertices[:, 0], vertices[:, 1]
    for i in range(len(vertices)):
        x1, y1, x2, y2 = vx[i - 1], vy[i - 1], vx[i], vy[i]
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < x_at)
    return inside


def shape_template(
    shape: str, radius: float, angle: float, size: int | tuple[int, int], center: tuple[float, float]
):
    """Anti-aliased coverage ``float [H, W]`` of a shape placed at ``center``, rotated by ``angle``."""
    height, width = (size, size) if isinstance(size, int) else size
    coverage = np.zeros((height, width), np.float32)
    reach = radius + 1.5
    x0, x1 = max(0, int(math.floor(center[0] - reach))), min(width, int(math.ceil(center[0] + reach)) + 1)
    y0, y1 = max(0, int(math.floor(center[1] - reach))), min(height, int(math.ceil(center[1] + reach)) + 1)
    if x0 >= x1 or y0 >= y1:
        return coverage
    offsets = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
    xs = (np.arange(x0, x1)[:, None] + offsets[None, :]).ravel() - center[0]
    ys = (np.arange(y0, y1)[:, None] + offsets[None, :]).ravel() - center[1]
    gx, gy = np.meshgrid(xs, ys)
    cos, sin = math.cos(angle), math.sin(angle)
    lx, ly = cos * gx + sin * gy, -sin * gx + cos * gy  # into the shape's own frame
    if shape == "circle":
        inside = lx**2 + ly**2 <= radius**2
    else:
        inside = _inside_polygon(lx, ly, _polygon(shape, radius))
    h, w = y1 - y0, x1 - x0
    coverage[y0:y1, x0:x1] = inside.reshape(h, SUPERSAMPLE, w, SUPERSAMPLE).mean(axis=(1, 3))
    return coverage


def render_background(background: Background, size: int) -> np.ndarray:
    """``float [H, W, 3]`` in 0..255."""
    y, x = np.mgrid[:size, :size].astype(np.float64)
    a, b = (np.array(c, np.float64) for c in background.colors)
    along = x * math.cos(background.direction) + y * math.sin(background.direction)
    if background.kind == "plain":
        weight = np.zeros_like(x)
    elif background.kind == "striped":
        weight = (np.floor(along / background.period) % 2).astype(np.float64)
    elif background.kind == "checkered":
        weight = ((np.floor(x / background.period) + np.floor(y / background.period)) % 2).astype(np.float64)
    elif background.kind == "gradient":
        weight = (along - along.min()) / max(along.max() - along.min(), 1e-9)
    elif background.kind == "dotted":
        p = background.period * 1.5
        dx, dy = np.mod(x, p) - p / 2, np.mod(y, p) - p / 2
        weight = (dx**2 + dy**2 <= (p / 5) ** 2).astype(np.float64)
    else:
        raise ValueError(f"unknown background {background.kind!r}; backgrounds: {', '.join(BACKGROUNDS)}")
    return a * (1 - weight[..., None]) + b * weight[..., None]


def render_clip(scene: Scene, num_frames: int, config: WorldConfig = WorldConfig()) -> Clip:
    """Render ``num_frames`` frames with ground truth; later objects are in front."""
    size, count = config.size, len(scene.objects)
    background = render_background(scene.background, size)
    paths = [trajectory(o, num_frames, config, scene.leaves_frame) for o in scene.objects]
    centers = np.stack([p[0] for p in paths], axis=1) if count else np.zeros((num_frames, 0, 2))
    angles = np.stack([p[1] for p in paths], axis=1) if count else np.zeros((num_frames, 0))
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    visible = np.zeros((num_frames, count, size, size), bool)
    full = np.zeros((num_frames, count, size, size), bool)
    for t in range(num_frames):
        image = background.copy()
        alphas = []
        for i, obj in enumerate(scene.objects):
            alpha = shape_template(obj.shape, obj.radius, angles[t, i], size, tuple(centers[t, i]))
            image = image * (1 - alpha[..., None]) + np.array(OBJECT_COLORS[obj.color]) * alpha[..., None]
            alphas.append(alpha)
        frames[t] = np.clip(np.round(image), 0, 255).astype(np.uint8)
        covered = np.zeros((size, size), bool)
        for i in reversed(range(count)):  # a pixel belongs to the front-most object covering it
            full[t, i] = alphas[i] >= 0.5
            visible[t, i] = full[t, i] & ~covered
            covered |= full[t, i]
    in_frame = full.any(axis=(2, 3))
    return Clip(frames, centers, angles, visible, full, in_frame, scene)


def segment_object(
    frame: np.ndarray, color: str | tuple[int, int, int], tolerance: float = 70.0
) -> np.ndarray:
    """Pixels of ``frame`` within ``tolerance`` (RGB distance) of an object colour."""
    rgb = np.array(OBJECT_COLORS[color] if isinstance(color, str) else color, np.float64)
    return np.linalg.norm(frame.astype(np.float64) - rgb, axis=-1) <= tolerance
