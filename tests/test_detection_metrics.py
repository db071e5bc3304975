"""frame-AP / video-AP on hand-worked cases, and tube linking."""

import numpy as np
import pytest

from video_s3d.detection import linking, metrics
from video_s3d.detection.metrics import FrameBox, FrameDetection, Tube

A = (0.1, 0.1, 0.4, 0.4)
B = (0.5, 0.5, 0.9, 0.9)
NOWHERE = (0.0, 0.6, 0.2, 0.9)  # overlaps neither A nor B


def _ap(detections, truths, num_classes=1):
    return metrics.frame_average_precisions(detections, truths, num_classes)[0]


def test_perfect_detections_give_ap_one():
    truths = [FrameBox("v", 0, 0, A), FrameBox("v", 1, 0, B)]
    detections = [FrameDetection("v", 0, 0, 0.9, A), FrameDetection("v", 1, 0, 0.3, B)]
    assert _ap(detections, truths) == pytest.approx(1.0)


def test_all_wrong_detections_give_ap_zero():
    truths = [FrameBox("v", 0, 0, A)]
    detections = [
        FrameDetection("v", 0, 0, 0.9, NOWHERE),  # wrong place
        FrameDetection("v", 1, 0, 0.8, A),  # wrong frame
        FrameDetection("w", 0, 0, 0.7, A),  # wrong video
        FrameDetection("v", 0, 1, 0.9, A),
    ]  # wrong class
    assert _ap(detections, truths) == 0.0


def test_duplicates_count_as_false_positives():
    truths = [FrameBox("v", 0, 0, A), FrameBox("v", 0, 0, B)]
    detections = [
        FrameDetection("v", 0, 0, 0.9, A),
        FrameDetection("v", 0, 0, 0.8, A),
        FrameDetection("v", 0, 0, 0.7, B),
    ]
    # TP, FP, TP: recall 1/2, 1/2, 1; precision 1, 1/2, 2/3 -> 1/2 * 1 + 1/2 * 2/3.
    assert _ap(detections, truths) == pytest.approx(0.5 + 1 / 3)
    # A duplicate ranked below every true positive costs nothing.
    detections[1] = FrameDetection("v", 0, 0, 0.1, A)
    assert _ap(detections, truths) == pytest.approx(1.0)


def test_a_missed_ground_truth_halves_ap():
    truths = [FrameBox("v", 0, 0, A), FrameBox("v", 3, 0, B)]
    assert _ap([FrameDetection("v", 0, 0, 0.9, A)], truths) == pytest.approx(0.5)
    # A false positive ranked first: precision at full recall is 1/2.
    truths = [FrameBox("v", 0, 0, A)]
    detections = [FrameDetection("v", 0, 0, 0.9, NOWHERE), FrameDetection("v", 0, 0, 0.8, A)]
    assert _ap(detections, truths) == pytest.approx(0.5)


def test_iou_threshold_is_inclusive_and_half_overlap_fails():
    # A box shifted by a third of its width overlaps with IoU exactly 0.5.
    shifted = (0.1, 0.2, 0.4, 0.5)
    assert metrics.box_iou(np.array([A]), np.array([shifted]))[0, 0] == pytest.approx(0.5)
    truths = [FrameBox("v", 0, 0, A)]
    assert _ap([FrameDetection("v", 0, 0, 0.9, (0.1, 0.25, 0.4, 0.55))], truths) == 0.0


