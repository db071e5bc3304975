"""Train crop modes (paper / random_resized), short clips (never backwards in time), and the
uint8 batches that replace the host-side float path."""

import numpy as np
import pytest
import tensorflow as tf

from video_s3d import normalization
from video_s3d.data import dmvr, pipeline, sources, video_ops
from video_s3d.data.bench import _make_jpegs
from video_s3d.data.builders import common


def _write(directory, videos, num_shards=1):
    records = [
        dmvr.make_example(common.encode_jpeg(video), label=i % 2) for i, video in enumerate(videos)
    ]
    dmvr.write_shards(records, str(directory), "train", num_shards=num_shards)
    return f"dmvr:{directory}/{{split}}-*-of-*?num_classes=2"


@pytest.fixture(scope="module")
def textured_shards(tmp_path_factory):
    """Four videos of 3 identical textured 40x56 frames (every position looks different)."""
    jpegs = _make_jpegs(40, 56, count=4)
    frames = tf.stack([tf.image.decode_jpeg(j, channels=3) for j in jpegs]).numpy()
    return _write(tmp_path_factory.mktemp("tex"), [np.repeat(f[None], 3, 0) for f in frames])


@pytest.fixture(scope="module")
def counting_shards(tmp_path_factory):
    """Short videos (5 frames) whose grey level encodes the frame index: 20, 60, ..., 180."""
    videos = [
        np.broadcast_to(
            (20 + 40 * np.arange(5, dtype=np.uint8))[:, None, None, None], (5, 32, 32, 3)
        ).copy()
        for _ in range(4)
    ]
    return _write(tmp_path_factory.mktemp("count"), videos)


def _stored_frame(name):
    """The first frame of the first stored video, decoded whole."""
    raw = next(iter(sources.get(name).read("train", 0, 1)))
    return tf.image.decode_jpeg(raw["jpegs"][0], channels=3).numpy()


def _positions(crop, frame):
    """Every (y, x) where `crop` (or its mirror) appears unchanged in `frame`."""
    side = crop.shape[0]
    found = []
    for y in range(frame.shape[0] - side + 1):
        for x in range(frame.shape[1] - side + 1):
            window = frame[y : y + side, x : x + side]
            if np.array_equal(window, crop) or np.array_equal(window[:, ::-1], crop):
                found.append((y, x))
    return found


def test_paper_crop_is_a_fixed_square_of_the_stored_frames_never_resized(textured_shards):
    kwargs = dict(
        batch_size=12,
        num_frames=3,
        seed=0,
        process_index=0,
        process_count=1,
        train_crop="paper",
        shuffle_buffer=1,
    )
    batch = next(pipeline.train_iterator(textured_shards, crop_size=24, **kwargs))
    stored = [
        tf.image.decode_jpeg(raw["jpegs"][0], channels=3).numpy()
        for raw in sources.get(textured_shards).read("train", 0, 4)
    ]
    positions = set()
    for clip in batch["video"]:
        assert clip.dtype == np.uint8 and clip.shape == (3, 24, 24, 3)
        # Exactly a 24x24 window of one stored frame (or its mirror): decoded, not resampled.
        found = [p for frame in stored for p in _positions(clip[0], frame)]
        assert found, "a paper crop must be pixels of the stored frame"
        positions.add(found[0])
    assert len(positions) > 4  # the position is random
    # Frames smaller than the crop: the largest square (40x40 of 40x56), scaled up to 48.
    small = next(pipeline.train_iterator(textured_shards, crop_size=48, **kwargs))["video"]
    assert small.shape == (12, 3, 48, 48, 3)
    candidates = [
        video_ops.resize(tf.constant(f[None, :, x : x + 40]), 48).numpy()[0].astype(int)
        for f in stored
        for x in range(17)
    ]
    for clip in small:  # mirrored before resizing: rounding may differ by one grey level
        assert any(
            np.abs(clip[0] - c).max() <= 1 or np.abs(clip[0] - c[:, ::-1]).max() <= 1
            for c in candidates
        )
    with pytest.raises(ValueError, match="train_crop must be one of"):
        pipeline.train_dataset(textured_shards, crop_size=24, **{**kwargs, "train_crop": "centre"})


def test_fixed_crop_window_is_uniform_over_positions_and_inside_the_frame():
    windows = np.array(
        [
            video_ops.fixed_crop_window(
                tf.constant([256, 340]), 224, tf.constant([i, 3], tf.int64)
            ).numpy()
            for i in range(400)
        ]
    )
    y, x, h, w = windows.T
    assert (h == 224).all() and (w == 224).all()
    assert y.min() >= 0 and y.max() <= 32 and x.min() >= 0 and x.max() <= 116
    assert y.min() <= 2 and y.max() >= 30 and x.min() <= 5 and x.max() >= 110  # whole range
    portrait = video_ops.fixed_crop_window(
        tf.constant([300, 200]), 224, tf.constant([1, 1], tf.int64)
    ).numpy()
    assert portrait[2] == portrait[3] == 200 and portrait[1] == 0 and portrait[0] <= 100


