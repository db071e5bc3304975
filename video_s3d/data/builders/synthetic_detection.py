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

import numpy as np
import tensorflow_datasets as tfds

from video_s3d.data.builders import common, synthetic_base, synthetic_render
from video_s3d.errors import UserError

# The classes whose objects keep a solid, single outline all clip long (no fading, no halves).
DETECTION_CLASSES = synthetic_render.MOTION_CLASSES[:6]
MAX_OVERLAP = 0.1
# Draws of a trajectory tried per actor before the clip settles for fewer actors.
PLACEMENT_ATTEMPTS = 25


@dataclasses.dataclass(frozen=True)
class Actor:
    label: int
    params: synthetic_render.ClipParams
    boxes: np.ndarray  # [T, 4] float32 (ymin, xmin, ymax, xmax), fractions of the frame


def object_boxes(params: synthetic_render.ClipParams, num_frames: int, size: int) -> np.ndarray:
    """[T, 4] float32: the box of the pixels inside the object's outline in every frame, computed
    with the renderer's own geometry (the pixels it blends with alpha >= 0.5); an invisible
    object has no box."""
    states = synthetic_render.interpolate(params.start, params.end, num_frames)
    inside = synthetic_render.object_mask(params.shape, states, size)
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
    xs, ys = synthetic_render.pixel_grid(size)
    canvas = frames.astype(np.float32)
    for actor in actors[1:]:
        states = synthetic_render.interpolate(actor.params.start, actor.params.end, num_frames)
        canvas = synthetic_render.draw_object(canvas, actor.params, states, xs, ys, size)
    return synthetic_render.quantise(canvas)


def make_clip(clip_seed, num_frames: int, size: int, max_actors: int):
    """(frames uint8 [T, S, S, 3], labels int32 [A], boxes float32 [A, T, 4]) from a seed."""
    rng = np.random.default_rng(clip_seed)
    actors = make_actors(rng, num_frames, size, max_actors)
    frames = render_actors(actors, num_frames, size)
    labels = np.array([a.label for a in actors], np.int32)
    return frames, labels, np.stack([a.boxes for a in actors])


class SyntheticDetectionConfig(synthetic_base.SyntheticConfig):
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
        super().__init__(
            num_frames=num_frames,
            image_size=image_size,
            split_sizes=split_sizes,
            seed=seed,
            **kwargs,
        )
        if max_actors < 1:
            raise UserError(
                f"Synthetic detection config {self.name!r} has max_actors={max_actors}: every "
                "clip needs at least one actor, so give 1 or more."
            )
        self.max_actors = max_actors


def make_examples(
    split_and_index: tuple[str, int],
    *,
    num_frames: int,
    image_size: int,
    max_actors: int,
    seed: int,
):
    """The one example at `index` of `split`."""
    clip_seed, video_id = synthetic_base.clip_seed_and_id(split_and_index, seed)
    frames, labels, boxes = make_clip(clip_seed, num_frames, image_size, max_actors)
    visible = np.ones(boxes.shape[:2], bool)
    yield common.tube_example(
        video_id, synthetic_base.encode(frames), synthetic_base.FPS, labels, boxes, visible
    )


class SyntheticDetection(synthetic_base.SyntheticBuilder):
    """Several moving textured objects per clip, each with its own motion class and box tube."""

    make_examples = staticmethod(make_examples)
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
            features=common.tube_features(
                DETECTION_CLASSES, (frames, size, size, 3), tube_encoding="none"
            ),
            description=__doc__,
        )

    def example_arguments(self) -> dict:
        return dict(super().example_arguments(), max_actors=self.builder_config.max_actors)
