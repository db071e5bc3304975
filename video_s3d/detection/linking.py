"""Linking per-frame detections into action tubes by dynamic programming.

The algorithm is the first pass of Saha et al., "Deep Learning for Detecting Multiple
Space-Time Action Tubes in Videos" (BMVC 2016), which builds on Gkioxari & Malik's "Finding
Action Tubes" (CVPR 2015): for one class, the tube through frames 1..T is the path of boxes
maximising  sum_t s_c(b_t) + lambda * sum_t IoU(b_t, b_{t+1}),  found by Viterbi; its boxes are
removed and the next path is found, until a frame has no boxes left. The tube's score is the
mean class score of its boxes. This is the linking for temporally trimmed videos (JHMDB, the
synthetic detection set): paths span the whole run of frames. Saha et al.'s second pass (temporal
trimming, needed for untrimmed UCF101-24 videos) is not implemented.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from video_s3d.detection.metrics import Tube, box_iou


def link_class(
    frames: Sequence[int],
    boxes: Sequence[np.ndarray],
    scores: Sequence[np.ndarray],
    overlap_weight: float = 1.0,
    max_tubes: int | None = None,
) -> list[tuple]:
    """Paths through consecutive frames of one class, best first.

    frames [T] increasing frame indices; boxes[t] [n_t, 4] and scores[t] [n_t] the class's
    detections in frame t. Returns [(mean score, [box index per frame])]. A frame without boxes
    ends the search (every path must visit every frame).
    """
    remaining = [np.arange(len(s)) for s in scores]
    tubes = []
    while all(r.size for r in remaining) and (max_tubes is None or len(tubes) < max_tubes):
        # Viterbi over the remaining boxes: best[t][i] = best path score ending at box i.
        best = [np.asarray(scores[0], np.float64)[remaining[0]]]
        back = []
        for t in range(1, len(frames)):
            ids, prev_ids = remaining[t], remaining[t - 1]
            link = overlap_weight * box_iou(
                np.asarray(boxes[t - 1])[prev_ids], np.asarray(boxes[t])[ids]
            )  # [prev, cur]
            total = best[-1][:, None] + link
            back.append(np.argmax(total, axis=0))
            best.append(total.max(axis=0) + np.asarray(scores[t], np.float64)[ids])
        path = [int(np.argmax(best[-1]))]
        for pointers in reversed(back):
            path.append(int(pointers[path[-1]]))
        path.reverse()
        chosen = [int(remaining[t][i]) for t, i in enumerate(path)]
        mean_score = float(np.mean([scores[t][i] for t, i in enumerate(chosen)]))
        tubes.append((mean_score, chosen))
        remaining = [np.delete(r, i) for r, i in zip(remaining, path)]
    return tubes


def link_video(
    video_id,
    frames: Sequence[int],
    boxes: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    scores: Sequence[np.ndarray],
    num_classes: int,
    overlap_weight: float = 1.0,
    max_tubes_per_class: int | None = None,
) -> list[Tube]:
    """Tubes of every class from one video's per-frame detections (boxes[t] [n_t, 4], labels[t],
    scores[t] [n_t]): each class is linked on its own detections."""
    frames = np.asarray(frames)
    tubes = []
    for label in range(num_classes):
        chosen = [np.asarray(labels[t]) == label for t in range(len(frames))]
        class_boxes = [np.asarray(boxes[t])[c] for t, c in enumerate(chosen)]
        class_scores = [np.asarray(scores[t])[c] for t, c in enumerate(chosen)]
        for score, path in link_class(
            frames, class_boxes, class_scores, overlap_weight, max_tubes_per_class
        ):
            tube_boxes = np.stack([class_boxes[t][i] for t, i in enumerate(path)])
            tubes.append(Tube(video_id, label, score, frames, tube_boxes))
    return tubes
