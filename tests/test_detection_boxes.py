"""Box coding, IoU, anchors, NMS and ROI-Align of video_s3d.detection."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from video_s3d.detection import boxes, roi_align


def _random_boxes(rng, n, low=0.02, high=0.7):
    top_left = rng.uniform(-0.1, 0.8, size=(n, 2))
    size = rng.uniform(low, high, size=(n, 2))
    return np.concatenate([top_left, top_left + size], axis=1).astype(np.float32)


def test_iou_of_crafted_pairs():
    a = jnp.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0]])
    b = jnp.array(
        [[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75], [0.6, 0.6, 0.9, 0.9], [0.0, 0.0, 0.0, 0.0]]
    )
    iou = np.asarray(boxes.pairwise_iou(a, b))
    # Quarter-overlap of two equal squares: 1/16 / (1/4 + 1/4 - 1/16) = 1/7.
    np.testing.assert_allclose(iou[0], [1.0, 1 / 7, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(iou[1], [0.25, 0.25, 0.09, 0.0], rtol=1e-6)


def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    targets, anchors = _random_boxes(rng, 64), _random_boxes(rng, 64)
    deltas = boxes.encode(targets, anchors)
    np.testing.assert_allclose(boxes.decode(deltas, anchors), targets, atol=1e-5)
    # A box encodes to zero against itself; a shifted box to its known offsets.
    np.testing.assert_allclose(boxes.encode(anchors, anchors), 0.0, atol=1e-6)
    shifted = boxes.encode(jnp.array([0.1, 0.2, 0.3, 0.6]), jnp.array([0.0, 0.0, 0.2, 0.4]))
    # Centre moves by half a height and a width; sizes unchanged: (10 * 0.5, 10 * 0.5, 0, 0).
    np.testing.assert_allclose(shifted, [5.0, 5.0, 0.0, 0.0], atol=1e-5)


def test_anchors_tile_the_grid():
    grid = boxes.anchors(2, 3, sizes=(0.2, 0.4), aspect_ratios=(0.5, 1.0, 2.0))
    assert grid.shape == (2 * 3 * 6, 4)
    grid = np.asarray(grid).reshape(2, 3, 6, 4)
    centres = (grid[..., :2] + grid[..., 2:]) / 2
    np.testing.assert_allclose(centres[1, 2, 0], [0.75, 5 / 6], atol=1e-6)
    heights, widths = grid[..., 2] - grid[..., 0], grid[..., 3] - grid[..., 1]
    np.testing.assert_allclose(np.sqrt(heights * widths)[0, 0], [0.2] * 3 + [0.4] * 3, rtol=1e-5)
    np.testing.assert_allclose((heights / widths)[0, 0], [0.5, 1, 2] * 2, rtol=1e-5)


def test_nms_keeps_the_expected_boxes():
    candidates = jnp.array(
        [
            [0.0, 0.0, 0.4, 0.4],  # 0: score 0.9, kept
            [0.02, 0.02, 0.42, 0.42],  # 1: overlaps 0 (IoU ~0.82), suppressed
            [0.5, 0.5, 0.9, 0.9],  # 2: kept
            [0.52, 0.5, 0.92, 0.9],  # 3: overlaps 2, suppressed
            [0.0, 0.6, 0.3, 0.9],  # 4: kept (disjoint), lowest score
            [0.0, 0.0, 0.4, 0.4],  # 5: padding (invalid) with the highest score
        ]
    )
    scores = jnp.array([0.9, 0.8, 0.7, 0.75, 0.1, 5.0])
    valid = jnp.array([True, True, True, True, True, False])
    nms = jax.jit(boxes.non_max_suppression, static_argnums=(3, 4))
    indices, keep = nms(candidates, scores, valid, 0.5, 4)
    assert list(np.asarray(indices)[np.asarray(keep)]) == [0, 3, 4]
    assert list(np.asarray(keep)) == [True, True, True, False]
    # Box 3 (0.75) outranks box 2 (0.7) and suppresses it. With a looser threshold all survive.
    indices, keep = nms(candidates, scores, valid, 0.95, 8)
    assert list(np.asarray(indices)[np.asarray(keep)]) == [0, 1, 3, 2, 4]
    assert keep.shape == (8,)


def _bilinear_reference(feature, y, x):
    """Detectron's ROIAlign bilinear sample of an [H, W, C] map at continuous (y, x)."""
    height, width = feature.shape[:2]
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return np.zeros(feature.shape[2])
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    return (
        (1 - ly) * (1 - lx) * feature[y_low, x_low]
        + (1 - ly) * lx * feature[y_low, x_high]
        + ly * (1 - lx) * feature[y_high, x_low]
        + ly * lx * feature[y_high, x_high]
    )


def _roi_align_reference(features, box_list, output_size, sampling_ratio):
    frames, height, width, channels = features.shape
    out = np.zeros((len(box_list), frames, output_size, output_size, channels))
    for r, (y0, x0, y1, x1) in enumerate(box_list):
        y0, y1, x0, x1 = y0 * height, y1 * height, x0 * width, x1 * width
        bin_h, bin_w = (y1 - y0) / output_size, (x1 - x0) / output_size
        for t in range(frames):
            for i in range(output_size):
                for j in range(output_size):
                    total = np.zeros(channels)
                    for a in range(sampling_ratio):
                        for b in range(sampling_ratio):
                            y = y0 + (i + (a + 0.5) / sampling_ratio) * bin_h - 0.5
                            x = x0 + (j + (b + 0.5) / sampling_ratio) * bin_w - 0.5
                            total += _bilinear_reference(features[t], y, x)
                    out[r, t, i, j] = total / sampling_ratio**2
    return out


def test_roi_align_matches_direct_bilinear_sampling():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(3, 6, 7, 5)).astype(np.float32)
    # Boxes inside, straddling the edges and partly outside the map, down to sub-pixel sizes.
    box_list = np.concatenate(
        [
            _random_boxes(rng, 6, 0.02, 0.9),
            np.array([[-0.3, -0.2, 1.2, 1.1], [0.9, 0.95, 1.0, 1.0]], np.float32),
        ]
    )
    expected = _roi_align_reference(features, box_list, output_size=3, sampling_ratio=2)
    per_frame = jax.jit(roi_align.roi_align, static_argnums=(2, 3, 4))(
        features, box_list, 3, 2, False
    )
    np.testing.assert_allclose(per_frame, expected, atol=1e-5)
    pooled = roi_align.roi_align(features, box_list, 3, 2)
    np.testing.assert_allclose(pooled, expected.mean(axis=1), atol=1e-5)


@pytest.mark.parametrize("size", [1, 4])
def test_roi_align_of_a_constant_map_is_constant(size):
    features = jnp.full((2, 5, 5, 3), 2.5)
    out = roi_align.roi_align(features, jnp.array([[0.1, 0.2, 0.7, 0.9]]), size)
    np.testing.assert_allclose(out, 2.5, rtol=1e-6)
