"""Contact sheet of an action-detection dataset: stored frames with every annotated actor's box.

    python -m video_s3d.data.show --dataset=jhmdb/split1 --out=boxes.png

One row per video, frames spread over its annotated span; each tube has its own colour and its
class name. Look at it after building a real dataset to check the boxes sit on the actors.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from video_s3d.errors import UserFileError

# Builders whose examples hold `tubes` (actor boxes) rather than one label per video.
DETECTION_DATASETS = ("jhmdb", "ucf101_24", "synthetic_detection")
_COLOURS = ("#ff3030", "#30c0ff", "#ffd020", "#40ff60", "#ff60ff")


def is_detection(dataset: str) -> bool:
    return dataset.partition("/")[0] in DETECTION_DATASETS


def _builder(dataset: str, data_dir: str | None):
    import video_s3d.data.builders  # noqa: F401  (registers the builders with TFDS)

    builder = tfds.builder(dataset, data_dir=data_dir)
    if not builder.is_prepared():
        if dataset.startswith("synthetic_detection"):
            builder.download_and_prepare()  # generated from a seed: nothing to download
        else:
            raise UserFileError(
                f"Dataset {dataset} is not prepared in {builder.data_dir}: build it once with "
                f"`python -m video_s3d.data.build --dataset={dataset} --manual_dir=DIR`."
            )
    return builder


def pick_frames(visible: np.ndarray, num_frames: int) -> np.ndarray:
    """Up to `num_frames` frame indices spread evenly over the frames where any actor is
    annotated (visible [A, T]); all frames when none is."""
    annotated = np.flatnonzero(visible.any(axis=0)) if visible.size else np.array([], int)
    if annotated.size == 0:
        annotated = np.arange(visible.shape[1])
    positions = np.linspace(0, annotated.size - 1, min(num_frames, annotated.size))
    return annotated[np.unique(np.round(positions).astype(int))]


def tube_sheet(
    dataset: str,
    out: str,
    *,
    num_videos: int = 4,
    num_frames: int = 6,
    split: str = "train",
    data_dir: str | None = None,
) -> str:
    """Writes the sheet of the first `num_videos` videos of `split`; returns a one-line summary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    builder = _builder(dataset, data_dir)
    names = builder.info.features["tubes"]["label"].names
    count = min(num_videos, builder.info.splits[split].num_examples)
    examples = list(tfds.as_numpy(builder.as_dataset(split=f"{split}[:{count}]")))
    picked = [pick_frames(example["tubes"]["visible"], num_frames) for example in examples]
    columns = max(len(picks) for picks in picked)
    figure, axes = plt.subplots(
        len(examples), columns, squeeze=False, figsize=(2.0 * columns, 1.8 * len(examples))
    )
    for row, (example, picks) in enumerate(zip(examples, picked)):
        video, tubes = example["video"], example["tubes"]
        height, width = video.shape[1:3]
        for column in range(columns):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            if column >= len(picks):
                axis.axis("off")
                continue
            t = picks[column]
            axis.imshow(video[t])
            axis.set_xlabel(f"frame {t + 1}", fontsize=7)
            for a in np.flatnonzero(tubes["visible"][:, t]):
                ymin, xmin, ymax, xmax = tubes["boxes"][a, t] * (height, width, height, width)
                colour = _COLOURS[a % len(_COLOURS)]
                axis.add_patch(
                    plt.Rectangle(
                        (xmin, ymin), xmax - xmin, ymax - ymin, fill=False, lw=1.5, ec=colour
                    )
                )
                axis.text(
                    xmin, ymin, names[tubes["label"][a]], color=colour, fontsize=6, va="bottom"
                )
            if column == 0:
                axis.set_title(example["video_id"].decode(), loc="left", fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return (
        f"Wrote {len(examples)} videos x {columns} frames of {dataset}/{split} with boxes to {out}."
    )
