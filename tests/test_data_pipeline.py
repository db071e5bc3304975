"""The tf.data train/eval pipelines: shapes, crops, flips, determinism, resume, multi-host eval."""

import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import TINY_MOTION as TINY
from video_s3d import errors, inputs
from video_s3d.data import dmvr, pipeline, sources
from video_s3d.data.builders import common


def _ramp_video(num_frames=6, height=40, width=56):
    """Identical frames whose colour encodes position: red grows along x, green along y."""
    ys, xs = np.mgrid[0:height, 0:width]
    frame = np.stack(
        [xs * 255 // (width - 1), ys * 255 // (height - 1), np.full_like(xs, 128)], axis=-1
    ).astype(np.uint8)
    return np.repeat(frame[None], num_frames, axis=0)


@pytest.fixture(scope="module")
def ramp_shards(tmp_path_factory):
    """DMVR shards of ramp videos, one per class: every frame of a video is the same JPEG."""
    directory = tmp_path_factory.mktemp("dmvr")
    jpegs = common.encode_jpeg(_ramp_video())
    records = [dmvr.make_example(jpegs, label=i % 3) for i in range(12)]
    dmvr.write_shards(records, str(directory), "train", num_shards=2)
    return f"dmvr:{directory}/{{split}}-*-of-*?num_classes=3"


def test_train_batches_have_requested_shape_dtype_range_and_are_deterministic(data_dir):
    kwargs = dict(
        data_dir=data_dir,
        batch_size=4,
        num_frames=6,
        stride=2,
        crop_size=20,
        seed=3,
        process_index=0,
        process_count=1,
    )
    batches = [next(pipeline.train_iterator(TINY, **kwargs)) for _ in range(2)]
    video, label = batches[0]["video"], batches[0]["label"]
    assert video.shape == (4, 6, 20, 20, 3) and video.dtype == np.uint8  # normalised on device
    assert label.shape == (4,) and label.dtype == np.int32
    assert int(video.max()) - int(video.min()) > 127
    np.testing.assert_array_equal(batches[0]["video"], batches[1]["video"])
    other_seed = next(pipeline.train_iterator(TINY, **{**kwargs, "seed": 4}))
    assert not np.array_equal(other_seed["video"], video)
    # A capped thread pool (inputs.input_threads on CPU hosts) reads the same batches.
    default_pool = pipeline.train_iterator(TINY, **kwargs)
    one_thread = pipeline.train_iterator(TINY, threads=1, **kwargs)
    for _ in range(3):
        np.testing.assert_array_equal(next(one_thread)["video"], next(default_pool)["video"])


def test_one_crop_window_for_all_frames_and_flips_only_where_allowed(ramp_shards):
    kwargs = dict(
        batch_size=16,
        num_frames=4,
        crop_size=16,
        seed=0,
        process_index=0,
        process_count=1,
        crop_area_range=(0.2, 0.6),
    )
    for name, may_flip in ((ramp_shards, True), (ramp_shards + "&flip=false", False)):
        batch = next(pipeline.train_iterator(name, **kwargs))
        video = pipeline.apply_flips(batch)  # what the train step sees after its on-device flip
        # Same window on identical frames gives identical crops...
        np.testing.assert_array_equal(video, np.repeat(video[:, :1], 4, axis=1))
        # ...while different clips got different windows (the check above is not vacuous).
        assert len({clip[0].tobytes() for clip in video}) > 8
        red_slope = np.sign(video[:, 0, :, -1, 0].mean(-1) - video[:, 0, :, 0, 0].mean(-1))
        assert (red_slope < 0).any() == may_flip  # a mirrored ramp has red falling along x
        np.testing.assert_array_equal(red_slope < 0, batch["flip"])  # exactly the flagged clips
        # Mirroring on the host instead gives the same clips, and flags none.
        on_host = next(pipeline.train_iterator(name, flip_on_device=False, **kwargs))
        np.testing.assert_array_equal(on_host["video"], video)
        assert not on_host["flip"].any()
    with pytest.raises(ValueError, match="forbids horizontal flips"):
        pipeline.train_dataset(ramp_shards + "&flip=false", flip=True, **kwargs)


def test_train_iterator_resumes_exactly(data_dir, tmp_path):
    kwargs = dict(
        data_dir=data_dir,
        batch_size=8,
        num_frames=4,
        crop_size=16,
        seed=1,
        process_index=0,
        process_count=1,
        shuffle_buffer=32,
    )
    uninterrupted = pipeline.train_iterator(TINY, **kwargs)
    for _ in range(13):  # past one epoch of the 96 training clips
        next(uninterrupted)
    uninterrupted.save(str(tmp_path / "it"))
    expected = [next(uninterrupted) for _ in range(3)]
    resumed = pipeline.train_iterator(TINY, **kwargs)
    resumed.restore(str(tmp_path / "it"))
    for want in expected:
        got = next(resumed)
        np.testing.assert_array_equal(got["video"], want["video"])
        np.testing.assert_array_equal(got["label"], want["label"])
    with pytest.raises(FileNotFoundError, match="No saved data iterator"):
        resumed.restore(str(tmp_path / "nothing"))


def test_eval_covers_every_view_once_across_two_hosts_in_lockstep(data_dir):
    num_videos = pipeline.dataset_info(TINY, data_dir=data_dir).split_sizes["validation"]
    kwargs = dict(
        data_dir=data_dir,
        split="validation",
        batch_size=7,
        num_frames=8,
        crop_size=16,
        num_clips=2,
        num_crops=3,
        process_count=2,
    )
    seen, batch_counts = [], []
    for host in (0, 1):
        batches = list(pipeline.eval_batches(TINY, process_index=host, **kwargs))
        batch_counts.append(len(batches))
        for batch in batches:
            assert batch["video"].shape == (7, 8, 16, 16, 3) and batch["mask"].dtype == np.bool_
            seen += list(batch["video_index"][batch["mask"]])
            assert (batch["video_index"][~batch["mask"]] == -1).all()
    assert batch_counts[0] == batch_counts[1]
    assert sorted(seen) == sorted(list(range(num_videos)) * 6)


def test_eval_labels_match_the_videos_and_reverse_time_reverses(data_dir):
    kwargs = dict(
        data_dir=data_dir,
        split="test",
        batch_size=40,
        num_frames=16,
        crop_size=32,
        num_clips=0,
        process_index=0,
        process_count=1,
    )
    forward = next(pipeline.eval_batches(TINY, **kwargs))
    backward = next(pipeline.eval_batches(TINY, reverse_time=True, **kwargs))
    assert forward["mask"].all()
    np.testing.assert_array_equal(forward["video"][:, ::-1], backward["video"])
    # video_index is the position in the stored split: compare with the stored ids, and the
    # frames (all 16, full frame, JPEG q=95 4:4:4) with the generator's render of that id.
    import tensorflow_datasets as tfds

    from video_s3d.data.builders import synthetic_render

    builder = sources.get(TINY, data_dir).builder
    stored_ids = [
        ex["video_id"].decode()
        for ex in tfds.as_numpy(
            builder.as_dataset(split="test", decoders={"video": tfds.decode.SkipDecoding()})
        )
    ]
    assert sorted(forward["video_index"]) == list(range(40))
    for clip, label, index in zip(forward["video"], forward["label"], forward["video_index"]):
        number = int(stored_ids[index].split("_")[1])
        assert label == number % 10
        rendered = synthetic_render.make_clip("motion", label, (0, 2, number), 16, 32)
        assert clip.dtype == np.uint8 and np.abs(rendered - clip.astype(np.float32)).mean() < 4


def test_dmvr_shards_read_through_the_pipeline(ramp_shards):
    info = pipeline.dataset_info(ramp_shards)
    assert info.num_classes == 3 and info.split_sizes["train"] == 12 and info.flip_allowed
    batch = next(
        pipeline.eval_batches(
            ramp_shards,
            split="train",
            batch_size=12,
            num_frames=6,
            crop_size=40,
            process_index=0,
            process_count=1,
            central_fraction=1.0,
        )
    )
    assert sorted(batch["video_index"]) == list(range(12))
    # Records went round-robin into 2 shards; the index counts through the shards in order.
    file_order = list(range(0, 12, 2)) + list(range(1, 12, 2))
    assert [file_order[i] % 3 for i in batch["video_index"]] == list(batch["label"])
    # Centre 40x40 of the 40x56 ramp, JPEG q=90: within a few grey levels everywhere.
    expected = _ramp_video()[:, :, 8:48].astype(np.float32)
    assert np.abs(batch["video"] - expected[None]).max() < 8
    # Three crops (default 0.875 of the short side: 35x35, resized to 20): left, centre, right.
    crops = next(
        pipeline.eval_batches(
            ramp_shards,
            split="train",
            batch_size=36,
            num_frames=2,
            crop_size=20,
            num_crops=3,
            process_index=0,
            process_count=1,
        )
    )
    red = crops["video"][..., 0].mean(axis=(1, 2, 3)).reshape(12, 3)
    assert (np.diff(red, axis=1) > 12).all()
    assert (crops["video_index"].reshape(12, 3) == np.arange(12)[:, None]).all()
    with pytest.raises(ValueError, match="num_classes"):
        pipeline.dataset_info("dmvr:/nowhere/x-*")
    with pytest.raises(FileNotFoundError, match="No DMVR shards"):
        pipeline.dataset_info("dmvr:/nowhere/{split}-*?num_classes=2").split_sizes["train"]


def test_every_source_describes_itself_with_one_info_type(data_dir, ramp_shards):
    """TFDS, DMVR and in_memory share one DatasetInfo, so a new field reaches all of them."""
    in_memory = ml_collections.ConfigDict(
        dict(
            name="in_memory",
            num_classes=3,
            train_split="train",
            eval_split="validation",
            num_eval_videos=5,
        )
    )
    infos = [
        inputs.dataset_info(in_memory),
        pipeline.dataset_info(ramp_shards),
        pipeline.dataset_info(TINY, data_dir=data_dir),
    ]
    assert [type(info) for info in infos] == [sources.DatasetInfo] * 3
    assert infos[0].name == "in_memory" and infos[0].class_names == (
        "class_0",
        "class_1",
        "class_2",
    )
    assert infos[0].split_sizes == {"train": 0, "validation": 5}
    # Describing in_memory clips must not load TensorFlow (benchmarks and tests use it).
    probe = (
        "import sys, ml_collections; from video_s3d import inputs; "
        f"inputs.dataset_info(ml_collections.ConfigDict({in_memory.to_dict()!r})); "
        "assert 'tensorflow' not in sys.modules"
    )
    subprocess.run(
        [sys.executable, "-c", probe], check=True, cwd=os.path.dirname(os.path.dirname(__file__))
    )


def test_dmvr_label_outside_the_classes_is_refused_naming_the_record(tmp_path):
    jpegs = common.encode_jpeg(_ramp_video(num_frames=2))
    labels = [0, 1, 2, 0, 3, 1]  # record 4 (the third of shard 0) says class 3 of 3
    records = [dmvr.make_example(jpegs, label=label) for label in labels]
    shards = dmvr.write_shards(records, str(tmp_path), "train", num_shards=2)
    name = f"dmvr:{tmp_path}/{{split}}-*-of-*?num_classes=3"
    with pytest.raises(errors.UserError) as error:
        pipeline.dataset_info(name).split_sizes["train"]
    assert str(error.value) == (
        f"DMVR record 2 of {shards[0]} has label 3, outside 0..2; fix the shards or set "
        f"num_classes in the dataset name ({name})."
    )
    # The training pipeline counts its split first, so it fails before any batch is made.
    with pytest.raises(errors.UserError, match="has label 3, outside 0..2"):
        pipeline.train_iterator(
            name, batch_size=2, num_frames=2, crop_size=8, seed=0, process_index=0, process_count=1
        )
    # A record without a label, and a corrupt shard, are named too.
    unlabelled = tf.train.SequenceExample().SerializeToString()
    for bad, expected in (
        (unlabelled, "has no clip/label/index"),
        (b"\xff junk", "is not a tf.train.SequenceExample"),
    ):
        folder = tmp_path / f"b{len(bad)}"
        dmvr.write_shards([records[0], records[1], bad], str(folder), "train", 1)
        with pytest.raises(
            errors.UserError, match=f"record 2 of {folder}/train-00000-of-00001 {expected}"
        ):
            pipeline.dataset_info(f"dmvr:{folder}/train-*?num_classes=3").split_sizes["train"]
    cut = tmp_path / "c" / "train-00000-of-00001"
    cut.parent.mkdir()
    cut.write_bytes(open(shards[0], "rb").read()[:-7])
    with pytest.raises(
        errors.UserError, match=f"DMVR shard {cut} is truncated or corrupt at or after record 2"
    ):
        pipeline.dataset_info(f"dmvr:{cut}?num_classes=3").split_sizes["train"]


def test_hosts_default_to_this_jax_process(data_dir):
    """Without process_index/process_count the pipeline asks JAX (one process here)."""
    batches = list(
        pipeline.eval_batches(
            TINY, data_dir=data_dir, split="validation", batch_size=16, num_frames=2, crop_size=8
        )
    )
    assert sum(batch["mask"].sum() for batch in batches) == 40


def test_bad_names_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset 'kinetics999'"):
        pipeline.dataset_info("kinetics999")
    assert sources.get("synthetic_motion", str(tmp_path)).name == "synthetic_motion/motion"


def test_crop_windows_stay_inside_the_frame_within_their_area_and_aspect_bounds():
    import tensorflow as tf

    from video_s3d.data import video_ops

    height, width = 256, 340
    windows = np.array(
        [
            video_ops.random_crop_window(
                tf.constant([height, width]),
                tf.constant([i, 9], tf.int64),
                area_range=(0.4, 1.0),
                aspect_range=(3 / 4, 4 / 3),
            ).numpy()
            for i in range(300)
        ]
    )
    y, x, h, w = windows.T
    assert (y >= 0).all() and (x >= 0).all() and (y + h <= height).all() and (x + w <= width).all()
    area = h * w / (height * width)
    assert area.min() >= 0.4 - 0.01 and area.max() <= 1.0
    aspect = w / h  # integer sides: allow a pixel of rounding either way
    assert (aspect >= 3 / 4 * (1 - 1 / 128)).all() and (aspect <= 4 / 3 * (1 + 1 / 128)).all()
    # Jittered, not one window: small and large crops, wide and tall ones, many positions.
    assert area.min() < 0.45 and area.max() > 0.9
    assert aspect.min() < 0.8 and aspect.max() > 1.25
    assert len(set(zip(y, x))) > 200
    again = video_ops.random_crop_window(
        tf.constant([height, width]), tf.constant([7, 9], tf.int64)
    )
    np.testing.assert_array_equal(again.numpy(), windows[7])  # same seed, same window


def test_flipping_the_uint8_crop_before_resizing_equals_flipping_after():
    """The pipeline mirrors the small uint8 crop, then resizes; the order must not matter."""
    import tensorflow as tf

    from video_s3d.data import video_ops

    frames = np.random.default_rng(0).integers(0, 256, (3, 37, 53, 3), dtype=np.uint8)
    np.testing.assert_array_equal(video_ops.mirror(tf.constant(frames)).numpy(), frames[:, :, ::-1])
    for size in (24, 53, 90):  # shrink a lot (antialiased), shrink a little, enlarge
        first = video_ops.resize(video_ops.mirror(tf.constant(frames)), size).numpy()
        last = video_ops.resize(tf.constant(frames), size).numpy()[:, :, ::-1]
        assert first.dtype == np.uint8 and first.shape == (3, size, size, 3)
        # Rounded to uint8: float noise may tip a value at .5 the other way.
        assert np.abs(first.astype(int) - last).max() <= 1
    same = video_ops.resize(tf.constant(frames[:, :37, :37]), 37).numpy()
    np.testing.assert_array_equal(same, frames[:, :37, :37])
    flips = [
        video_ops.random_flip(tf.constant(frames), tf.constant([i, 2], tf.int64)).numpy()
        for i in range(16)
    ]
    mirrored = [np.array_equal(f, frames[:, :, ::-1]) for f in flips]
    assert all(m or np.array_equal(f, frames) for m, f in zip(mirrored, flips))
    assert 0 < sum(mirrored) < 16  # both outcomes occur


def test_fused_decode_equals_whole_frame_decode_then_crop_exactly():
    """The fused path widens the decoded region to the 16-pixel grid plus one column, then
    slices: identical pixels to the baseline, where the raw op's crop edges differ."""
    import tensorflow as tf

    from video_s3d.data import video_ops
    from video_s3d.data.bench import _make_jpegs

    height, width = 64, 96
    jpegs = tf.constant(_make_jpegs(height, width, count=2))  # 4:2:0, colourful texture
    windows = [
        video_ops.random_crop_window(
            tf.constant([height, width]), tf.constant([i, 5], tf.int64), area_range=(0.1, 1.0)
        )
        for i in range(24)
    ]
    windows += [
        tf.constant(w)
        for w in (
            [0, 0, height, width],
            [0, 0, 8, 8],
            [height - 9, width - 9, 9, 9],
            [3, 17, 40, 61],
        )
    ]
    raw_op_differs = False
    for window in windows:
        fused = video_ops.decode_and_crop(jpegs, window).numpy()
        whole = video_ops.decode_then_crop(jpegs, window).numpy()
        np.testing.assert_array_equal(fused, whole)
        raw = tf.image.decode_and_crop_jpeg(jpegs[0], window, channels=3).numpy()
        raw_op_differs |= not np.array_equal(raw, whole[0])
    assert raw_op_differs  # the widening is what makes them equal


def test_a_slice_of_a_split_reads_exactly_its_videos(data_dir, ramp_shards):
    # DMVR shards: 12 records, which go round-robin into 2 shards and are read in file order.
    dmvr_source = sources.get(ramp_shards)
    assert [dmvr_source.split_size(s) for s in ("train[:5]", "train[4:]", "train[10:20]")] == [
        5,
        8,
        2,
    ]
    batch = next(
        pipeline.eval_batches(
            ramp_shards,
            split="train[3:7]",
            batch_size=4,
            num_frames=6,
            crop_size=40,
            process_index=0,
            process_count=1,
        )
    )
    file_order = list(range(0, 12, 2)) + list(range(1, 12, 2))
    assert list(batch["video_index"]) == [0, 1, 2, 3]  # counted from the slice's start
    assert list(batch["label"]) == [i % 3 for i in file_order[3:7]]
    # TFDS: the slice's clips are the whole split's videos 1 and 2, pixel for pixel.
    kwargs = dict(
        data_dir=data_dir,
        batch_size=2,
        num_frames=4,
        crop_size=16,
        process_index=0,
        process_count=1,
    )
    assert sources.get(TINY, data_dir).split_size("train[:3]") == 3
    whole = next(pipeline.eval_batches(TINY, split="validation", **{**kwargs, "batch_size": 3}))
    part = next(pipeline.eval_batches(TINY, split="validation[1:3]", **kwargs))
    np.testing.assert_array_equal(part["video"], whole["video"][1:3])
    np.testing.assert_array_equal(part["label"], whole["label"][1:3])
    for bad in ("train[:10%]", "train[-5:]", "train[3]"):
        with pytest.raises(errors.UserError, match="slice of one by video counts"):
            dmvr_source.split_size(bad)
