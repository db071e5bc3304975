"""Renders the synthetic_motion clips in numpy: one textured object on a moving textured background.

A clip is fully described by `ClipParams`: the object's look, and its state (position, size,
angle, opacity) and the background offset at the first and the last frame. Frame t is a pure
function of the state interpolated at t, computed as `(start * (n - t) + end * t) / n`; float
addition is commutative, so the state at t of a clip equals, bit for bit, the state at n - t of the
clip with start and end swapped. That is why `reverse(params)` renders exactly the frames of
`params` in reverse order, and why each motion class has a time-reversed partner class whose clips
are byte-identical reversals (`make_clip(c, seed)[::-1] == make_clip(partner(c), seed)`).

Only the trajectory carries the class in the `motion` task: shape, texture, colours, start
position and background are drawn from the same distributions for every class. In the
`appearance` task only the object's shape and texture carry the class; the motion is random.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from video_s3d.errors import UserError

# Class names of the `motion` task, in reversal pairs: class 2k and 2k + 1 are each other's
# time reversal.
MOTION_CLASSES = (
    "moving right",
    "moving left",
    "moving down",
    "moving up",
    "growing",
    "shrinking",
    "splitting in two",
    "merging into one",
    "appearing",
    "disappearing",
)
# The looks a `motion` clip draws from (shape carries no class there).
MOTION_SHAPES = ("disk", "square", "triangle", "cross", "diamond")
# Every shape; ClipParams.shape indexes this (appended to, so motion clips keep their bytes).
SHAPES = MOTION_SHAPES + ("ring", "bar")
# The shapes that name `appearance` classes. Not the diamond: objects turn, and a square turned
# by 45 degrees is a diamond (the two classes were indistinguishable in version 1.2.0).
APPEARANCE_SHAPES = ("disk", "square", "triangle", "cross", "ring")
PATTERNS = ("stripes", "checkers")
# Class names of the `appearance` task: every (shape, pattern) pair.
APPEARANCE_CLASSES = tuple(
    f"{pattern} {shape}" for shape in APPEARANCE_SHAPES for pattern in PATTERNS
)
# The `order` task: two appearance events in sequence, "A then B" (A is on screen, then B
# replaces it). Each pair of shapes gives two classes, A-then-B and B-then-A, which are each
# other's time reversal, so frame-order-blind I2D can tell the pair (both shapes) but not its
# order: at best 50% between partners. Pairs form a cycle, so one shape names no pair by itself.
ORDER_PAIRS = (
    ("disk", "square"),
    ("square", "triangle"),
    ("triangle", "cross"),
    ("cross", "ring"),
    ("ring", "disk"),
)
ORDER_CLASSES = tuple(
    name
    for first, second in ORDER_PAIRS
    for name in (f"{first} then {second}", f"{second} then {first}")
)
# The distractor of `order` clips: a bar (no class shape) that appears, disappears, stays or is
# absent, independently of the class, so "something appears / disappears" says nothing.
ORDER_DISTRACTOR = "bar"
ORDER_DISTRACTOR_MODES = ("appears", "disappears", "stays", "absent")
# The `flash_order` task: the same classes as `order`, but each shape *flashes* (fades in, stays
# briefly, fades out: a time-symmetric event) and the class is which shape flashes first. No
# local change tells the order (every event both appears and disappears), only when one
# recognised shape shows relative to the other, so it is a relation between high-level
# features; a bar that flashes, stays or is absent draws the eye.
FLASH_DISTRACTOR_MODES = ("flashes", "stays", "absent")
# The `far_flash_order` task: `flash_order`'s classes on longer clips whose two flashes lie
# farther apart in time than the 3D layers of a bottom-heavy network reach, and farther from
# the clip's ends (FAR_FLASH_REACH). Built so that only 3D layers high in a network could
# relate them; measured, bottom-heavy nets order them all the same (README, "far_flash_order").
# The tasks whose classes are ORDER_CLASSES.
ORDER_TASKS = ("order", "flash_order", "far_flash_order")
TASKS = ("motion", "appearance", *ORDER_TASKS)

# (x, y, radius, angle, opacity); x, y, radius are fractions of the frame side.
STATE_FIELDS = 5
# The orientation dot of `motion` clips: centre (u, v) and radius in object units (the shape's
# radius is 1); the shape's outline clips it (it pokes out of the triangle's apex and the
# cross's bar, so it is drawn only inside); and its colour, darker than any object colour.
# The size was picked for versions 1.2-1.3's rotation pair: with it, tiny S3D-G trained on
# that pair alone reached 100% validation accuracy by step 150 (at chance for 300 steps with
# the 1.1.0 dot).
MARKER = (0.0, -0.55, 0.4)
MARKER_COLOR = np.float32(20.0)


def class_names(task: str) -> tuple[str, ...]:
    if task == "motion":
        return MOTION_CLASSES
    if task == "appearance":
        return APPEARANCE_CLASSES
    if task in ORDER_TASKS:
        return ORDER_CLASSES
    # A config's task: the user's to fix.
    raise UserError(f"Unknown synthetic_motion task {task!r}: use one of {TASKS}.")


def reversal_partner(task: str) -> list[int] | None:
    """Motion and order classes come in pairs 2k <-> 2k + 1; appearance has no time direction."""
    if task in ("motion", *ORDER_TASKS):
        return [c ^ 1 for c in range(len(class_names(task)))]
    return None


@dataclasses.dataclass(frozen=True)
class ClipParams:
    shape: int  # index into SHAPES
    pattern: int  # index into PATTERNS
    pattern_frequency: float  # texture cycles across the object's radius
    object_colors: np.ndarray  # [2, 3] float, the two texture colours
    background_colors: np.ndarray  # [2, 3] float
    background_waves: np.ndarray  # [K, 4] float: (kx, ky, phase, weight) per sine wave
    start: np.ndarray  # [STATE_FIELDS] object state at the first frame
    end: np.ndarray  # [STATE_FIELDS] object state at the last frame
    background_start: np.ndarray  # [2] background offset (pixels) at the first frame
    background_end: np.ndarray  # [2]
    marker: bool = True  # draw the orientation dot (MARKER)
    # A second object of the same look, drawn over the first (the splitting/merging pair):
    # its state at the first and the last frame, or None.
    twin_start: np.ndarray | None = None
    twin_end: np.ndarray | None = None


def reverse(params: ClipParams) -> ClipParams:
    """The parameters whose clip is `params`' clip played backwards (byte-identical frames)."""
    return dataclasses.replace(
        params,
        start=params.end,
        end=params.start,
        background_start=params.background_end,
        background_end=params.background_start,
        twin_start=params.twin_end,
        twin_end=params.twin_start,
    )


