"""The real detection datasets feed the detector: tiny official-layout JHMDB and UCF101-24 manual
dirs, built with `video_s3d.data.build`, give the key-frame pipeline their (zlib-stored,
variable-length) actor boxes and train through `python -m video_s3d.main` with
`experiments/<dataset>.py:runlocal,data=real`, whose result.json holds the frame- and video-mAP."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import jhmdb as jhmdb_experiment
from experiments import ucf101_24 as ucf101_24_experiment
from launch import local
from tests import detection_dirs_testing as detection_dirs
from video_s3d.data import build
from video_s3d.data.builders import jhmdb, ucf101_24
from video_s3d.detection import data

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAP_KEYS = ("frame_map@0.5", "video_map@0.2", "video_map@0.5")


def _jhmdb(root):
    truth = detection_dirs.write_jhmdb_dir(root, num_frames=6)
    # Split 1 trains on brush_hair's video; its last frame's puppet mask is empty.
    _, boxes, _ = truth["brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0"]
    return "experiments/jhmdb.py:split=1,runlocal,data=real", jhmdb.CLASSES, boxes[:-1], [0]


def _ucf101_24(root):
    truth, _, singh, split_ids = detection_dirs.write_ucf_dir(root)
    detection_dirs.write_singh(root, singh, split_ids)
    train_boxes, labels = [], set()
    height, width = detection_dirs.H, detection_dirs.W
    for video_id in split_ids["train"]:
        if video_id.startswith(("Basketball", "Biking")):  # Skiing's video is corrupt
            _, _, label, tubes = truth[video_id]
            labels.add(label)
            for _, pixel_boxes in tubes:
                x1, y1, x2, y2 = pixel_boxes.T
                fractions = [y1 / height, x1 / width, y2 / height, x2 / width]
                train_boxes.append(np.stack(fractions, 1))
    config = "experiments/ucf101_24.py:runlocal,data=real"
    return config, ucf101_24.CLASSES, np.concatenate(train_boxes), sorted(labels)


DATASETS = {
    "jhmdb/split1": (_jhmdb, jhmdb_experiment),
    "ucf101_24/split1": (_ucf101_24, ucf101_24_experiment),
}


@pytest.fixture(scope="module", params=sorted(DATASETS))
def built(request, tmp_path_factory):
    name = request.param
    write, experiment = DATASETS[name]
    root = tmp_path_factory.mktemp(name.split("/")[0])
    config_flag, class_names, train_boxes, train_labels = write(root / "manual")
    data_dir = str(root / "tfds")
    build.build(name, data_dir=data_dir, manual_dir=str(root / "manual"))
    config = experiment.get_config(config_flag.partition(":")[2])
    config.data.data_dir = data_dir
    return name, root, config_flag, config, class_names, train_boxes, train_labels


def test_runlocal_data_real_keeps_the_dataset():
    config = jhmdb_experiment.get_config("split=2,runlocal,data=real")
    assert config.data.name == "jhmdb/split2" and config.data.max_actors == 1
    assert (config.data.train_split, config.data.eval_split) == ("train", "test")
    assert config.data.crop_size == 32 and config.model.name == "tiny_s3dg"
    plain = jhmdb_experiment.get_config("split=2,runlocal")
    assert plain.data.name == "synthetic_detection/detection_tiny"
    with pytest.raises(ValueError, match="data=synthetic or data=real"):
        jhmdb_experiment.get_config("runlocal,data=kinetics")


def test_key_frame_batches_carry_the_stored_boxes(built):
    _, _, _, config, class_names, train_boxes, train_labels = built
    info = data.dataset_info(config.data)
    assert info.class_names == class_names
    iterator = data.train_iterator(
        config.data, local_batch=8, seed=0, process_index=0, process_count=1
    )
    batch = next(iter(iterator))
    assert batch["video"].shape == (8, 4, 32, 32, 3) and batch["video"].dtype == np.uint8
    assert batch["gt_valid"][:, 0].all()  # every key frame is an annotated one
    boxes = batch["gt_boxes"][batch["gt_valid"]]
    # Each key frame's box is one of the annotated boxes of the training videos.
    distance = np.abs(boxes[:, None] - train_boxes[None]).max(axis=-1).min(axis=1)
    assert distance.max() < 1e-6
    assert set(batch["gt_labels"][batch["gt_valid"]].tolist()) <= set(train_labels)


@pytest.mark.slow
def test_main_trains_and_evaluates_on_the_built_dataset(built):
    name, root, config_flag, config, class_names, _, _ = built
    workdir = str(root / "run")
    env = local.run_environment(cpu_devices=1)
    env.update(CUDA_VISIBLE_DEVICES="")
    command = [
        sys.executable,
        "-m",
        "video_s3d.main",
        f"--config={config_flag}",
        f"--workdir={workdir}",
        f"--config.data.data_dir={config.data.data_dir}",
        "--config.num_train_steps=2",
    ]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "step      2/2" in run.stdout
    with open(os.path.join(workdir, "result.json")) as f:
        result = json.load(f)
    assert result["task"] == "detection" and result["dataset"] == config.data.name
    assert result["step"] == 2 and result["num_classes"] == len(class_names)
    for key in MAP_KEYS:
        assert 0.0 <= result["metrics"][key] <= 1.0
    assert result["metrics"]["num_videos"] == data.dataset_info(config.data).split_sizes["test"]
    assert set(result["per_class_frame_ap@0.5"]) == set(class_names)
