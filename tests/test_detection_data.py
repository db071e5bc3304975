"""The synthetic_detection set: exact boxes, determinism, and a TFDS round trip."""

import dataclasses

import numpy as np
import pytest
import tensorflow_datasets as tfds

from video_s3d.data.builders import synthetic_detection, synthetic_render
from video_s3d.errors import UserError


def test_boxes_follow_the_renderers_geometry():
    rng = np.random.default_rng(0)
    params = synthetic_render.make_params("motion", 0, rng, 100)  # moving right
    # An axis-aligned square (half side 0.85 radius) at a known place, moving right.
    params = dataclasses.replace(
        params,
        shape=synthetic_render.SHAPES.index("square"),
        start=np.array([0.3, 0.5, 0.2, 0.0, 1.0]),
        end=np.array([0.7, 0.5, 0.2, 0.0, 1.0]),
    )
    boxes = synthetic_detection.object_boxes(params, 5, 100)
    half = 0.85 * 0.2
    np.testing.assert_allclose(
        boxes[0], [0.5 - half, 0.3 - half, 0.5 + half, 0.3 + half], atol=0.011
    )
    np.testing.assert_allclose(
        boxes[-1], [0.5 - half, 0.7 - half, 0.5 + half, 0.7 + half], atol=0.011
    )
    # The pixels inside a box differ from the frame without the object; outside they do not.
    frames = synthetic_render.render(params, 5, 100)
    empty = synthetic_render.render(
        dataclasses.replace(
            params, start=params.start * [1, 1, 1, 1, 0], end=params.end * [1, 1, 1, 1, 0]
        ),
        5,
        100,
    )
    changed = np.any(frames != empty, axis=-1)
    for t in range(5):
        y0, x0, y1, x1 = np.round(boxes[t] * 100).astype(int)
        rows, cols = np.flatnonzero(changed[t].any(1)), np.flatnonzero(changed[t].any(0))
        # Soft edges blend one more pixel at most on each side.
        assert abs(rows[0] - y0) <= 1 and abs(rows[-1] + 1 - y1) <= 1
        assert abs(cols[0] - x0) <= 1 and abs(cols[-1] + 1 - x1) <= 1


def test_clips_are_deterministic_and_actors_barely_overlap():
    first = synthetic_detection.make_clip((0, 0, 3), 8, 48, 3)
    again = synthetic_detection.make_clip((0, 0, 3), 8, 48, 3)
    other = synthetic_detection.make_clip((0, 0, 4), 8, 48, 3)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    actor_counts = set()
    for index in range(12):
        frames, labels, boxes = synthetic_detection.make_clip((1, 0, index), 8, 48, 3)
        assert frames.shape == (8, 48, 48, 3) and frames.dtype == np.uint8
        assert boxes.shape == (len(labels), 8, 4)
        assert np.all((boxes >= 0) & (boxes <= 1)) and np.all(boxes[..., 2:] > boxes[..., :2])
        assert np.all((labels >= 0) & (labels < len(synthetic_detection.DETECTION_CLASSES)))
        for i in range(len(labels)):
            for j in range(i):
                assert (
                    synthetic_detection._max_overlap(boxes[i], boxes[j])
                    <= synthetic_detection.MAX_OVERLAP
                )
        actor_counts.add(len(labels))
    assert len(actor_counts) > 1  # clips differ in how many actors they hold


def test_single_actor_clip_is_the_renderers_clip():
    rng = np.random.default_rng(5)
    actors = synthetic_detection.make_actors(rng, 6, 32, max_actors=1)
    np.testing.assert_array_equal(
        synthetic_detection.render_actors(actors, 6, 32),
        synthetic_render.render(actors[0].params, 6, 32),
    )


def test_tfds_round_trip(tmp_path):
    config = synthetic_detection.SyntheticDetectionConfig(
        name="round_trip",
        num_frames=6,
        image_size=32,
        max_actors=3,
        seed=7,
        split_sizes={"train": 4, "validation": 2},
    )
    builder = synthetic_detection.SyntheticDetection(config=config, data_dir=str(tmp_path))
    builder.download_and_prepare()
    examples = list(tfds.as_numpy(builder.as_dataset(split="train")))
    assert len(examples) == 4
    for example in examples:
        index = int(example["video_id"].decode().split("_")[1])
        frames, labels, boxes = synthetic_detection.make_clip((7, 0, index), 6, 32, 3)
        tubes = example["tubes"]
        np.testing.assert_array_equal(tubes["label"], labels)
        np.testing.assert_array_equal(tubes["tube_id"], np.arange(len(labels)))
        np.testing.assert_array_equal(tubes["boxes"], boxes)
        assert tubes["visible"].all()
        # JPEG at quality 95 without chroma subsampling keeps frames close.
        assert np.abs(example["video"].astype(int) - frames).mean() < 4


def test_a_config_without_actors_is_a_user_error():
    with pytest.raises(UserError, match="at least one actor"):
        synthetic_detection.SyntheticDetectionConfig(name="empty", max_actors=0)