def interpolate(start: np.ndarray, end: np.ndarray, num_frames: int) -> np.ndarray:
    """[T, ...] states; symmetric in (start, end) under t -> T-1-t, bit for bit."""
    last = max(num_frames - 1, 1)
    t = np.arange(num_frames, dtype=np.int64)
    before = (last - t).astype(np.float64).reshape((-1,) + (1,) * start.ndim)
    after = t.astype(np.float64).reshape((-1,) + (1,) * start.ndim)
    return (start[None] * before + end[None] * after) / last


def signed_distance(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance to the shape's edge, in object units (radius 1)."""
    name = SHAPES[shape]
    if name == "disk":
        return np.sqrt(u * u + v * v) - 1.0
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.85
    if name == "diamond":
        return (np.abs(u) + np.abs(v) - 1.15) / np.sqrt(2.0)
    if name == "ring":  # a disk with a hole of half its radius
        distance = np.sqrt(u * u + v * v)
        return np.maximum(distance - 1.0, 0.5 - distance)
    if name == "cross":
        bar = 0.38
        return np.minimum(
            np.maximum(np.abs(u) - 1.0, np.abs(v) - bar),
            np.maximum(np.abs(u) - bar, np.abs(v) - 1.0),
        )
    if name == "bar":  # a 2:0.6 rectangle
        return np.maximum(np.abs(u) - 1.0, np.abs(v) - 0.3)
    if name == "triangle":  # equilateral, pointing up, inscribed radius 0.55
        normals = ((0.0, 1.0), (np.sqrt(3) / 2, -0.5), (-np.sqrt(3) / 2, -0.5))
        distances = [u * nx + v * ny for nx, ny in normals]
        return np.maximum(np.maximum(distances[0], distances[1]), distances[2]) - 0.55
    raise ValueError(f"unknown shape index {shape}")


def _texture(pattern: int, frequency: float, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Which of the object's two colours (0 or 1) each point shows, in object coordinates."""
    if PATTERNS[pattern] == "stripes":
        return np.floor(u * frequency).astype(np.int64) & 1
    cells = np.floor(u * frequency).astype(np.int64) + np.floor(v * frequency).astype(np.int64)
    return cells & 1


def render(
    params: ClipParams, num_frames: int, size: int, frame_indices: np.ndarray | None = None
) -> np.ndarray:
    """uint8 [T, size, size, 3] frames of one clip; with `frame_indices` (into the T) only those
    frames, byte-identical to the same frames of the whole clip."""
    keep = slice(None) if frame_indices is None else np.asarray(frame_indices)
    states = interpolate(params.start, params.end, num_frames)[keep]  # [T, 5]
    offsets = interpolate(params.background_start, params.background_end, num_frames)[keep]
    twin_states = (
        None
        if params.twin_start is None
        else interpolate(params.twin_start, params.twin_end, num_frames)[keep]
    )
    return render_states(params, states, offsets, size, twin_states)


def render_states(
    params: ClipParams,
    states: np.ndarray,
    offsets: np.ndarray,
    size: int,
    twin_states: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 [T, size, size, 3]: `params`' object at per-frame `states` [T, 5] (and its twin at
    `twin_states`) over its background at per-frame `offsets` [T, 2]. Each frame depends only on
    its own row, so reversing the rows reverses the clip byte for byte."""
    xs, ys = pixel_grid(size)
    frames = draw_object(render_background(params, offsets, size), params, states, xs, ys, size)
    if twin_states is not None:
        frames = draw_object(frames, params, twin_states, xs, ys, size)
    return quantise(frames)


def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every pixel centre, [H, W] each."""
    pixel = np.arange(size, dtype=np.float64) + 0.5
    ys, xs = np.meshgrid(pixel, pixel, indexing="ij")
    return xs, ys


def quantise(frames: np.ndarray) -> np.ndarray:
    """float frames -> uint8, rounded to nearest."""
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def render_background(params: ClipParams, offsets: np.ndarray, size: int) -> np.ndarray:
    """float32 [T, size, size, 3]: the clip's background at per-frame offsets [T, 2]."""
    num_frames = len(offsets)
    pixel = np.arange(size, dtype=np.float64) + 0.5
    # A periodic blend of sine waves sampled at the moving offset. Each wave is
    # sin(a(t, x) + b(t, y)), expanded into per-row and per-column factors to save time.
    bx = pixel[None] + offsets[:, 0, None]  # [T, W]
    by = pixel[None] + offsets[:, 1, None]  # [T, H]
    field = np.zeros((num_frames, size, size))
    for kx, ky, phase, weight in params.background_waves:
        a = 2 * np.pi * kx * bx / size + phase
        b = 2 * np.pi * ky * by / size
        field += weight * (
            np.sin(b)[:, :, None] * np.cos(a)[:, None, :]
            + np.cos(b)[:, :, None] * np.sin(a)[:, None, :]
        )
    # Per-pixel colour work in float32: the frames are 3x larger than the geometry.
    blend = np.clip(0.5 + 0.35 * field, 0.0, 1.0).astype(np.float32)[..., None]
    low, high = params.background_colors.astype(np.float32)
    return low + (high - low) * blend


def object_coordinates(
    states: np.ndarray, xs: np.ndarray, ys: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every pixel (`xs`, `ys`, [H, W]) in the coordinates of the object at per-frame `states`
    [T, STATE_FIELDS]: (u, v) [T, H, W], radius 1 at the edge, and the object's radius in pixels
    and opacity, [T, 1, 1] each."""
    # The inverse of the object's transform (translate, turn, scale), pixel by pixel.
    x, y, radius, angle, opacity = (
        states[:, i, None, None] * (size if i < 3 else 1.0) for i in range(STATE_FIELDS)
    )
    dx, dy = xs[None] - x, ys[None] - y
    cos, sin = np.cos(angle), np.sin(angle)
    u = (cos * dx + sin * dy) / radius
    v = (-sin * dx + cos * dy) / radius
    return u, v, radius, opacity


def object_mask(shape: int, states: np.ndarray, size: int) -> np.ndarray:
    """bool [T, size, size]: the pixels inside the outline of a visible object of `shape` at
    per-frame `states` (those draw_object blends with alpha >= 0.5 at full opacity)."""
    xs, ys = pixel_grid(size)
    u, v, _, opacity = object_coordinates(states, xs, ys, size)
    return (signed_distance(shape, u, v) <= 0.0) & (opacity > 0.0)


def draw_object(
    background: np.ndarray,
    params: ClipParams,
    states: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    size: int,
) -> np.ndarray:
    """float32 [T, H, W, 3]: `background` with the object of `params` at `states` over it."""
    u, v, radius, opacity = object_coordinates(states, xs, ys, size)
    # One pixel of soft edge keeps sub-pixel motion visible.
    alpha = np.clip(0.5 - signed_distance(params.shape, u, v) * radius, 0.0, 1.0) * opacity
    alpha = alpha.astype(np.float32)
    mix = _texture(params.pattern, params.pattern_frequency, u, v).astype(np.float32)[..., None]
    first, second = params.object_colors.astype(np.float32)
    colour = first + (second - first) * mix
    # A dark dot off the object's centre breaks its rotational symmetry (every shape repeats
    # under a quarter or a third turn, and so do the textures); it made the direction of
    # versions 1.1-1.3's rotation pair visible. Every motion class draws it, so it carries no
    # class by itself, and keeping it keeps the other classes' clips byte-identical to 1.3.0.
    # `appearance` clips go without, as the dot hides much of a small shape's outline.
    if params.marker:
        dot_u, dot_v, dot_radius = MARKER
        dot = np.clip(
            0.5 - (np.sqrt((u - dot_u) ** 2 + (v - dot_v) ** 2) - dot_radius) * radius, 0.0, 1.0
        ).astype(np.float32)[..., None]
        colour = colour + (MARKER_COLOR - colour) * dot
    return background + (colour - background) * alpha[..., None]


def _random_look(rng: np.random.Generator) -> dict:
    """Shape, texture and colours: the same distribution for every motion class."""
    # Bright, saturated object colours on a darker, low-contrast background keep the object
    # clearly visible whatever the draw.
    hues = rng.uniform(0, 1, size=2)
    object_colors = (
        np.stack([_hsv_to_rgb(h, rng.uniform(0.6, 1.0), rng.uniform(0.75, 1.0)) for h in hues])
        * 255
    )
    # Two texture colours must differ enough for rotation of the texture to be visible.
    object_colors[1] = np.where(
        np.abs(object_colors[1] - object_colors[0]) < 60, 255 - object_colors[0], object_colors[1]
    )
    base = rng.uniform(30, 110, size=3)
    background_colors = np.stack([base, np.clip(base + rng.uniform(-35, 35, size=3), 0, 140)])
    waves = np.stack(
        [
            rng.integers(-3, 4, size=4).astype(np.float64),
            rng.integers(-3, 4, size=4).astype(np.float64),
            rng.uniform(0, 2 * np.pi, size=4),
            rng.uniform(0.3, 1.0, size=4),
        ],
        axis=1,
    )
    waves[:, 0] = np.where((waves[:, 0] == 0) & (waves[:, 1] == 0), 1.0, waves[:, 0])
    return dict(
        shape=int(rng.integers(len(MOTION_SHAPES))),
        pattern=int(rng.integers(len(PATTERNS))),
        pattern_frequency=float(rng.uniform(1.5, 2.5)),
        object_colors=object_colors,
        background_colors=background_colors,
        background_waves=waves,
    )


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def _background_motion(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets at the first and last frame: a random drift of at most 8% of the frame side."""
    direction = rng.uniform(0, 2 * np.pi)
    distance = rng.uniform(0.0, 0.08) * size
    shift = distance * np.array([np.cos(direction), np.sin(direction)])
    start = rng.uniform(0, size, size=2)
    return start, start + shift


def _forward_trajectory(pair: int, rng: np.random.Generator):
    """Start and end states of the first class of motion pair `pair` (right, down, grow, split,
    appear), and the twin's start and end states (the splitting pair) or None."""
    # Splitting objects are smaller, so that the two halves end clearly apart.
    radius = rng.uniform(0.12, 0.15) if pair == 3 else rng.uniform(0.13, 0.19)
    angle = rng.uniform(0, 2 * np.pi)
    x, y = rng.uniform(radius + 0.04, 1 - radius - 0.04, size=2)
    start = np.array([x, y, radius, angle, 1.0])
    end = start.copy()
    twin = None
    if pair in (0, 1):  # translate along x (pair 0) or y (pair 1) by 30-45% of the frame
        axis = pair
        distance = rng.uniform(0.30, 0.45)
        centre = rng.uniform(radius + 0.02 + distance / 2, 1 - radius - 0.02 - distance / 2)
        start[axis], end[axis] = centre - distance / 2, centre + distance / 2
    elif pair == 2:  # grow to 2-2.6 times the radius
        small = rng.uniform(0.08, 0.11)
        large = small * rng.uniform(2.0, 2.6)
        margin = large + 0.02
        start[:2] = end[:2] = rng.uniform(margin, 1 - margin, size=2)
        start[2], end[2] = small, large
    elif pair == 3:  # split: two copies on top of each other part along a random direction
        # Replaces 1.1-1.3's rotation pair, which tiny S3D-G learned in only 8 of 26 probes
        # (README); parting halves are local translations, which it learns every time.
        separation = rng.uniform(0.40, 0.50)
        direction = rng.uniform(0, 2 * np.pi)
        half = 0.5 * separation * np.array([np.cos(direction), np.sin(direction)])
        margin = np.abs(half) + radius + 0.03
        start[:2] = rng.uniform(margin, 1 - margin)
        end[:2] = start[:2] - half
        twin_end = start.copy()
        twin_end[:2] = start[:2] + half
        twin = (start.copy(), twin_end)
    elif pair == 4:  # fade in from invisible
        start[4], end[4] = 0.0, 1.0
    else:
        raise ValueError(f"unknown motion pair {pair}")
    return start, end, twin


def _random_trajectory(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Any motion at all, for the appearance task: position, size and angle all drift."""
    # Larger than the motion task's objects: at the small crops of CPU runs (32-48 px) a radius
    # of 0.13-0.19 (version 1.1.0) left the texture at 2-4 pixels a cycle, and no tiny model
    # passed 17% top-1 in 200 steps. With the 1.3.0 shapes, tiny S3D reached 38% top-1 in 1000
    # steps at radius 0.19-0.26 (version 1.2.0's) and 51% at 0.22-0.30 with coarser textures.
    radius = rng.uniform(0.22, 0.30, size=2)
    margin = radius.max() + 0.03
    start = np.array(
        [*rng.uniform(margin, 1 - margin, size=2), radius[0], rng.uniform(0, 2 * np.pi), 1.0]
    )
    end = np.array(
        [
            *rng.uniform(margin, 1 - margin, size=2),
            radius[1],
            start[3] + rng.uniform(-np.pi, np.pi),
            1.0,
        ]
    )
    return start, end


def make_params(task: str, label: int, rng: np.random.Generator, size: int) -> ClipParams:
    """Random parameters for a clip of class `label`.

    For the motion task the same rng state gives the same draws for a class and its partner; the
    odd class of a pair is the even class's parameters reversed, so
    `make_params('motion', c ^ 1, rng_copy) == reverse(make_params('motion', c, rng))`.
    """
    names = class_names(task)
    if not 0 <= label < len(names):
        raise ValueError(
            f"label {label} is out of range for the {task} task ({len(names)} classes)."
        )
    look = _random_look(rng)
    background_start, background_end = _background_motion(rng, size)
    twin = None
    if task == "motion":
        start, end, twin = _forward_trajectory(label // 2, rng)
    else:
        start, end = _random_trajectory(rng)
        shape, look["pattern"] = divmod(label, len(PATTERNS))
        look["shape"], look["marker"] = SHAPES.index(APPEARANCE_SHAPES[shape]), False
        # Coarser textures than `motion` draws: at 1.5-2.5 cycles a radius (version 1.2.0), a
        # 48-pixel crop left cells of 4-10 pixels, which tiny networks' stems (stride 4) blur
        # together, and stripes were confused with checkers.
        look["pattern_frequency"] = float(rng.uniform(1.2, 1.8))
    params = ClipParams(
        start=start,
        end=end,
        background_start=background_start,
        background_end=background_end,
        **look,
    )
    if twin is not None:
        params = dataclasses.replace(params, twin_start=twin[0], twin_end=twin[1])
    if task == "motion" and label % 2 == 1:
        params = reverse(params)
    return params


def make_clip(
    task: str, label: int, clip_seed: tuple[int, ...] | int, num_frames: int, size: int
) -> np.ndarray:
    """uint8 [num_frames, size, size, 3]: the clip of class `label` drawn from `clip_seed`."""
    rng = np.random.default_rng(clip_seed)
    if task in SCENE_TASKS:
        return render_scene(SCENE_TASKS[task](label, rng, num_frames, size), size)
    return render(make_params(task, label, rng, size), num_frames, size)


# --------------------------------------------------------------------------- scenes
@dataclasses.dataclass(frozen=True)
class Scene:
    """A clip as per-frame data: a background (the look of `background`: colours and waves) at
    per-frame `offsets` [T, 2] (pixels), and objects drawn in order, each a look (ClipParams:
    shape, pattern, colours, marker) with per-frame states [T, STATE_FIELDS]. Frame t depends
    only on row t of every array, so `reverse_scene` renders the exact reversed frames."""

    background: ClipParams
    offsets: np.ndarray
    objects: tuple[tuple[ClipParams, np.ndarray], ...]


def reverse_scene(scene: Scene) -> Scene:
    return Scene(
        scene.background,
        scene.offsets[::-1].copy(),
        tuple((look, states[::-1].copy()) for look, states in scene.objects),
    )


def render_scene(scene: Scene, size: int, frame_indices: np.ndarray | None = None) -> np.ndarray:
    """uint8 [T, size, size, 3] frames of `scene` (only `frame_indices`, if given)."""
    keep = slice(None) if frame_indices is None else np.asarray(frame_indices)
    xs, ys = pixel_grid(size)
    frames = render_background(scene.background, scene.offsets[keep], size)
    for look, states in scene.objects:
        frames = draw_object(frames, look, states[keep], xs, ys, size)
    return quantise(frames)


def _fade(num_frames: int, centre: float, width: float, rising: bool) -> np.ndarray:
    """Opacity per frame: 0 -> 1 (rising) or 1 -> 0 over `width` of the clip around `centre`
    (fractions of the clip from its first to its last frame)."""
    time = np.arange(num_frames, dtype=np.float64) / max(num_frames - 1, 1)
    ramp = np.clip(0.5 + (time - centre) / width, 0.0, 1.0)
    return ramp if rising else 1.0 - ramp


def _drifting_states(
    rng: np.random.Generator, num_frames: int, radius: float, opacity: np.ndarray
) -> np.ndarray:
    """[T, STATE_FIELDS]: an object drifting up to 15% of the frame and turning up to 60
    degrees, linearly, with the given per-frame opacity."""
    margin = radius + 0.03
    start = rng.uniform(margin, 1 - margin, size=2)
    end = np.clip(start + rng.uniform(-0.15, 0.15, size=2), margin, 1 - margin)
    angle = rng.uniform(0, 2 * np.pi)
    turn = rng.uniform(-np.pi / 3, np.pi / 3)
    first = np.array([*start, radius, angle, 0.0])
    last = np.array([*end, radius, angle + turn, 0.0])
    states = interpolate(first, last, num_frames)
    states[:, 4] = opacity
    return states


def _solid_look(shape: str, rng: np.random.Generator) -> ClipParams:
    """One bright colour (both texture colours equal), no orientation dot: the shape is the look."""
    colour = _hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.6, 1.0), rng.uniform(0.8, 1.0)) * 255
    zeros = np.zeros(STATE_FIELDS)
    return ClipParams(
        shape=SHAPES.index(shape),
        pattern=0,
        pattern_frequency=1.0,
        object_colors=np.stack([colour, colour]),
        background_colors=np.zeros((2, 3)),
        background_waves=np.zeros((0, 4)),
        start=zeros,
        end=zeros,
        background_start=np.zeros(2),
        background_end=np.zeros(2),
        marker=False,
    )


def _check_order_label(task: str, label: int) -> None:
    if not 0 <= label < len(ORDER_CLASSES):
        raise ValueError(
            f"label {label} is out of range for the {task} task ({len(ORDER_CLASSES)} classes)."
        )


def _scene_background(
    rng: np.random.Generator, num_frames: int, size: int
) -> tuple[ClipParams, np.ndarray]:
    """A scene's background look (a motion clip's look; only its background fields are drawn)
    and its per-frame offsets [T, 2]: a random drift."""
    zeros = np.zeros(STATE_FIELDS)
    background = ClipParams(
        **_random_look(rng),
        start=zeros,
        end=zeros,
        background_start=np.zeros(2),
        background_end=np.zeros(2),
    )
    return background, interpolate(*_background_motion(rng, size), num_frames)


# The event timing of `order` clips, in fractions of the clip: the hand-over's centre, the gap
# between the first object's fade-out and the second's fade-in, and the fade's duration. The
# centre's range is symmetric about the middle, so a reversed clip's timing is as likely as
# the forward one's; every event ends inside [0.23, 0.77], the part of the 32-frame clip that
# every training window of the study's 13 frames 2 apart covers (video_ops.train_window).
ORDER_CENTRE = (0.42, 0.58)
ORDER_GAP = (0.0, 0.15)
ORDER_FADE = 0.12


def make_order_scene(label: int, rng: np.random.Generator, num_frames: int, size: int) -> Scene:
    """The `order` clip of class `label` from `rng`: a class and its partner draw the same
    numbers, and the odd class of a pair is the even class's scene reversed, so their clips from
    one seed are byte-identical reversals of each other."""
    _check_order_label("order", label)
    first, second = ORDER_PAIRS[label // 2]
    background, offsets = _scene_background(rng, num_frames, size)
    centre, gap = rng.uniform(*ORDER_CENTRE), rng.uniform(*ORDER_GAP)
    objects = []
    mode = ORDER_DISTRACTOR_MODES[int(rng.integers(len(ORDER_DISTRACTOR_MODES)))]
    distractor_look = _solid_look(ORDER_DISTRACTOR, rng)
    distractor_centre = rng.uniform(0.25, 0.75)
    opacity = {
        "appears": _fade(num_frames, distractor_centre, ORDER_FADE, rising=True),
        "disappears": _fade(num_frames, distractor_centre, ORDER_FADE, rising=False),
        "stays": np.ones(num_frames),
        "absent": np.zeros(num_frames),
    }[mode]
    distractor = (
        distractor_look,
        _drifting_states(rng, num_frames, rng.uniform(0.16, 0.22), opacity),
    )
    if mode != "absent":
        objects.append(distractor)
    for shape, fade_centre, rising in (
        (first, centre - gap / 2, False),
        (second, centre + gap / 2, True),
    ):
        look = _solid_look(shape, rng)
        states = _drifting_states(
            rng,
            num_frames,
            rng.uniform(0.20, 0.26),
            _fade(num_frames, fade_centre, ORDER_FADE, rising),
        )
        objects.append((look, states))
    scene = Scene(background, offsets, tuple(objects))
    return reverse_scene(scene) if label % 2 else scene


def _pulse(num_frames: int, centre: float, half_width: float, fade: float) -> np.ndarray:
    """Opacity per frame of a flash: 1 within `half_width` of `centre` (fractions of the clip),
    0 beyond half_width + fade, linear between; time-symmetric about `centre`."""
    time = np.arange(num_frames, dtype=np.float64) / max(num_frames - 1, 1)
    return np.clip(0.5 + (half_width - np.abs(time - centre)) / fade, 0.0, 1.0)


# The flash timing of `flash_order` clips, in fractions of the clip (not published; our
# choice): the midpoint of the two flashes, symmetric about the clip's middle so a reversed
# clip's timing is as likely; the distance between the two flashes' centres; each flash's
# half-width at half opacity and its fade. The extremes keep every flash inside [0.23, 0.77]
# (every training window of the study's clip: make_order_scene's comment): 0.47 - 0.13 - 0.11.
FLASH_MIDPOINT = (0.47, 0.53)
FLASH_SEPARATION = (0.18, 0.26)
FLASH_HALF_WIDTH = 0.09
FLASH_FADE = 0.04
# No class shape stays on screen beside the flashes: with one (any of the five, under the
# flashes), tiny S3D stayed at chance for 1,200 steps (seed 0, flashes of half-width 0.10);
# without, it passed 80% training accuracy by step 1,000 (STUDY_HISTORY.md, session 17).


def make_flash_order_scene(
    label: int, rng: np.random.Generator, num_frames: int, size: int
) -> Scene:
    """The `flash_order` clip of class `label` from `rng`; like make_order_scene, partners draw
    the same numbers and the odd class's scene is the even class's reversed."""
    _check_order_label("flash_order", label)

    def flashes(rng):
        midpoint, separation = rng.uniform(*FLASH_MIDPOINT), rng.uniform(*FLASH_SEPARATION)
        centres = (midpoint - separation / 2, midpoint + separation / 2)
        return [_pulse(num_frames, c, FLASH_HALF_WIDTH, FLASH_FADE) for c in centres]

    return _two_flash_scene(
        label,
        rng,
        num_frames,
        size,
        lambda rng: _pulse(num_frames, rng.uniform(0.35, 0.65), FLASH_HALF_WIDTH, FLASH_FADE),
        flashes,
    )


def _two_flash_scene(
    label: int,
    rng: np.random.Generator,
    num_frames: int,
    size: int,
    bar_flash: Callable[[np.random.Generator], np.ndarray],
    shape_flashes: Callable[[np.random.Generator], Sequence[np.ndarray]],
) -> Scene:
    """A scene of the flashing tasks: a background, a bar that flashes (opacity `bar_flash(rng)`,
    drawn whatever the bar does), stays or is absent, and the class's first and second shape
    with the opacities `shape_flashes(rng)`; the odd class's scene is the even class's
    reversed."""
    first, second = ORDER_PAIRS[label // 2]
    background, offsets = _scene_background(rng, num_frames, size)
    objects = []
    mode = FLASH_DISTRACTOR_MODES[int(rng.integers(len(FLASH_DISTRACTOR_MODES)))]
    bar_opacity = {
        "flashes": bar_flash(rng),
        "stays": np.ones(num_frames),
        "absent": np.zeros(num_frames),
    }[mode]
    bar = (  # under the flashing shapes, so a flash is never hidden
        _solid_look(ORDER_DISTRACTOR, rng),
        _drifting_states(rng, num_frames, rng.uniform(0.16, 0.22), bar_opacity),
    )
    if mode != "absent":
        objects.append(bar)
    for shape, opacity in zip((first, second), shape_flashes(rng)):
        look = _solid_look(shape, rng)
        objects.append((look, _drifting_states(rng, num_frames, rng.uniform(0.20, 0.26), opacity)))
    scene = Scene(background, offsets, tuple(objects))
    return reverse_scene(scene) if label % 2 else scene


# The timing of `far_flash_order` clips, in frames (not published; our choice). Bottom-heavy
# I3D cut 3's 3D layers (Conv_1a to Mixed_3c) reach FAR_FLASH_REACH consecutive input frames
# (`python -m experiments.temporal_reach`: 19 at Mixed_3c; tested). So no 3D feature of it
# sees both flashes when the last frame of the first lies FAR_FLASH_REACH or more frames
# before the first frame of the second, and none sees a flash and a clip end (SAME padding
# tells the first frame from the last) when every flash frame lies FAR_FLASH_REACH - 1 or more
# frames inside the clip. The hypothesis this was built to test: the layers above (2D convs,
# time-symmetric max-pools, the mean over time) treat a clip and its reversal alike (zoo.py:
# I2D and time reversal), so such a network could not order the flashes. Measured, it does
# (96.1% top-1, seed 0): its 3D features tag each flash's "before" and "after" side, and the
# 2D layers' max-pools carry the tags across the clip (experiments/order_cues.py). A flash
# shows for FAR_FLASH_SPAN frames (full opacity for the middle three, half at either end), so
# the stride-2 stems of I2D and top-heavy networks keep at least two of them.
FAR_FLASH_REACH = 19
FAR_FLASH_SPAN = 5
FAR_FLASH_EXTRA_SEPARATION = 3  # the separation varies over this many frames more
# The shortest clip that holds the farthest-apart pair inside the margins: 18 frames, the pair
# (centres 26 apart: the first's 5 frames, 21 between, the second's 5), 18 frames: 67. The
# dataset's 69 (= 5 mod 8, which keeps I2D exactly blind to order) leaves the pair's place
# some play.
FAR_FLASH_MIN_FRAMES = (
    3 * FAR_FLASH_REACH - 1 + 4 * (FAR_FLASH_SPAN // 2) + FAR_FLASH_EXTRA_SEPARATION
)


def _frame_pulse(num_frames: int, centre: int) -> np.ndarray:
    """Opacity per frame of a FAR_FLASH_SPAN-frame flash centred on frame `centre`."""
    distance = np.abs(np.arange(num_frames) - centre)
    return np.clip((FAR_FLASH_SPAN / 2 - distance), 0.0, 1.0)


def far_flash_centres(rng: np.random.Generator, num_frames: int) -> tuple[int, int]:
    """The two flashes' centre frames: separation first, then where the pair sits; the range of
    the first centre is the mirror image of the second's, so a reversed clip's timing is as
    likely as the forward one's."""
    half = FAR_FLASH_SPAN // 2
    smallest = FAR_FLASH_REACH + 2 * half
    separation = int(rng.integers(smallest, smallest + FAR_FLASH_EXTRA_SEPARATION + 1))
    earliest = FAR_FLASH_REACH - 1 + half
    latest = num_frames - FAR_FLASH_REACH - half - separation
    first = int(rng.integers(earliest, latest + 1))
    return first, first + separation


def make_far_flash_order_scene(
    label: int, rng: np.random.Generator, num_frames: int, size: int
) -> Scene:
    """The `far_flash_order` clip of class `label` from `rng` (at least FAR_FLASH_MIN_FRAMES
    frames); like make_order_scene, partners draw the same numbers and the odd class's scene is
    the even class's reversed."""
    _check_order_label("far_flash_order", label)
    if num_frames < FAR_FLASH_MIN_FRAMES:
        raise ValueError(
            f"far_flash_order clips need at least {FAR_FLASH_MIN_FRAMES} frames, not {num_frames}."
        )
    half = FAR_FLASH_SPAN // 2
    return _two_flash_scene(
        label,
        rng,
        num_frames,
        size,
        lambda rng: _frame_pulse(num_frames, int(rng.integers(half, num_frames - half))),
        lambda rng: [_frame_pulse(num_frames, c) for c in far_flash_centres(rng, num_frames)],
    )


def min_frames(task: str) -> int:
    """The fewest frames a clip of `task` can have."""
    return FAR_FLASH_MIN_FRAMES if task == "far_flash_order" else 1


# Tasks whose clips are Scenes (several objects, per-frame states), by scene maker.
SCENE_TASKS = {
    "order": make_order_scene,
    "flash_order": make_flash_order_scene,
    "far_flash_order": make_far_flash_order_scene,
}
