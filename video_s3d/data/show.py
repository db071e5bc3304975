"""Writes decoded, augmented training clips as a PNG contact sheet: one row per clip.

    python -m video_s3d.data.show --dataset=synthetic_motion/motion --out=sheet.png [--num_clips=4]

Look at it to check what the model really sees: crops, flips, frame stride, colours, labels.
For a detection dataset (jhmdb, ucf101_24, synthetic_detection) the sheet shows stored frames
with every annotated actor's box instead (show_tubes.py).
"""

from __future__ import annotations

import sys

import numpy as np
from absl import app, flags


def contact_sheet(videos: np.ndarray, titles: list[str], path: str) -> None:
    """Saves uint8 [N, T, S, S, 3] clips as a grid with one titled row per clip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_clips, num_frames = videos.shape[:2]
    figure, axes = plt.subplots(
        num_clips, num_frames, squeeze=False, figsize=(1.6 * num_frames, 1.8 * num_clips)
    )
    for row in range(num_clips):
        for column in range(num_frames):
            axis = axes[row, column]
            axis.imshow(videos[row, column])
            axis.set_xticks([])
            axis.set_yticks([])
            if column == 0:
                axis.set_title(titles[row], loc="left", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def show(
    dataset: str,
    out: str,
    *,
    num_clips: int = 4,
    num_frames: int = 8,
    stride: int = 2,
    crop_size: int | None = None,
    split: str = "train",
    seed: int = 0,
    data_dir: str | None = None,
) -> str:
    from video_s3d.data import pipeline, show_tubes

    if show_tubes.is_detection(dataset):  # frames with their actor boxes, not training clips
        return show_tubes.tube_sheet(
            dataset,
            out,
            num_videos=num_clips,
            num_frames=num_frames,
            split=split,
            data_dir=data_dir,
        )
    pipeline.ensure_built(dataset, data_dir)
    info = pipeline.dataset_info(dataset, data_dir)
    crop_size = crop_size or (64 if dataset.startswith("synthetic_motion") else 224)
    batch = next(
        pipeline.train_iterator(
            dataset,
            data_dir=data_dir,
            split=split,
            batch_size=num_clips,
            num_frames=num_frames,
            stride=stride,
            crop_size=crop_size,
            seed=seed,
            process_index=0,
            process_count=1,
            shuffle_buffer=64,
        )
    )
    titles = [f"{label}: {info.class_names[label]}" for label in batch["label"]]
    contact_sheet(pipeline.apply_flips(batch), titles, out)  # flips as the train step does
    return f"Wrote {num_clips} clips x {num_frames} frames of {dataset}/{split} to {out}."


def _define_flags():
    """Flags exist only when run as a program, so the module imports next to other tools."""
    global _DATASET, _OUT, _NUM_CLIPS, _NUM_FRAMES, _STRIDE, _CROP_SIZE, _SPLIT, _SEED, _DATA_DIR
    _DATASET = flags.DEFINE_string("dataset", "synthetic_motion/motion", "Dataset name.")
    _OUT = flags.DEFINE_string("out", "sheet.png", "PNG file to write.")
    _NUM_CLIPS = flags.DEFINE_integer("num_clips", 4, "Rows: clips to show.")
    _NUM_FRAMES = flags.DEFINE_integer("num_frames", 8, "Columns: frames per clip.")
    _STRIDE = flags.DEFINE_integer("stride", 2, "Frame stride of the sampled clips.")
    _CROP_SIZE = flags.DEFINE_integer(
        "crop_size", None, "Crop side (default 64 for synthetic datasets, else 224)."
    )
    _SPLIT = flags.DEFINE_string("split", "train", "Split to sample from.")
    _SEED = flags.DEFINE_integer("seed", 0, "Sampling and augmentation seed.")
    _DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data dir.")


def main(argv):
    del argv
    try:
        print(
            show(
                _DATASET.value,
                _OUT.value,
                num_clips=_NUM_CLIPS.value,
                num_frames=_NUM_FRAMES.value,
                stride=_STRIDE.value,
                crop_size=_CROP_SIZE.value,
                split=_SPLIT.value,
                seed=_SEED.value,
                data_dir=_DATA_DIR.value,
            )
        )
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
