"""Boxes and labels drawn onto frames, and contact sheets of them (what a person looks at).

Colours: detections red with "class score" in yellow, ground truth (where known) green.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from video_s3d.detection import training

DETECTION, TRUTH, TEXT = (255, 0, 0), (0, 255, 0), (255, 255, 0)


def annotate(
    frame: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    class_names: Sequence[str],
    truth: np.ndarray | None = None,
    scale: int = 1,
) -> np.ndarray:
    """uint8 [H*scale, W*scale, 3]: `frame` enlarged, `truth` boxes [N, 4] in green and the
    detections (boxes [D, 4] as (ymin, xmin, ymax, xmax) fractions) in red, labelled."""
    height, width = frame.shape[:2]
    image = Image.fromarray(frame).resize((width * scale, height * scale), Image.NEAREST)
    canvas = ImageDraw.Draw(image)
    side = np.array([height, width, height, width], np.float64) * scale
    for box in [] if truth is None else truth:
        y0, x0, y1, x1 = box * side
        canvas.rectangle([x0, y0, x1, y1], outline=TRUTH)
    for box, label, score in zip(boxes, labels, scores):
        y0, x0, y1, x1 = box * side
        canvas.rectangle([x0, y0, x1, y1], outline=DETECTION, width=max(1, scale // 2))
        canvas.text((x0 + 2, y0 + 1), f"{class_names[int(label)]} {score:.2f}", fill=TEXT)
    return np.asarray(image)


def kept(found: dict, row: int, min_score: float) -> np.ndarray:
    """Indices of the valid detections of one frame scoring above `min_score`."""
    return np.flatnonzero(found["valid"][row] & (found["scores"][row] > min_score))


def grid(tiles: list[np.ndarray], columns: int) -> np.ndarray:
    """Equally sized tiles in rows of `columns` (the last row padded with black)."""
    blank = np.zeros_like(tiles[0])
    rows = [
        np.concatenate((tiles[i : i + columns] + [blank] * columns)[:columns], axis=1)
        for i in range(0, len(tiles), columns)
    ]
    return np.concatenate(rows, axis=0)


def video_sheet(
    detect: Callable,
    state,
    videos: list[training.LabelledVideo],
    class_names: Sequence[str],
    *,
    clip_length: int,
    stride: int = 1,
    batch_size: int = 8,
    frames_per_video: int = 8,
    min_score: float = 0.3,
    scale: int = 3,
) -> np.ndarray:
    """One row per labelled video, `frames_per_video` evenly spaced frames each, with the ground
    truth and the detections scoring above `min_score`."""
    rows = []
    for video in videos:
        picked = np.unique(np.linspace(0, len(video.frames) - 1, frames_per_video).round())
        found = training.detect_videos(detect, state, [video], clip_length, 1, batch_size, stride)[
            video.video_id
        ][1]
        tiles = []
        for t in picked.astype(int):
            keep = kept(found, t, min_score)
            tiles.append(
                annotate(
                    video.frames[t],
                    found["boxes"][t, keep],
                    found["labels"][t, keep],
                    found["scores"][t, keep],
                    class_names,
                    truth=video.boxes[video.visible[:, t], t],
                    scale=scale,
                )
            )
        rows.append(grid(tiles, frames_per_video))
    return np.concatenate(rows, axis=0)


def save_png(image: np.ndarray, path: str) -> None:
    Image.fromarray(image).save(path)
