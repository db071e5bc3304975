"""Action-detection builders (jhmdb, ucf101_24): tiny manual dirs in the official layouts, with a
missing and a corrupt file each, build; the actor boxes round-trip and bad videos are named."""

import os
import pickle

import numpy as np
import pytest
import scipy.io
import tensorflow_datasets as tfds
from PIL import Image

from tests import detection_dirs_testing as detection_dirs
from tests.detection_dirs_testing import H, W
from video_s3d.data.builders import (
    Jhmdb,
    SyntheticDetection,
    Ucf10124,
    action_tubes,
    jhmdb,
    manual_video,
    synthetic_render,
    ucf101_24,
    video_files,
)

BOX_TOLERANCE = 1e-6  # boxes are stored as float32 fractions


def _build(builder_cls, config, root, data_dir):
    builder = builder_cls(config=config, data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(root)))
    return builder


def _examples(builder, split):
    return {ex["video_id"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split=split))}


def _close_to_source(decoded, source):
    """JPEG-decoded frames match their source up to compression."""
    assert decoded.shape == source.shape
    assert np.abs(decoded.astype(float) - source.astype(float)).mean() < 6.0


# ---------------------------------------------------------------- JHMDB


@pytest.fixture(scope="module")
def jhmdb_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("jhmdb")
    return root, detection_dirs.write_jhmdb_dir(root)


@pytest.fixture(scope="module")
def built_jhmdb(jhmdb_dir, tmp_path_factory):
    root, truth = jhmdb_dir
    return _build(Jhmdb, "split1", root, tmp_path_factory.mktemp("tfds")), truth


def test_jhmdb_boxes_from_puppet_masks_round_trip(built_jhmdb):
    builder, truth = built_jhmdb
    examples = {**_examples(builder, "train"), **_examples(builder, "test")}
    assert set(examples) == {
        "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0",
        "catch/Frisbee_catch_f_cm_np1_ri_med_0",
    }
    names = builder.info.features["tubes"]["label"].names
    assert names == list(jhmdb.CLASSES) and len(names) == 21
    for video_id, example in examples.items():
        frames, boxes, name = truth[video_id]
        tubes = example["tubes"]
        assert [names[label] for label in tubes["label"]] == [name]
        assert tubes["tube_id"].tolist() == [0]
        np.testing.assert_allclose(tubes["boxes"][0], boxes, atol=BOX_TOLERANCE)
        _close_to_source(example["video"], frames)
        assert example["fps"] == pytest.approx(jhmdb.FPS)
    # An empty mask (last frame of the first video) leaves that frame unannotated.
    first = examples["brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0"]["tubes"]
    assert first["visible"][0].tolist() == [True, True, True, True, False]
    assert not first["boxes"][0, 4].any()


def test_jhmdb_missing_and_corrupt_files_are_skipped_and_named(built_jhmdb):
    builder, _ = built_jhmdb
    skipped = {video_id.split("/")[0]: reason for _, video_id, reason in builder.skipped}
    assert set(skipped) == {"clap", "golf", "jump", "kick_ball"}
    assert "frame 2 missing" in skipped["clap"]
    assert "puppet mask not found" in skipped["golf"]
    assert "not found" in skipped["jump"]
    assert "cannot decode frame 00003.png" in skipped["kick_ball"]
    assert builder.info.splits["train"].num_examples == 1
    assert builder.info.splits["test"].num_examples == 1
    summary = manual_video.skipped_summary(builder.skipped)
    assert summary.startswith("4 videos skipped") and "kick_ball/" in summary


def test_jhmdb_names_what_is_missing(tmp_path):
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "brush_hair_test_split1.txt").write_text("a.avi 1\n")
    with pytest.raises(FileNotFoundError, match="none for catch, clap"):
        _build(Jhmdb, "split1", tmp_path, tmp_path / "tfds")
    for name in jhmdb.CLASSES:
        (tmp_path / "splits" / f"{name}_test_split1.txt").write_text("a.avi 1\n")
    with pytest.raises(FileNotFoundError, match="Missing Rename_Images/ in the manual dir"):
        _build(Jhmdb, "split1", tmp_path, tmp_path / "tfds")


# ---------------------------------------------------------------- UCF101-24


@pytest.fixture(scope="module")
def ucf_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ucf101_24")
    return (root, *detection_dirs.write_ucf_dir(root))


