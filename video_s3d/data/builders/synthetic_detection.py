"""synthetic_detection: several actors per clip, each doing its own motion class, with boxes.

The spatio-temporal action-detection twin of `synthetic_motion`: the same renderer
(synthetic_render) draws one to `max_actors` textured objects over one drifting background; each
object follows the trajectory of its own class among the first six `motion` classes (moving
right / left / down / up, growing, shrinking), so its class shows only in how it moves. The
renderer knows every object's shape in every frame, so each actor's box is exact: the extent of
the pixels inside its outline (alpha >= 0.5), as (ymin, xmin, ymax, xmax) fractions of the frame.

Built locally from a seed, no download:
    python -m video_s3d.data.build --dataset=synthetic_detection/detection_tiny
    tfds build synthetic_detection --imports=video_s3d.data.builders --config=detection_tiny

Each example: `video` (JPEG frames), `video_id`, `fps`, and `tubes`, one per actor: `label`,
`tube_id` (the actor's index, stable over the clip), `boxes` [T, 4] and `visible` [T] (always
true here; real datasets' tubes may cover part of a video). Actors are drawn so that no two of
them overlap with IoU above MAX_OVERLAP in any frame.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import tensorflow_datasets as tfds

from video_s3d.data.builders import common, synthetic_render

# The classes whose objects keep a solid, single outline all clip long (no fading, no halves).
DETECTION_CLASSES = synthetic_render.MOTION_CLASSES[:6]
MAX_OVERLAP = 0.1
# Draws of a trajectory tried per actor before the clip settles for fewer actors.
PLACEMENT_ATTEMPTS = 25
SPLIT_NUMBERS = {"train": 0, "validation": 1, "test": 2}
FPS = 25.0


@dataclasses.dataclass(frozen=True)
class Actor:
    label: int
    params: synthetic_render.ClipParams
    boxes: np.ndarray  # [T, 4] float32 (ymin, xmin, ymax, xmax), fractions of the frame


def object_boxes(params: synthetic_render.ClipParams, num_frames: int, size: int) -> np.ndarray:
    """[T, 4] float32: the box of the pixels inside the object's outline in every frame, computed
    with the renderer's own geometry (the pixels it blends with alpha >= 0.5)."""
    states = synthetic_render._interpolate(params.start, params.end, num_frames)
    pixel = np.arange(size, dtype=np.float64) + 0.5
    ys, xs = np.meshgrid(pixel, pixel, indexing="ij")
    x, y, radius, angle = (states[:, i, None, None] * (size if i < 3 else 1.0) for i in range(4))
    dx, dy = xs[None] - x, ys[None] - y
    cos, sin = np.cos(angle), np.sin(angle)
    u = (cos * dx + sin * dy) / radius
    v = (-sin * dx + cos * dy) / radius
    inside = synthetic_render._signed_distance(params.shape, u, v) <= 0.0
    inside &= states[:, 4, None, None] > 0.0  # an invisible object has no box
    boxes = np.zeros((num_frames, 4), np.float32)
    for t in range(num_frames):
        rows, cols = np.flatnonzero(inside[t].any(axis=1)), np.flatnonzero(inside[t].any(axis=0))
        if rows.size:
            boxes[t] = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
    return boxes / size


def _max_overlap(boxes_a: np.ndarray, boxes_b: np.ndarray) -> float:
    top_left = np.maximum(boxes_a[:, :2], boxes_b[:, :2])
    extent = np.clip(np.minimum(boxes_a[:, 2:], boxes_b[:, 2:]) - top_left, 0, None)
    intersection = extent[:, 0] * extent[:, 1]
    areas = [(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) for b in (boxes_a, boxes_b)]
    return float(np.max(intersection / (areas[0] + areas[1] - intersection)))


def make_actors(
    rng: np.random.Generator, num_frames: int, size: int, max_actors: int
) -> list[Actor]:
    """1..max_actors actors with uniformly drawn classes, placed so that they barely overlap."""
    actors = []
    for _ in range(int(rng.integers(1, max_actors + 1))):
        label = int(rng.integers(len(DETECTION_CLASSES)))
        for _ in range(PLACEMENT_ATTEMPTS):
            params = synthetic_render.make_params("motion", label, rng, size)
            boxes = object_boxes(params, num_frames, size)
            if all(_max_overlap(boxes, other.boxes) <= MAX_OVERLAP for other in actors):
                actors.append(Actor(label, params, boxes))
                break
    return actors


