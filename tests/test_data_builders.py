"""Manual-dir video builders: real encoded videos round-trip, bad videos are skipped and named."""

import json
import os

import numpy as np
import pytest

from video_s3d import errors
from video_s3d.data import pipeline
from video_s3d.data.builders import (
    Hmdb51,
    Kinetics400,
    SomethingSomethingV2,
    Ucf101Manual,
    manual_video,
    synthetic_render,
    video_files,
)

HEIGHT, WIDTH, FRAMES = 256, 320, 8  # short side already 256: stored without resizing


def _frames(seed):
    """Textured moving object, 256x320: rendered at 320 and cut to 256 rows."""
    clip = synthetic_render.make_clip("motion", seed % 10, (seed,), FRAMES, WIDTH)
    return np.ascontiguousarray(clip[:, 32 : 32 + HEIGHT])


@pytest.fixture(scope="module")
def ucf_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ucf101")
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (lists / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1\nArchery/v_Archery_g01_c01.avi 2\n"
        "Archery/v_Archery_g02_c01.avi 2\n"
    )
    (lists / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi\nArchery/v_Archery_g08_c01.avi\n"
    )
    frames = {}
    for seed, (name, ext) in enumerate(
        [
            ("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01", "mp4"),
            ("Archery/v_Archery_g01_c01", "webm"),
            ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01", "mp4"),
        ]
    ):
        path = root / "UCF-101" / f"{name}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        frames[os.path.basename(name)] = _frames(seed)
        video_files.write_video(str(path), frames[os.path.basename(name)], fps=25)
    # A truncated, undecodable video; v_Archery_g02_c01 is listed but has no file at all.
    (root / "UCF-101" / "Archery" / "v_Archery_g08_c01.avi").write_bytes(b"RIFF\0\0\0\0AVI junk")
    return root, frames


@pytest.fixture(scope="module")
def built_ucf(ucf_dir, tmp_path_factory):
    root, frames = ucf_dir
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    builder = Ucf101Manual(config="split1", data_dir=data_dir)
    import tensorflow_datasets as tfds

    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(root)))
    return builder, data_dir, frames


def test_corrupt_and_missing_videos_are_skipped_counted_and_named(built_ucf):
    builder, _, _ = built_ucf
    skipped = {video_id: reason for _, video_id, reason in builder.skipped}
    assert set(skipped) == {"v_Archery_g02_c01", "v_Archery_g08_c01"}
    assert "not found" in skipped["v_Archery_g02_c01"]
    assert "cannot decode" in skipped["v_Archery_g08_c01"]
    summary = manual_video.skipped_summary(builder.skipped)
    assert summary.startswith("2 videos skipped") and "v_Archery_g08_c01" in summary
    assert builder.info.splits["train"].num_examples == 2
    assert builder.info.splits["test"].num_examples == 1
    assert builder.info.features["label"].names == ["ApplyEyeMakeup", "Archery"]


def test_mp4_and_webm_frames_round_trip_through_the_pipeline(built_ucf):
    _, data_dir, frames = built_ucf
    batch = next(
        pipeline.eval_batches(
            "ucf101/split1",
            data_dir=data_dir,
            split="train",
            batch_size=2,
            num_frames=FRAMES,
            crop_size=HEIGHT,
            num_clips=0,
            process_index=0,
            process_count=1,
            central_fraction=1.0,
        )
    )
    info = pipeline.dataset_info("ucf101", data_dir=data_dir)
    by_label = {
        info.class_names[label]: clip for label, clip in zip(batch["label"], batch["video"])
    }
    for class_name, source in (
        ("ApplyEyeMakeup", frames["v_ApplyEyeMakeup_g01_c01"]),
        ("Archery", frames["v_Archery_g01_c01"]),
    ):
        got = by_label[class_name].astype(np.float32)  # uint8: normalised on the device
        want = source[:, :, (WIDTH - HEIGHT) // 2 : (WIDTH + HEIGHT) // 2].astype(np.float32)
        # H.264 / VP9 at crf 18, then JPEG q90: a few grey levels on average, all frames in order.
        error = np.abs(got - want).mean(axis=(1, 2, 3))
        print(class_name, "mean abs error per frame", error.round(2))
        assert error.max() < 6.0, (class_name, error)
        assert np.abs(got[0] - want[-1]).mean() > error.max()  # frames are not shuffled in time


def test_read_video_resamples_fps_and_resizes_short_side(tmp_path):
    path = str(tmp_path / "clip.mp4")
    video_files.write_video(path, _frames(0)[:, :64, :80], fps=30)
    frames, fps = video_files.read_video(path, fps=15, short_side=32)
    assert fps == 15 and frames.shape == (4, 32, 40, 3)
    frames, fps = video_files.read_video(path, fps=None, short_side=None)
    assert fps == 30 and frames.shape == (8, 64, 80, 3)
    upsampled, _ = video_files.read_video(path, fps=60, short_side=None)
    assert len(upsampled) == 16
    np.testing.assert_array_equal(upsampled[::2], frames)  # each source frame shown twice
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(video_files.UnreadableVideo, match="empty"):
        video_files.read_video(str(tmp_path / "empty.mp4"))


def test_missing_or_incomplete_manual_dir_says_which_files_go_where(tmp_path):
    import tensorflow_datasets as tfds

    empty = tmp_path / "empty"
    empty.mkdir()
    builder = Hmdb51(config="split1", data_dir=str(tmp_path / "out"))
    with pytest.raises(errors.UserFileError, match=r"is missing or empty\): pass --manual_dir=DIR"):
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(empty))
        )
    (empty / "readme.txt").write_text("videos go here")
    with pytest.raises(
        errors.UserFileError, match=r"testTrainMulti_7030_splits/<class>_test_split1"
    ):
        builder.list_videos(str(empty))
    with pytest.raises(errors.UserFileError, match="ucfTrainTestlist/classInd.txt"):
        Ucf101Manual(config="split1", data_dir=str(tmp_path / "out")).list_videos(str(empty))
    with pytest.raises(
        FileNotFoundError, match=r"python -m video_s3d.data.build --dataset=hmdb51 --manual_dir=DIR"
    ):
        pipeline.ensure_built("hmdb51", data_dir=str(tmp_path / "out"))


