"""Writes decoded, augmented training clips as a PNG contact sheet: one row per clip.

    python -m video_s3d.data.show --dataset=synthetic_motion/motion --out=sheet.png [--rows=4]

Look at it to check what the model really sees: crops, flips, frame stride, colours, labels.
For a detection dataset (jhmdb, ucf101_24, synthetic_detection) the sheet shows stored frames
with every annotated actor's box instead (show_tubes.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from video_s3d import arguments
from video_s3d.errors import UserError


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


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("video_s3d.data.show", __doc__)
    parser.add_argument("--dataset", default="synthetic_motion/motion", help="dataset name")
    parser.add_argument("--out", default="sheet.png", help="PNG file to write")
    parser.add_argument("--rows", type=int, default=4, help="clips to show, one per row")
    parser.add_argument("--num_frames", type=int, default=8, help="columns: frames per clip")
    parser.add_argument("--stride", type=int, default=2, help="frame stride of the sampled clips")
    parser.add_argument(
        "--crop_size", type=int, help="crop side (default 64 for synthetic datasets, else 224)"
    )
    parser.add_argument("--split", default="train", help="split to sample from")
    parser.add_argument("--seed", type=int, default=0, help="sampling and augmentation seed")
    parser.add_argument("--data_dir", help="TFDS data dir")
    # --num_clips means clips per video elsewhere (predict's views).
    arguments.alias(parser, "--num_clips", "--rows")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(
            show(
                args.dataset,
                args.out,
                num_clips=args.rows,
                num_frames=args.num_frames,
                stride=args.stride,
                crop_size=args.crop_size,
                split=args.split,
                seed=args.seed,
                data_dir=args.data_dir,
            )
        )
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