def _py2_pickle(obj) -> bytes:
    """`obj` pickled as Python 2's cPickle wrote it by default (protocol 0): str as byte strings,
    numpy arrays by numpy.core.multiarray._reconstruct with their bytes as a str."""
    out = []

    def string(data: bytes):
        out.append("S'" + "".join(f"\\x{b:02x}" for b in data) + "'\n")

    def write(o):
        if isinstance(o, dict):
            out.append("(d")
            for key, value in o.items():
                write(key)
                write(value)
                out.append("s")
        elif isinstance(o, (list, tuple)):
            out.append("(l" if isinstance(o, list) else "(")
            for item in o:
                write(item)
                out.append("a" if isinstance(o, list) else "")
            out.append("" if isinstance(o, list) else "t")
        elif isinstance(o, str):
            string(o.encode("latin1"))
        elif isinstance(o, (int, np.integer)):
            out.append(f"I{int(o)}\n")
        elif isinstance(o, np.ndarray):
            order, code = o.dtype.str[0], o.dtype.str[1:]
            out.append(
                "cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I0\ntS'b'\ntR(I1\n("
            )
            out.extend(f"I{d}\n" for d in o.shape)
            out.append(
                f"tcnumpy\ndtype\n(S'{code}'\nI0\nI1\ntR(I3\nS'{order}'\nNNNI-1\nI-1\nI0\ntbI00\n"
            )
            string(o.tobytes())
            out.append("tb")
        else:
            raise TypeError(type(o))

    write(obj)
    return ("".join(out) + ".").encode("ascii")


def _write_act(root, act, split_ids):
    data = {
        "labels": list(ucf101_24.CLASSES),
        "train_videos": [split_ids["train"]],
        "test_videos": [split_ids["test"]],
        "nframes": {v: detection_dirs.UCF_VIDEOS[v][2] for v in act},
        "resolution": {v: (H, W) for v in act},
        "gttubes": act,
    }
    (root / ucf101_24.ACT_FILE).write_bytes(_py2_pickle(data))


def _check_ucf(builder, truth):
    examples = {**_examples(builder, "train"), **_examples(builder, "test")}
    assert set(examples) == {
        "Basketball/v_Basketball_g01_c01",
        "Biking/v_Biking_g01_c01",
        "Diving/v_Diving_g01_c01",
    }
    for video_id, example in examples.items():
        _, frames, label, tubes = truth[video_id]
        got = example["tubes"]
        assert got["label"].tolist() == [label] * len(tubes)
        assert got["tube_id"].tolist() == list(range(len(tubes)))
        for a, (first, pixel_boxes) in enumerate(tubes):
            frames_in = np.arange(first - 1, first - 1 + len(pixel_boxes))
            x1, y1, x2, y2 = pixel_boxes.T
            expected = np.stack([y1 / H, x1 / W, y2 / H, x2 / W], 1)
            np.testing.assert_allclose(got["boxes"][a, frames_in], expected, atol=BOX_TOLERANCE)
            visible = np.zeros(len(frames), bool)
            visible[frames_in] = True
            assert got["visible"][a].tolist() == visible.tolist()
            assert not got["boxes"][a, ~visible].any()
        _close_to_source(example["video"], frames)
    assert examples["Biking/v_Biking_g01_c01"]["fps"] == pytest.approx(25.0)
    skipped = {video_id: reason for _, video_id, reason in builder.skipped}
    assert set(skipped) == {"Skiing/v_Skiing_g01_c01", "Fencing/v_Fencing_g01_c01"}
    assert "cannot decode" in skipped["Skiing/v_Skiing_g01_c01"]
    assert "not found" in skipped["Fencing/v_Fencing_g01_c01"]


def test_ucf101_24_act_annotations_round_trip(ucf_dir, tmp_path_factory):
    root, truth, act, _, split_ids = ucf_dir
    _write_act(root, act, split_ids)
    try:
        builder = _build(Ucf10124, "split1", root, tmp_path_factory.mktemp("tfds"))
    finally:
        os.remove(root / ucf101_24.ACT_FILE)
    assert builder.info.features["tubes"]["label"].names == list(ucf101_24.CLASSES)
    _check_ucf(builder, truth)


def test_ucf101_24_singh_annotations_round_trip(ucf_dir, tmp_path_factory):
    root, truth, _, singh, split_ids = ucf_dir
    detection_dirs.write_singh(root, singh, split_ids)
    builder = _build(Ucf10124, "split1", root, tmp_path_factory.mktemp("tfds"))
    _check_ucf(builder, truth)


def test_python2_pickles_load_as_plain_data(tmp_path):
    array = np.arange(10, dtype=np.float32).reshape(2, 5) - 3.5
    data = {"a": [array, 7, ("x", 2)], 3: {"b": np.array([1, 2], ">i2")}}
    for name, payload in (("py2.pkl", _py2_pickle(data)), ("py3.pkl", pickle.dumps(data, 2))):
        (tmp_path / name).write_bytes(payload)
        loaded = ucf101_24.load_annotation_pickle(str(tmp_path / name))
        np.testing.assert_array_equal(loaded["a"][0], array)
        assert loaded["a"][0].dtype == np.float32 and loaded["a"][1:] == [7, ("x", 2)]
        np.testing.assert_array_equal(loaded[3]["b"], [1, 2])