def render_actors(actors: list[Actor], num_frames: int, size: int) -> np.ndarray:
    """uint8 [T, size, size, 3]: the first actor's clip (its background included), then every
    other actor drawn over it in order."""
    frames = synthetic_render.render(actors[0].params, num_frames, size)
    if len(actors) == 1:
        return frames
    pixel = np.arange(size, dtype=np.float64) + 0.5
    ys, xs = np.meshgrid(pixel, pixel, indexing="ij")
    canvas = frames.astype(np.float32)
    for actor in actors[1:]:
        states = synthetic_render._interpolate(actor.params.start, actor.params.end, num_frames)
        canvas = synthetic_render._draw_object(canvas, actor.params, states, xs, ys, size)
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def make_clip(clip_seed, num_frames: int, size: int, max_actors: int):
    """(frames uint8 [T, S, S, 3], labels int32 [A], boxes float32 [A, T, 4]) from a seed."""
    rng = np.random.default_rng(clip_seed)
    actors = make_actors(rng, num_frames, size, max_actors)
    frames = render_actors(actors, num_frames, size)
    labels = np.array([a.label for a in actors], np.int32)
    return frames, labels, np.stack([a.boxes for a in actors])


class SyntheticDetectionConfig(tfds.core.BuilderConfig):
    """One size of the set; every field changes the generated bytes."""

    def __init__(
        self,
        *,
        num_frames: int = 32,
        image_size: int = 96,
        max_actors: int = 3,
        split_sizes: dict[str, int] | None = None,
        seed: int = 0,
        **kwargs,
    ):
        kwargs.setdefault(
            "description",
            f"1-{max_actors} actors, {num_frames} frames at {image_size}x{image_size}, seed {seed}",
        )
        super().__init__(**kwargs)
        self.num_frames = num_frames
        self.image_size = image_size
        self.max_actors = max_actors
        self.split_sizes = dict(split_sizes or {"train": 3000, "validation": 300, "test": 300})
        self.seed = seed


class SyntheticDetection(common.BeamAwareMixin, tfds.core.GeneratorBasedBuilder):
    """Several moving textured objects per clip, each with its own motion class and box tube."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [
        SyntheticDetectionConfig(name="detection"),
        SyntheticDetectionConfig(
            name="detection_tiny",
            num_frames=16,
            image_size=64,
            split_sizes={"train": 96, "validation": 24, "test": 24},
        ),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        config = self.builder_config
        size, frames = config.image_size, config.num_frames
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "video": tfds.features.Video(
                        shape=(frames, size, size, 3), encoding_format="jpeg"
                    ),
                    "video_id": tfds.features.Text(),
                    "fps": tfds.features.Scalar(dtype=np.float32),
                    "tubes": tfds.features.Sequence(
                        {
                            "label": tfds.features.ClassLabel(names=list(DETECTION_CLASSES)),
                            "tube_id": tfds.features.Scalar(dtype=np.int32),
                            "boxes": tfds.features.Tensor(shape=(frames, 4), dtype=np.float32),
                            "visible": tfds.features.Tensor(shape=(frames,), dtype=np.bool_),
                        }
                    ),
                }
            ),
            description=__doc__,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {split: self._generate_examples(split) for split in self.builder_config.split_sizes}

    def _generate_examples(self, split: str):
        config = self.builder_config
        make = functools.partial(
            make_examples,
            num_frames=config.num_frames,
            image_size=config.image_size,
            max_actors=config.max_actors,
            seed=config.seed,
        )
        items = [(split, index) for index in range(config.split_sizes[split])]
        return common.generate(items, make, self._use_beam, label=split)


def make_examples(
    split_and_index: tuple[str, int],
    *,
    num_frames: int,
    image_size: int,
    max_actors: int,
    seed: int,
):
    """The one example at `index` of `split`."""
    split, index = split_and_index
    frames, labels, boxes = make_clip(
        (seed, SPLIT_NUMBERS[split], index), num_frames, image_size, max_actors
    )
    video_id = f"{split}_{index:06d}"
    yield (
        video_id,
        {
            "video": common.encode_jpeg(frames, quality=95, subsample_chroma=False),
            "video_id": video_id,
            "fps": np.float32(FPS),
            "tubes": {
                "label": labels,
                "tube_id": np.arange(len(labels), dtype=np.int32),
                "boxes": boxes,
                "visible": np.ones(boxes.shape[:2], bool),
            },
        },
    )