def test_uint8_batches_normalise_to_the_old_float_path():
    """Old path: decode+crop -> flip -> float resize -> normalise on the host. New: the same
    crops travel as uint8 (resized only where needed, rounded) and are normalised on device."""
    jpegs = tf.constant(_make_jpegs(64, 96, count=4))
    norm = normalization.Normalization()
    for seed in range(6):
        for window, size in (
            (
                video_ops.fixed_crop_window(
                    tf.constant([64, 96]), 48, tf.constant([seed, 0], tf.int64)
                ),
                48,
            ),
            (
                video_ops.random_crop_window(
                    tf.constant([64, 96]), tf.constant([seed, 1], tf.int64)
                ),
                40,
            ),
        ):
            crop = video_ops.decode_and_crop(jpegs, window)
            old = video_ops.normalise(
                tf.image.resize(crop, [size, size])
                if crop.shape[1:3] != (size, size)
                else tf.cast(crop, tf.float32)
            ).numpy()
            new = video_ops.resize(crop, size).numpy()
            assert new.dtype == np.uint8
            on_device = np.asarray(norm(new))
            if size == 48:  # the paper crop: no resize, so exactly the old clip
                np.testing.assert_array_equal(on_device, old)
            else:  # resized: rounded to the nearest grey level, half a level at most
                assert np.abs(on_device - old).max() <= 0.5 / 127.5 + 1e-6


@pytest.mark.parametrize("mode", video_ops.SHORT_CLIP_MODES)
def test_short_clips_never_jump_backwards(mode):
    for num_available in (1, 3, 7, 20, 31, 40):
        for stride in (1, 2):
            for seed in range(5):
                train = video_ops.train_window(
                    num_available, 16, stride, tf.constant([seed, 4], tf.int64), mode
                ).numpy()
                evals = video_ops.eval_windows(num_available, 16, stride, 3, mode).numpy()
                for indices in [train, *evals]:
                    assert len(indices) == 16 and (np.diff(indices) >= 0).all(), (mode, indices)
                    assert indices.min() >= 0 and indices.max() < num_available
                if num_available < 15 * stride + 1:  # short: the whole video, first frame to last
                    assert train.max() == num_available - 1 or mode == video_ops.SPREAD
                    assert evals[0][0] == 0 or mode == video_ops.SPREAD
                    assert evals[0][-1] == num_available - 1
    with pytest.raises(ValueError, match="short_clip must be one of"):
        video_ops.train_window(3, 16, 1, tf.constant([0, 0], tf.int64), "loop")


def test_spread_covers_the_whole_clip_and_repeat_last_keeps_the_frame_rate():
    spread = video_ops.eval_windows(10, 20, 1, 1, video_ops.SPREAD).numpy()[0]
    assert sorted(set(spread)) == list(range(10)) and (np.bincount(spread) == 2).all()
    repeat = video_ops.eval_windows(10, 20, 1, 1, video_ops.REPEAT_LAST).numpy()[0]
    np.testing.assert_array_equal(repeat, list(range(10)) + [9] * 10)
    long_video = video_ops.eval_windows(100, 20, 2, 1, video_ops.SPREAD).numpy()[0]
    assert (np.diff(long_video) == 2).all()  # a window that fits is consecutive at the stride


def test_a_short_something_something_clip_gives_monotone_frame_indices(counting_shards, tmp_path):
    """Something-something's default is `spread`; through the whole pipeline a 5-frame video in
    a 12-frame window plays forwards only (grey levels say which frame each one is)."""
    assert sources.get("something_something_v2", str(tmp_path)).short_clip == video_ops.SPREAD
    assert sources.get("kinetics400", str(tmp_path)).short_clip == video_ops.REPEAT_LAST
    for mode in video_ops.SHORT_CLIP_MODES:
        batch = next(
            pipeline.train_iterator(
                counting_shards,
                batch_size=4,
                num_frames=12,
                stride=1,
                crop_size=16,
                seed=0,
                process_index=0,
                process_count=1,
                flip=False,
                train_crop="paper",
                short_clip=mode,
            )
        )
        views = next(
            pipeline.eval_batches(
                counting_shards,
                split="train",
                batch_size=4,
                num_frames=12,
                crop_size=16,
                num_clips=0,
                process_index=0,
                process_count=1,
                short_clip=mode,
            )
        )
        for clip in list(batch["video"]) + list(views["video"]):
            index = np.round((clip.astype(float).mean(axis=(1, 2, 3)) - 20) / 40).astype(int)
            assert (np.diff(index) >= 0).all() and index[0] == 0 and index[-1] == 4, (mode, index)