def test_annotation_pickle_that_runs_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / ucf101_24.ACT_FILE
    path.write_bytes(pickle.dumps({"labels": Exploit()}))
    with pytest.raises(ValueError, match=r"system, which is not numpy data"):
        ucf101_24.load_annotation_pickle(str(path))


def test_detection_builders_have_the_synthetic_detection_features():
    def spec(tensor_info):  # key -> (dtype, rank), nested as the features are
        return {
            key: spec(info) if isinstance(info, dict) else (info.np_dtype, len(info.shape))
            for key, info in tensor_info.items()
        }

    reference = spec(SyntheticDetection(config="detection_tiny").info.features.get_tensor_info())
    assert set(reference["tubes"]) == {"label", "tube_id", "boxes", "visible"}
    for builder_cls in (Jhmdb, Ucf10124):
        features = builder_cls(config="split1").info.features
        assert spec(features.get_tensor_info()) == reference


def test_build_cli_builds_jhmdb_and_names_the_skipped(jhmdb_dir, tmp_path):
    from video_s3d.data import build, sources
    from video_s3d.errors import UserError

    root, _ = jhmdb_dir
    summary = build.build("jhmdb/split1", data_dir=str(tmp_path), manual_dir=str(root))
    assert "train: 1 videos" in summary and "test: 1 videos" in summary
    assert "4 videos skipped" in summary and "golf/" in summary
    source = sources.get("jhmdb/split1", str(tmp_path))
    assert source.info().class_names == jhmdb.CLASSES
    with pytest.raises(UserError, match="detection dataset"):
        source.read("train", 0, 1)


def test_examples_feed_the_detectors_keyframe_targets(built_jhmdb):
    from video_s3d.detection import training

    builder, _ = built_jhmdb
    example = _examples(builder, "train")["brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0"]
    tubes = example["tubes"]
    video = training.LabelledVideo(
        example["video_id"].decode(),
        example["video"],
        tubes["label"],
        tubes["boxes"],
        tubes["visible"],
    )
    boxes, labels, valid = training.keyframe_targets(
        video.labels, video.boxes, video.visible, frame=0, max_actors=2
    )
    assert valid.tolist() == [True, False] and labels[0] == 0
    np.testing.assert_array_equal(boxes[0], tubes["boxes"][0, 0])
    _, _, valid = training.keyframe_targets(
        video.labels, video.boxes, video.visible, frame=4, max_actors=2
    )
    assert not valid.any()  # the frame whose puppet mask is empty


def test_boxes_use_the_annotation_grid_and_drop_frames_past_the_end():
    tube = action_tubes.Tube(3, np.array([0, 2, 7]), np.array([[0, 0, 48, 36]] * 3), (96, 72))
    labels, boxes, visible, dropped = action_tubes.dense_tubes([tube], 4, width=48, height=36)
    assert labels.tolist() == [3] and dropped == 1
    assert visible.tolist() == [[True, False, True, False]]
    np.testing.assert_allclose(boxes[0, 0], [0, 0, 0.5, 0.5])  # (ymin, xmin, ymax, xmax)
    masks = np.zeros((36, 48, 2), np.uint8)
    masks[10, 20, 0] = 1  # a single pixel: a box one pixel wide and tall
    pixel_boxes, visible = action_tubes.mask_boxes(masks)
    assert visible.tolist() == [True, False]
    assert pixel_boxes[0].tolist() == [20, 10, 21, 11]


def test_ucf101_24_names_the_missing_annotation_files(tmp_path):
    (tmp_path / "rgb-images").mkdir()
    (tmp_path / "readme.txt").write_text("frames go here")
    with pytest.raises(FileNotFoundError, match="expected one of UCF101v2-GT.pkl, pyannot.pkl"):
        _build(Ucf10124, "split1", tmp_path, tmp_path / "tfds")
    with open(tmp_path / ucf101_24.SINGH_FILE, "wb") as f:
        pickle.dump({}, f)
    with pytest.raises(FileNotFoundError, match="Missing UCF101-24 trainlist01.txt"):
        _build(Ucf10124, "split1", tmp_path, tmp_path / "tfds")


def test_show_draws_the_boxes_of_a_built_detection_set(built_jhmdb, tmp_path):
    from video_s3d.data import show, show_tubes

    builder, _ = built_jhmdb
    out = tmp_path / "boxes.png"
    summary = show.show("jhmdb/split1", str(out), num_clips=2, data_dir=builder.data_dir_root)
    assert "1 videos x 4 frames of jhmdb/split1/train" in summary  # the 4 annotated
    image = np.asarray(Image.open(out).convert("RGB")).astype(int)
    # The first tube's colour (#ff3030) is drawn.
    assert (np.abs(image - (255, 48, 48)).sum(axis=-1) < 40).sum() > 50
    visible = np.array([[False, True, True, False], [False, False, True, False]])
    assert show_tubes.pick_frames(visible, 8).tolist() == [1, 2]
    assert show_tubes.pick_frames(np.zeros((0, 3), bool), 2).tolist() == [0, 2]