def test_annotation_layouts_of_kinetics_ssv2_and_hmdb51(tmp_path):
    kinetics = tmp_path / "k400"
    (kinetics / "annotations").mkdir(parents=True)
    (kinetics / "annotations" / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nriding a bike,abc,10,20,train\n"
        "abseiling,xyz,0,10,train\n"
    )
    (kinetics / "annotations" / "val.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nabseiling,qqq,5,15,val\n"
    )
    (kinetics / "annotations" / "test.csv").write_text("youtube_id,time_start,time_end,split\n")
    (kinetics / "train").mkdir()
    (kinetics / "train" / "abc_000010_000020.mp4").write_bytes(b"x")
    names, splits = Kinetics400(data_dir=str(tmp_path / "o")).list_videos(str(kinetics))
    assert names == ["abseiling", "riding a bike"] and set(splits) == {"train", "validation"}
    assert [(i.video_id, i.label, i.path is not None) for i in splits["train"]] == [
        ("abc_000010_000020", 1, True),
        ("xyz_000000_000010", 0, False),
    ]

    ssv2 = tmp_path / "ssv2"
    (ssv2 / "labels").mkdir(parents=True)
    (ssv2 / "labels" / "something-something-v2-labels.json").write_text(
        json.dumps(
            {
                "Pushing something from left to right": "1",
                "Pushing something from right to left": "0",
            }
        )
    )
    for split, template in (
        ("train", "Pushing [something] from left to right"),
        ("validation", "Pushing [something] from right to left"),
    ):
        (ssv2 / "labels" / f"something-something-v2-{split}.json").write_text(
            json.dumps([{"id": "17", "template": template, "label": "x", "placeholders": ["pen"]}])
        )
    (ssv2 / "17.webm").write_bytes(b"x")
    names, splits = SomethingSomethingV2(data_dir=str(tmp_path / "o")).list_videos(str(ssv2))
    assert names == ["Pushing something from right to left", "Pushing something from left to right"]
    assert splits["train"][0].label == 1 and splits["validation"][0].label == 0

    hmdb = tmp_path / "hmdb"
    (hmdb / "testTrainMulti_7030_splits").mkdir(parents=True)
    for name in ("wave", "jump"):
        (hmdb / "testTrainMulti_7030_splits" / f"{name}_test_split2.txt").write_text(
            f"{name}_a.avi 1 \n{name}_b.avi 2 \n{name}_c.avi 0 \n"
        )
    names, splits = Hmdb51(config="split2", data_dir=str(tmp_path / "o")).list_videos(str(hmdb))
    assert names == ["jump", "wave"]
    assert [(i.video_id, i.label) for i in splits["train"]] == [("jump_a", 0), ("wave_a", 1)]
    assert [i.video_id for i in splits["test"]] == ["jump_b", "wave_b"]


def test_builds_the_same_dataset_under_apache_beam(ucf_dir, built_ucf, tmp_path):
    """Beam's DirectRunner builds byte-identical examples (skipped where Beam is not installed:
    apache-beam needs protobuf<7 and pillow<13, which our pins exclude; see
    video_s3d/data/README.md)."""
    beam = pytest.importorskip("apache_beam")
    import tensorflow_datasets as tfds

    root, _ = ucf_dir
    local, _, _ = built_ucf
    builder = Ucf101Manual(config="split1", data_dir=str(tmp_path))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=str(root),
            beam_options=beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"]),
        )
    )
    assert builder.skipped == []  # skips were counted by Beam workers, not the local loop
    for split in ("train", "test"):
        assert builder.info.splits[split].num_examples == local.info.splits[split].num_examples

        def stored(b):
            ds = b.as_dataset(split=split, decoders={"video": tfds.decode.SkipDecoding()})
            return {ex["video_id"]: list(ex["video"]) for ex in tfds.as_numpy(ds)}

        assert stored(builder) == stored(local)
