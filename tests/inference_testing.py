"""Shared by the predict / features / export tests: one tiny trained workdir and real video files.

The workdir is trained once per test process (about a minute on CPU) and reused by every test
module through the session's base temporary folder.
"""

from __future__ import annotations

import os

import numpy as np

from video_s3d.data.builders import synthetic_render, video_files

TINY = "synthetic_motion/motion_tiny"
MODEL = "tiny_i2d"  # the zoo model that compiles fastest; it has every endpoint
CONTAINERS = ("mp4", "webm", "avi", "mkv")


def trained_workdir(base: str) -> str:
    """`base`/run: tiny_i2d trained 4 steps on motion_tiny (built under `base`/tfds), 2 eval clips."""
    workdir = os.path.join(base, "run")
    if os.path.exists(os.path.join(workdir, "result.json")):
        return workdir
    from experiments import synthetic_motion
    from video_s3d import train

    config = synthetic_motion.get_config(f"runlocal,model={MODEL}")
    config.data.name = TINY
    config.data.data_dir = os.path.join(base, "tfds")
    config.data.eval_num_clips = 2
    config.num_train_steps = 4
    config.checkpoint_every_steps = 4
    config.reverse_time_eval = False
    config.async_checkpointing = False
    train.train_and_evaluate(config, workdir)
    return workdir


def motion_frames(label: int, seed: int, num_frames: int = 20, size: int = 40) -> np.ndarray:
    """uint8 [T, size, size + 8, 3]: a synthetic_motion clip of class `label` (landscape)."""
    clip = synthetic_render.make_clip("motion", label, seed, num_frames=num_frames, size=size)
    return np.concatenate([clip, clip[:, :, :8]], axis=2)  # not square: the crop matters


def write_videos(folder: str, per_class: dict[str, list[str]]) -> list[str]:
    """Writes class folders of videos (one container per extension given); returns the paths."""
    paths = []
    for class_index, (class_name, extensions) in enumerate(per_class.items()):
        os.makedirs(os.path.join(folder, class_name), exist_ok=True)
        for i, extension in enumerate(extensions):
            path = os.path.join(folder, class_name, f"clip{i}.{extension}")
            video_files.write_video(path, motion_frames(class_index, seed=10 * class_index + i))
            paths.append(path)
    return paths


def write_corrupt(path: str) -> str:
    """A file named like a video that is not one."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    return path