def test_frame_map_over_videos_and_classes_is_the_per_class_mean():
    rng = np.random.default_rng(0)
    truths, detections = [], []
    for video in range(4):
        for frame in range(5):
            for label in range(3):
                if rng.uniform() < 0.7:
                    box = (*rng.uniform(0, 0.5, 2),)
                    box = (box[0], box[1], box[0] + 0.3, box[1] + 0.3)
                    truths.append(FrameBox(f"v{video}", frame, label, box))
                    if rng.uniform() < 0.8:  # a hit, jittered, at a random score
                        jitter = tuple(np.asarray(box) + rng.normal(0, 0.02, 4))
                        detections.append(
                            FrameDetection(f"v{video}", frame, label, rng.uniform(), jitter)
                        )
                if rng.uniform() < 0.3:  # a false positive
                    detections.append(
                        FrameDetection(f"v{video}", frame, label, rng.uniform(), NOWHERE)
                    )
    mean, per_class = metrics.frame_map(detections, truths, num_classes=4)
    assert np.isnan(per_class[3])  # class 3 has no ground truth: left out of the mean
    for c in range(3):  # each class's AP ignores the other classes' boxes entirely
        only = metrics.frame_average_precisions(
            [d for d in detections if d.label == c], [g for g in truths if g.label == c], 4
        )
        assert only[c] == pytest.approx(per_class[c])
    assert mean == pytest.approx(np.mean(per_class[:3]))
    assert 0.3 < mean < 1.0


def _tube(video, label, frames, box, score=1.0, shift=0.0):
    boxes = np.tile(np.asarray(box, float) + shift, (len(frames), 1))
    return Tube(video, label, score, np.asarray(frames), boxes)


def test_spatio_temporal_iou():
    full = _tube("v", 0, range(10), A)
    half = _tube("v", 0, range(5), A)
    assert metrics.spatio_temporal_iou(full, full) == pytest.approx(1.0)
    assert metrics.spatio_temporal_iou(full, half) == pytest.approx(0.5)
    shifted = (0.1, 0.2, 0.4, 0.5)  # box IoU 0.5 with A
    assert metrics.spatio_temporal_iou(half, _tube("v", 0, range(5), shifted)) == pytest.approx(0.5)
    assert metrics.spatio_temporal_iou(half, _tube("v", 0, range(5, 9), A)) == 0.0


def test_video_map_thresholds():
    truths = [_tube("v", 0, range(10), A), _tube("w", 1, range(10), B)]
    # Class 0 found at a 0.3 spatio-temporal IoU (a third of the frames), class 1 exactly.
    tubes = [_tube("v", 0, range(3), A, 0.9), _tube("w", 1, range(10), B, 0.8)]
    at_02, per_class = metrics.video_map(tubes, truths, 2, 0.2)
    assert at_02 == pytest.approx(1.0) and list(per_class) == [1.0, 1.0]
    at_05, per_class = metrics.video_map(tubes, truths, 2, 0.5)
    assert list(per_class) == [0.0, 1.0] and at_05 == pytest.approx(0.5)


def test_linking_follows_overlap_and_score():
    # Two actors over 4 frames; frame 2's boxes are listed in swapped order, and actor A's
    # box there has a low score: linking must still follow the overlap.
    frames = [0, 1, 2, 3]
    boxes = [np.array([A, B]), np.array([A, B]), np.array([B, A]), np.array([A, B])]
    scores = [
        np.array([0.9, 0.6]),
        np.array([0.9, 0.6]),
        np.array([0.6, 0.2]),
        np.array([0.9, 0.6]),
    ]
    labels = [np.zeros(2, int)] * 4
    tubes = linking.link_video("v", frames, boxes, labels, scores, num_classes=1)
    assert len(tubes) == 2
    first, second = tubes
    np.testing.assert_allclose(first.boxes, np.tile(A, (4, 1)))
    np.testing.assert_allclose(second.boxes, np.tile(B, (4, 1)))
    assert first.score == pytest.approx((0.9 + 0.9 + 0.2 + 0.9) / 4)
    # Each linked tube matches its ground truth: video-AP 1 at 0.5.
    truths = [_tube("v", 0, frames, A), _tube("v", 0, frames, B)]
    assert metrics.video_map(tubes, truths, 1, 0.5)[0] == pytest.approx(1.0)
    # Without the overlap term the greedy-by-score path jumps between actors.
    jumpy = linking.link_class(frames, boxes, scores, overlap_weight=0.0)[0][1]
    assert jumpy == [0, 0, 0, 0]  # index 0 in frame 2 is actor B's box
