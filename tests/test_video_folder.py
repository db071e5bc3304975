"""video_folder: your own videos (folder per class, or a CSV) -> a TFDS dataset -> a trained run."""

import json
import os

import numpy as np
import pytest

from tests import inference_testing
from video_s3d import errors, inference, train
from video_s3d.data import build, sources
from video_s3d.data.builders import video_files, video_folder

CLASSES = ("jumping", "waving")


def _good_videos(root: str, per_class: int = 3) -> list[str]:
    paths = []
    for label, name in enumerate(CLASSES):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class):
            path = os.path.join(root, name, f"v{i}.mp4")
            frames = inference_testing.motion_frames(label, seed=i, num_frames=12, size=32)
            video_files.write_video(path, frames)
            paths.append(path)
    return paths


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A folder per class with 3 good videos each and one corrupt file, built once."""
    base = tmp_path_factory.mktemp("video_folder")
    videos = str(base / "videos")
    _good_videos(videos)
    inference_testing.write_corrupt(os.path.join(videos, "waving", "broken.mp4"))
    data_dir = str(base / "tfds")
    summary = build.build("video_folder/mine", data_dir=data_dir, manual_dir=videos)
    return data_dir, videos, summary


def test_build_skips_and_names_the_corrupt_video(built):
    data_dir, _, summary = built
    assert "1 videos skipped" in summary and "waving/broken" in summary
    info = sources.get("video_folder/mine", data_dir).info()
    assert info.class_names == CLASSES
    # 3 per class, the last (sorted) of each held out; broken.mp4 sorts first in waving.
    assert dict(info.split_sizes) == {"train": 4, "validation": 2}
    with open(os.path.join(data_dir, "video_folder", "mine", "1.0.0", "skipped_videos.json")) as f:
        skipped = json.load(f)
    assert [row["video_id"] for row in skipped] == ["waving/broken"]


def test_trains_a_runlocal_model_and_predicts_with_its_class_names(built, tmp_path):
    data_dir, videos, _ = built
    from experiments import synthetic_motion

    config = synthetic_motion.get_config("runlocal,model=tiny_i2d")
    config.data.name = "video_folder/mine"
    config.data.data_dir = data_dir
    config.reverse_time_eval = False
    workdir = str(tmp_path / "run")
    train.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "result.json")) as f:
        result = json.load(f)
    assert result["dataset"] == "video_folder/mine" and result["num_classes"] == 2
    assert result["metrics"]["num_videos"] == 2
    assert set(result["per_class_accuracy"]) == set(CLASSES)
    run = inference.load_run(workdir)
    assert run.class_names == list(CLASSES)
    assert run.video_format.fps == video_folder.FPS
    logits, _ = run.classify(run.views(run.read(os.path.join(videos, "jumping", "v0.mp4"))))
    assert logits.shape == (2,) and np.isfinite(logits).all()


def test_csv_with_splits_relative_paths_and_one_sentence_errors(tmp_path):
    videos = str(tmp_path / "v")
    paths = _good_videos(videos, per_class=2)
    rows = ["path,label,split"] + [
        f"{os.path.relpath(p, videos)},{os.path.basename(os.path.dirname(p))},"
        f"{'val' if p.endswith('v1.mp4') else 'train'}"
        for p in paths
    ]
    with open(os.path.join(videos, "list.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    names, splits = video_folder.VideoFolder(
        data_dir=str(tmp_path / "tfds"), config="csv"
    ).list_videos(videos)
    assert names == list(CLASSES)
    assert sorted(splits) == ["train", "validation"] and len(splits["validation"]) == 2
    assert all(item.path is not None for items in splits.values() for item in items)

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "list.csv").write_text("a.mp4,x,holdout\n")
    with pytest.raises(
        errors.UserError, match=r"split 'holdout' is not one of train, validation, test"
    ):
        video_folder.read_csv(str(bad / "list.csv"))
    (bad / "list.csv").write_text("a.mp4\n")
    with pytest.raises(errors.UserError, match="each row must be path,label or path,label,split"):
        video_folder.read_csv(str(bad / "list.csv"))
    empty = tmp_path / "empty"
    (empty / "cls").mkdir(parents=True)
    with pytest.raises(errors.UserFileError, match="put each class's videos in a folder"):
        video_folder.scan_folders(str(empty))
    # Training on it before building says how to build it.
    with pytest.raises(
        FileNotFoundError, match="python -m video_s3d.data.build --dataset=video_folder/unbuilt"
    ):
        sources.get("video_folder/unbuilt", str(tmp_path / "tfds")).info()
