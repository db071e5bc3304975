"""Action-detection metrics on the host, in numpy: frame-mAP and video-mAP.

frame-AP (per class, over every annotated frame of the test set): a detection is a true
positive when it overlaps a not-yet-matched ground-truth box of its class in the same frame with
IoU >= the threshold (0.5 in the S3D paper's protocol and ACT / Peng & Schmid's); detections are
taken in decreasing score order; AP is PASCAL VOC's (2010 onwards) area under the
precision-recall curve after making precision monotone. frame-mAP is the mean over the classes
that have ground truth.

video-AP: the same with tubes instead of boxes, and the spatio-temporal IoU of two tubes
(temporal IoU of their frame ranges times the mean per-frame IoU over the frames both cover;
Weinzaepfel et al. 2015, used by ACT) instead of the box IoU; thresholds 0.2 and 0.5 are usual.
"""

from __future__ import annotations

import collections
from typing import Hashable, Iterable, NamedTuple, Sequence

import numpy as np


class FrameDetection(NamedTuple):
    video_id: Hashable
    frame: int
    label: int
    score: float
    box: Sequence[float]  # (ymin, xmin, ymax, xmax), fractions of the frame


class FrameBox(NamedTuple):
    video_id: Hashable
    frame: int
    label: int
    box: Sequence[float]


class Tube(NamedTuple):
    video_id: Hashable
    label: int
    score: float  # ground-truth tubes: ignored
    frames: np.ndarray  # [L] int, increasing
    boxes: np.ndarray  # [L, 4]


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """[N, 4] x [M, 4] -> [N, M] IoU (0 where the union is empty)."""
    a = np.asarray(boxes_a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, np.float64).reshape(1, -1, 4)
    extent = np.clip(
        np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0.0, None
    )
    intersection = extent[..., 0] * extent[..., 1]

    def area(x):
        return np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)

    union = area(a) + area(b) - intersection
    return np.where(union > 0, intersection / np.where(union > 0, union, 1.0), 0.0)


def voc_average_precision(is_true_positive: Sequence[bool], num_ground_truth: int) -> float:
    """PASCAL VOC (2010+) AP of detections already sorted by decreasing score; NaN without GT."""
    if num_ground_truth == 0:
        return float("nan")
    hits = np.asarray(is_true_positive, bool)
    if hits.size == 0:
        return 0.0
    true_positives = np.cumsum(hits)
    recall = true_positives / num_ground_truth
    precision = true_positives / np.arange(1, hits.size + 1)
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def _average_precision(candidates, truths_by_key, overlap, threshold) -> float:
    """Greedy VOC matching: candidates [(score, key, item)], truths_by_key {key: [item, ...]}."""
    num_truths = sum(len(items) for items in truths_by_key.values())
    matched = {key: np.zeros(len(items), bool) for key, items in truths_by_key.items()}
    hits = []
    # Stable sort on score alone: equal scores keep their input order.
    for _, key, item in sorted(candidates, key=lambda c: -c[0]):
        truths = truths_by_key.get(key, [])
        if not truths:
            hits.append(False)
            continue
        overlaps = np.array([overlap(item, truth) for truth in truths])
        best = int(np.argmax(overlaps))
        if overlaps[best] >= threshold and not matched[key][best]:
            matched[key][best] = True
            hits.append(True)
        else:
            hits.append(False)
    return voc_average_precision(hits, num_truths)


def _box_overlap(box_a, box_b) -> float:
    return float(box_iou(np.asarray(box_a)[None], np.asarray(box_b)[None])[0, 0])


def frame_average_precisions(
    detections: Iterable[FrameDetection],
    ground_truth: Iterable[FrameBox],
    num_classes: int,
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """[num_classes] frame-AP; NaN for a class without ground truth."""
    candidates = collections.defaultdict(list)
    for d in detections:
        candidates[d.label].append((float(d.score), (d.video_id, d.frame), d.box))
    truths = collections.defaultdict(lambda: collections.defaultdict(list))
    for g in ground_truth:
        truths[g.label][(g.video_id, g.frame)].append(g.box)
    return np.array(
        [
            _average_precision(candidates[c], truths[c], _box_overlap, iou_threshold)
            for c in range(num_classes)
        ]
    )


def mean_over_classes(per_class: np.ndarray) -> float:
    """The mean over classes with ground truth (NaN entries are skipped)."""
    present = per_class[~np.isnan(per_class)]
    return float(present.mean()) if present.size else float("nan")


def frame_map(
    detections: Iterable[FrameDetection],
    ground_truth: Iterable[FrameBox],
    num_classes: int,
    iou_threshold: float = 0.5,
) -> tuple[float, np.ndarray]:
    """(frame-mAP, per-class frame-AP) at `iou_threshold`."""
    per_class = frame_average_precisions(detections, ground_truth, num_classes, iou_threshold)
    return mean_over_classes(per_class), per_class


def spatio_temporal_iou(tube_a: Tube, tube_b: Tube) -> float:
    """Temporal IoU of the frame ranges x mean box IoU over the frames both tubes cover."""
    start_a, end_a = int(tube_a.frames[0]), int(tube_a.frames[-1])
    start_b, end_b = int(tube_b.frames[0]), int(tube_b.frames[-1])
    overlap = min(end_a, end_b) - max(start_a, start_b) + 1
    if overlap <= 0:
        return 0.0
    temporal = overlap / (max(end_a, end_b) - min(start_a, start_b) + 1)
    common, index_a, index_b = np.intersect1d(tube_a.frames, tube_b.frames, return_indices=True)
    if common.size == 0:
        return 0.0
    boxes_a = np.asarray(tube_a.boxes)[index_a]
    boxes_b = np.asarray(tube_b.boxes)[index_b]
    spatial = np.mean([_box_overlap(a, b) for a, b in zip(boxes_a, boxes_b)])
    return float(temporal * spatial)


def video_average_precisions(
    tubes: Iterable[Tube], ground_truth: Iterable[Tube], num_classes: int, iou_threshold: float
) -> np.ndarray:
    """[num_classes] video-AP at a spatio-temporal IoU threshold (e.g. 0.2 or 0.5)."""
    candidates = collections.defaultdict(list)
    for tube in tubes:
        candidates[tube.label].append((float(tube.score), tube.video_id, tube))
    truths = collections.defaultdict(lambda: collections.defaultdict(list))
    for tube in ground_truth:
        truths[tube.label][tube.video_id].append(tube)
    return np.array(
        [
            _average_precision(candidates[c], truths[c], spatio_temporal_iou, iou_threshold)
            for c in range(num_classes)
        ]
    )


def video_map(
    tubes: Iterable[Tube], ground_truth: Iterable[Tube], num_classes: int, iou_threshold: float
) -> tuple[float, np.ndarray]:
    per_class = video_average_precisions(tubes, ground_truth, num_classes, iou_threshold)
    return mean_over_classes(per_class), per_class
