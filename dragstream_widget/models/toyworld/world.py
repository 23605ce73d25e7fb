"""The procedural toy world: coloured shapes moving, bouncing and rotating over varied backgrounds.

Seeded and exact: besides the frames, a clip carries per-object centres, angles, visible masks (after
occlusion) and full masks, so metrics on this world are ground truth rather than estimates. Every scene
is described by a prompt from a small vocabulary ("a red circle and a blue square on a striped
background"), and any prompt of that grammar can be turned back into a scene.

Coordinates: ``(x, y)`` with pixel centres at integers; angles as ``atan2`` in image coordinates (x to the
right, y down), so a positive angular velocity turns a shape clockwise on screen. Objects are drawn in
list order: later objects are in front.

The vocabulary's order and the palettes are part of the shipped model's training distribution: changing
them means retraining the embedded weights.
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
VOCABULARY: tuple[str, ...] = (
    "<pad>",
    "a",
    "an",
    "and",
    "on",
    "background",
    ",",
    *OBJECT_COLORS,
    *SHAPES,
    *BACKGROUNDS,
)
SUPERSAMPLE = 4  # samples per pixel along each axis
STAR_INNER_RATIO = 0.45  # inner over outer radius of the five-pointed star
LEAVE_MARGIN = 2.5  # leaving scenes bounce this many radii outside the frame
_WINDOW_PAD = 1.5  # pixels around a shape's radius that a coverage window spans
_HALF_COVERAGE = 0.51  # segmentation: the other colour's blend weight still counted as half (rounding)
_FRAMES_PER_PASS = 8  # frames rendered together: enough to vectorise, few enough to stay in cache


@dataclass(frozen=True)
class WorldConfig:
    size: int = 64
    min_objects: int = 1
    max_objects: int = 3
    radius_range: tuple[float, float] = (7.0, 12.0)  # at size 64; scaled with size
    speed_range: tuple[float, float] = (0.4, 2.0)  # pixels per frame at size 64
    angular_speed_range: tuple[float, float] = (-0.12, 0.12)  # radians per frame
    leave_probability: float = 0.15  # scenes whose objects bounce off a boundary outside the frame

    def __post_init__(self) -> None:
        if not 1 <= self.min_objects <= self.max_objects <= len(OBJECT_COLORS):
            raise ValueError(
                f"need 1 <= min_objects <= max_objects <= {len(OBJECT_COLORS)} (one colour per object), "
                f"got {self.min_objects}..{self.max_objects}"
            )
        low, high = self.radius_range
        if not 0 < low <= high or 2 * (high * self.scale + 1) >= self.size:
            raise ValueError(f"radius_range {self.radius_range} does not fit a {self.size}px frame")

    @property
    def scale(self) -> float:
        return self.size / 64


@dataclass(frozen=True)
class ObjectSpec:
    shape: str
    color: str
    radius: float  # pixels: the circle's radius, the polygons' circumradius
    position: tuple[float, float]  # centre at frame 0
    velocity: tuple[float, float]  # pixels per frame
    angle: float  # radians at frame 0
    angular_velocity: float  # radians per frame


@dataclass(frozen=True)
class Background:
    kind: str
    colors: tuple[tuple[int, int, int], tuple[int, int, int]]
    period: float = 8.0  # pixels per stripe, check or dot cell
    direction: float = 0.0  # radians: the axis stripes and gradients vary along


@dataclass(frozen=True)
class Scene:
    objects: tuple[ObjectSpec, ...]  # back to front
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
    in_frame: np.ndarray  # bool [T, N]: some pixel of the full mask lies in the frame
    scene: Scene = field(repr=False)

    @property
    def prompt(self) -> str:
        return self.scene.prompt


@dataclass(frozen=True)
class PromptSpec:
    objects: tuple[tuple[str, str], ...]  # (color, shape), back to front
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
    return prompt.lower().replace(",", " , ").split()


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
    parts = re.split(r"\s*,\s*|\s+and\s+", match.group(1))
    return PromptSpec(tuple(_parse_object(part, prompt) for part in parts), match.group(2))


def _parse_object(part: str, prompt: str) -> tuple[str, str]:
    """``(color, shape)`` of one "a <colour> <shape>" phrase."""
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
    return words[1], words[2]


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


def _sample_objects(rng: np.random.Generator, count: int) -> tuple[tuple[str, str], ...]:
    """``count`` (colour, shape) pairs with distinct colours, so objects stay separable by colour."""
    colors = list(OBJECT_COLORS)
    pairs = [(c, s) for c in colors for s in SHAPES]
    used: set[str] = set()
    picked = []
    for index in rng.choice(len(pairs), count, replace=False):
        color, shape = pairs[int(index)]
        while color in used:
            color = colors[int(rng.integers(len(colors)))]
        used.add(color)
        picked.append((color, shape))
    return tuple(picked)


def sample_scene(rng: np.random.Generator, config: WorldConfig = WorldConfig()) -> Scene:
    """A random scene: 1..3 objects (per ``config``) of distinct colours over a random background."""
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    objects = _sample_objects(rng, count)
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    return _scene(rng, config, objects, kind, allow_leaving=True)


def scene_from_prompt(prompt: str, rng: np.random.Generator, config: WorldConfig = WorldConfig()) -> Scene:
    """A scene with exactly the objects and background that ``prompt`` names (random placement)."""
    spec = parse_prompt(prompt)
    return _scene(rng, config, spec.objects, spec.background, allow_leaving=False)


def _scene(
    rng: np.random.Generator,
    config: WorldConfig,
    objects: tuple[tuple[str, str], ...],
    kind: str,
    allow_leaving: bool,
) -> Scene:
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
    margin = -LEAVE_MARGIN * obj.radius if leaves_frame else obj.radius
    low, high = margin, config.size - 1 - margin
    xy = np.stack([_bounce(obj.position[i] + obj.velocity[i] * t, low, high) for i in range(2)], axis=1)
    return xy, obj.angle + obj.angular_velocity * t


# ----- shapes ------------------------------------------------------------------------------------


def _polygon(shape: str, radius: float) -> np.ndarray:
    """Vertices ``[K, 2]`` of a polygonal shape at angle 0, centred at the origin, a vertex pointing up
    (the square's vertices on the diagonals)."""
    if shape == "square":
        angles, radii = math.pi / 4 + np.arange(4) * math.pi / 2, np.full(4, radius)
    elif shape == "triangle":
        angles, radii = -math.pi / 2 + np.arange(3) * 2 * math.pi / 3, np.full(3, radius)
    elif shape == "star":
        angles = -math.pi / 2 + np.arange(10) * math.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, radius, radius * STAR_INNER_RATIO)
    else:
        raise ValueError(f"unknown shape {shape!r}; shapes: {', '.join(SHAPES)}")
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _inside_polygon(x: np.ndarray, y: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test, vectorised over points."""
    inside = np.zeros(x.shape, bool)
    for (x1, y1), (x2, y2) in zip(np.roll(vertices, 1, axis=0), vertices):
        if y1 == y2:  # a horizontal edge is never crossed by a horizontal ray
            continue
        crosses = (y1 > y) != (y2 > y)
        inside ^= crosses & (x < x1 + (y - y1) * (x2 - x1) / (y2 - y1))
    return inside


def _inside_shape(shape: str, radius: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether points given in the shape's own (unrotated, centred) frame lie inside it."""
    if shape == "circle":
        return x**2 + y**2 <= radius**2
    return _inside_polygon(x, y, _polygon(shape, radius))


def _window(radius: float) -> int:
    """Side in pixels of a square window that holds the shape wherever its centre falls in a pixel."""
    return int(math.ceil(2 * (radius + _WINDOW_PAD))) + 2


def _coverage_windows(
    shape: str, radius: float, angles: np.ndarray, centers: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Supersampled coverage of one shape at ``T`` poses.

    Returns ``float32 [T, P, P]`` windows and their top-left pixels ``int [T, 2]`` as ``(x, y)``.
    """
    side = _window(radius)
    origins = np.floor(centers - (radius + _WINDOW_PAD)).astype(np.int64)
    offsets = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
    steps = (np.arange(side)[:, None] + offsets).ravel()  # sample positions within a window
    gx = (origins[:, 0, None] + steps - centers[:, 0, None])[:, None, :]  # [T, 1, P*S]
    gy = (origins[:, 1, None] + steps - centers[:, 1, None])[:, :, None]  # [T, P*S, 1]
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    inside = _inside_shape(shape, radius, cos * gx + sin * gy, cos * gy - sin * gx)  # into the shape's frame
    windows = inside.reshape(len(angles), side, SUPERSAMPLE, side, SUPERSAMPLE).mean(axis=(2, 4))
    return windows.astype(np.float32), origins


def _paste(windows: np.ndarray, origins: np.ndarray, height: int, width: int) -> np.ndarray:
    """Place ``[T, P, P]`` windows at their ``(x, y)`` origins on ``[T, H, W]`` zero canvases, cropped."""
    count, side = windows.shape[:2]
    canvas = np.zeros((count, height + 2 * side, width + 2 * side), windows.dtype)
    # A window starting beyond a pad lies wholly outside the frame, as it does once clamped into the pad.
    x0 = np.clip(origins[:, 0], -side, width) + side
    y0 = np.clip(origins[:, 1], -side, height) + side
    steps = np.arange(side)
    rows, cols = (y0[:, None] + steps)[:, :, None], (x0[:, None] + steps)[:, None, :]
    canvas[np.arange(count)[:, None, None], rows, cols] = windows
    return canvas[:, side : side + height, side : side + width]


def shape_coverage(
    shape: str, radius: float, angles: np.ndarray, centers: np.ndarray, size: int | tuple[int, int]
) -> np.ndarray:
    """Anti-aliased coverage ``float32 [T, H, W]`` of one shape at ``T`` poses (``angles [T]``,
    ``centers [T, 2]``)."""
    height, width = (size, size) if isinstance(size, int) else size
    angles = np.asarray(angles, np.float64).reshape(-1)
    centers = np.asarray(centers, np.float64).reshape(-1, 2)
    return _paste(*_coverage_windows(shape, radius, angles, centers), height, width)


def shape_template(
    shape: str, radius: float, angle: float, size: int | tuple[int, int], center: tuple[float, float]
) -> np.ndarray:
    """Anti-aliased coverage ``float32 [H, W]`` of a shape placed at ``center``, rotated by ``angle``."""
    return shape_coverage(shape, radius, np.array([angle]), np.array([center]), size)[0]


def template_ious(
    mask: np.ndarray, shape: str, radius: float, angles: np.ndarray, center: tuple[float, float]
) -> np.ndarray:
    """IoU of ``mask`` ``bool [H, W]`` with :func:`shape_template` ``>= 0.5`` at each of ``angles`` about
    ``center``: ``float64 [T]``, the same numbers as template by template, computed inside the templates'
    common window only."""
    angles = np.asarray(angles, np.float64).reshape(-1)
    centers = np.tile(np.asarray(center, np.float64), (len(angles), 1))
    windows, origins = _coverage_windows(shape, radius, angles, centers)
    side = windows.shape[1]
    x0, y0 = (int(v) for v in origins[0])  # one centre: one window for every angle
    height, width = mask.shape
    rows, cols = np.arange(y0, y0 + side), np.arange(x0, x0 + side)
    in_frame = ((rows >= 0) & (rows < height))[:, None] & ((cols >= 0) & (cols < width))[None, :]
    seen = mask[np.clip(rows, 0, height - 1)][:, np.clip(cols, 0, width - 1)] & in_frame
    templates = (windows >= 0.5) & in_frame
    overlap = (templates & seen).sum(axis=(1, 2))
    union = templates.sum(axis=(1, 2)) + int(mask.sum()) - overlap
    return np.where(union > 0, overlap / np.maximum(union, 1), 0.0)


# ----- rendering ---------------------------------------------------------------------------------


def _background_weight(background: Background, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """How much of the second background colour each pixel takes, in 0..1."""
    along = x * math.cos(background.direction) + y * math.sin(background.direction)
    period = background.period
    if background.kind == "plain":
        return np.zeros_like(x)
    if background.kind == "striped":
        return np.floor(along / period) % 2
    if background.kind == "checkered":
        return (np.floor(x / period) + np.floor(y / period)) % 2
    if background.kind == "gradient":
        return (along - along.min()) / max(along.max() - along.min(), 1e-9)
    if background.kind == "dotted":
        cell = period * 1.5
        dx, dy = np.mod(x, cell) - cell / 2, np.mod(y, cell) - cell / 2
        return (dx**2 + dy**2 <= (cell / 5) ** 2).astype(np.float64)
    raise ValueError(f"unknown background {background.kind!r}; backgrounds: {', '.join(BACKGROUNDS)}")


def render_background(background: Background, size: int) -> np.ndarray:
    """``float [H, W, 3]`` in 0..255."""
    y, x = np.mgrid[:size, :size].astype(np.float64)
    weight = _background_weight(background, x, y)[..., None]
    a, b = (np.array(c, np.float64) for c in background.colors)
    return a * (1 - weight) + b * weight


def _occlude(full: np.ndarray) -> np.ndarray:
    """Visible masks ``[T, N, H, W]`` from full ones: each pixel goes to the front-most object covering it."""
    visible = full.copy()
    covered = np.zeros_like(full[:, 0])
    for i in reversed(range(full.shape[1])):
        visible[:, i] &= ~covered
        covered |= full[:, i]
    return visible


def round_coverage(coverage: np.ndarray, rounding: float) -> np.ndarray:
    """Coverage ``[T, H, W]`` with its corners and points rounded off and its area kept: blurred by a
    Gaussian of std ``rounding`` pixels, then cut again with an edge about a pixel wide, at the level (per
    frame) that keeps the frame's total coverage. A corner is cut back by about ``rounding`` and a thin
    point shrinks or vanishes, while the straight edges move out a little to keep the area."""
    if rounding <= 0:
        return coverage
    radius = int(math.ceil(3 * rounding))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / rounding) ** 2)
    kernel /= kernel.sum()
    blurred = np.pad(coverage, ((0, 0), (radius, radius), (radius, radius)))
    for axis in (1, 2):
        size = blurred.shape[axis] - 2 * radius
        blurred = sum(w * np.take(blurred, np.arange(k, k + size), axis=axis) for k, w in enumerate(kernel))
    # The blurred edge rises by about 1 / (rounding * sqrt(2 pi)) per pixel; scaled back to one per pixel.
    slope = rounding * math.sqrt(2 * math.pi)
    target = coverage.sum(axis=(1, 2))
    low, high = np.full(len(coverage), 0.05), np.full(len(coverage), 0.95)  # cut levels, per frame

    def cut(levels: np.ndarray) -> np.ndarray:
        return np.clip((blurred - levels[:, None, None]) * slope + 0.5, 0.0, 1.0)

    for _ in range(10):  # the area falls as the level rises: bisect to the level that keeps it
        middle = (low + high) / 2
        too_large = cut(middle).sum(axis=(1, 2)) > target
        low, high = np.where(too_large, middle, low), np.where(too_large, high, middle)
    return cut((low + high) / 2).astype(np.float32)


def _draw(
    objects: tuple[ObjectSpec, ...],
    background: np.ndarray,
    centers: np.ndarray,
    angles: np.ndarray,
    rounding: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``uint8 [T, H, W, 3]`` and full masks ``bool [T, N, H, W]`` of objects at the given poses
    over a ``float [H, W, 3]`` background; later objects are in front (``rounding``: see
    :func:`round_coverage`)."""
    count, (height, width) = len(angles), background.shape[:2]
    image = np.broadcast_to(background, (count, height, width, 3))
    full = np.zeros((count, len(objects), height, width), bool)
    for i, obj in enumerate(objects):
        coverage = shape_coverage(obj.shape, obj.radius, angles[:, i], centers[:, i], (height, width))
        alpha = round_coverage(coverage, rounding)[..., None]
        image = image * (1 - alpha) + np.array(OBJECT_COLORS[obj.color], np.float64) * alpha
        full[:, i] = alpha[..., 0] >= 0.5
    return np.clip(np.round(image), 0, 255).astype(np.uint8), full


def _poses(scene: Scene, num_frames: int, config: WorldConfig) -> tuple[np.ndarray, np.ndarray]:
    """Centres ``[T, N, 2]`` and angles ``[T, N]`` of the scene's objects."""
    if not scene.objects:
        return np.zeros((num_frames, 0, 2)), np.zeros((num_frames, 0))
    paths = [trajectory(o, num_frames, config, scene.leaves_frame) for o in scene.objects]
    return np.stack([p[0] for p in paths], axis=1), np.stack([p[1] for p in paths], axis=1)


def _draw_frames(
    scene: Scene, centers: np.ndarray, angles: np.ndarray, config: WorldConfig, rounding: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    background = render_background(scene.background, config.size)
    parts = [
        _draw(
            scene.objects,
            background,
            centers[k : k + _FRAMES_PER_PASS],
            angles[k : k + _FRAMES_PER_PASS],
            rounding,
        )
        for k in range(0, len(angles), _FRAMES_PER_PASS)
    ]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def render_clip(scene: Scene, num_frames: int, config: WorldConfig = WorldConfig()) -> Clip:
    """Render ``num_frames`` frames with ground truth; later objects are in front."""
    centers, angles = _poses(scene, num_frames, config)
    frames, full = _draw_frames(scene, centers, angles, config)
    return Clip(frames, centers, angles, _occlude(full), full, full.any(axis=(2, 3)), scene)


def render_rounded(
    scene: Scene, num_frames: int, rounding: float, config: WorldConfig = WorldConfig()
) -> np.ndarray:
    """The frames of :func:`render_clip` with every object's corners and points rounded off by
    ``rounding`` pixels (:func:`round_coverage`): the same objects, colours, places and angles, in the
    rounded outlines a video model drifts towards when it continues its own frames."""
    centers, angles = _poses(scene, num_frames, config)
    return _draw_frames(scene, centers, angles, config, rounding)[0]


def object_centers(scene: Scene, num_frames: int, config: WorldConfig = WorldConfig()) -> np.ndarray:
    """Centres ``[T, N, 2]`` of the scene's objects in its first ``num_frames`` frames, as rendered."""
    return _poses(scene, num_frames, config)[0]


def render_shifted(
    scene: Scene, num_frames: int, offsets: np.ndarray, config: WorldConfig = WorldConfig()
) -> np.ndarray:
    """The frames of :func:`render_clip` with each object's centre moved by ``offsets`` ``[T, N, 2]``:
    the same shapes, sizes, angles and motion, drawn from other places."""
    centers, angles = _poses(scene, num_frames, config)
    return _draw_frames(scene, centers + offsets, angles, config)[0]


def _blend_segments(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """End colours ``[S, 3]``, ``[S, 3]`` of the two-colour blends a toy-world pixel can show: first ``rgb``
    with each other colour (their count is returned), then the other objects with each other and with the
    backgrounds, then each background pair."""
    objects = np.array(list(OBJECT_COLORS.values()), np.float64)
    others = objects[(objects != rgb).any(axis=1)]
    backgrounds = np.array(BACKGROUND_PALETTES, np.float64)  # [pairs, 2, 3]
    mates = np.concatenate([others, backgrounds.reshape(-1, 3)])
    first, second = np.triu_indices(len(mates), 1)
    involves_object = first < len(others)
    starts = np.concatenate(
        [np.repeat(rgb[None], len(mates), 0), mates[first[involves_object]], backgrounds[:, 0]]
    )
    ends = np.concatenate([mates, mates[second[involves_object]], backgrounds[:, 1]])
    return starts, ends, len(mates)


def object_labels(frame: np.ndarray, tolerance: float = 60.0) -> np.ndarray:
    """``int [H, W]``: for each pixel of ``frame`` the index (in ``OBJECT_COLORS``) of the object colour that
    covers at least half of it, -1 where none does: every object at once, by the reasoning of
    :func:`segment_object` (the closest two-colour blend of toy-world colours, within ``tolerance``)."""
    objects = np.array(list(OBJECT_COLORS.values()), np.float64)
    colors = np.concatenate([objects, np.array(BACKGROUND_PALETTES, np.float64).reshape(-1, 3)])
    first, second = np.triu_indices(len(colors), 1)
    starts, ends = colors[first], colors[second]
    pixels = frame.reshape(-1, 3).astype(np.float64)
    span = ends - starts
    length2 = np.maximum((span * span).sum(-1), 1e-9)
    along = np.einsum("pc,sc->ps", pixels, span) - (starts * span).sum(-1)
    weight = np.clip(along / length2, 0.0, 1.0)
    offset2 = (
        (pixels * pixels).sum(-1)[:, None]
        - 2 * np.einsum("pc,sc->ps", pixels, starts)
        + (starts * starts).sum(-1)
    )
    residual2 = offset2 - 2 * weight * along + weight * weight * length2
    best = residual2.argmin(axis=-1)
    rows = np.arange(len(pixels))
    dominant = np.where(weight[rows, best] <= _HALF_COVERAGE, first[best], second[best])
    labelled = (residual2[rows, best] <= tolerance**2) & (dominant < len(objects))
    return np.where(labelled, dominant, -1).reshape(frame.shape[:2])


def segment_object(
    frame: np.ndarray, color: str | tuple[int, int, int], tolerance: float = 60.0
) -> np.ndarray:
    """Pixels of ``frame`` (``uint8 [H, W, 3]``) that an object of ``color`` covers at least half of.

    Each pixel is explained as the closest blend of two toy-world colours (two objects, or an object and a
    background); it belongs to the object when that blend is ``color`` with weight >= 0.5 and lies within
    ``tolerance`` (RGB distance) of the pixel, so shared edges split between the colours that meet there.
    """
    rgb = np.array(OBJECT_COLORS[color] if isinstance(color, str) else color, np.float64)
    starts, ends, own = _blend_segments(rgb)
    pixels = frame.reshape(-1, 3).astype(np.float64)
    span = ends - starts
    length2 = (span * span).sum(-1)
    along = np.einsum("pc,sc->ps", pixels, span) - (starts * span).sum(-1)  # (pixel - start) . span
    weight = np.minimum(np.maximum(along / length2, 0.0), 1.0)  # of the end colour in the closest blend
    offset2 = (  # |pixel - start|^2
        (pixels * pixels).sum(-1)[:, None]
        - 2 * np.einsum("pc,sc->ps", pixels, starts)
        + (starts * starts).sum(-1)
    )
    residual2 = offset2 - 2 * weight * along + weight * weight * length2  # squared distance to the blend
    best = residual2.argmin(axis=-1)[:, None]
    fits = np.take_along_axis(residual2, best, axis=-1)[:, 0] <= tolerance**2
    half = np.take_along_axis(weight, best, axis=-1)[:, 0] <= _HALF_COVERAGE
    return (fits & (best[:, 0] < own) & half).reshape(frame.shape[:2])
