"""Box geometry in JAX: IoU, Faster R-CNN box coding, anchors and fixed-size NMS.

Boxes are [..., 4] = (ymin, xmin, ymax, xmax) as fractions of the frame (TFDS `BBoxFeature`'s
convention), so one box means the same region at any input resolution. Every function has
static output shapes (padding comes with a boolean mask) so it runs under jit and shard_map.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp

# Faster R-CNN's target scaling (Ren et al. 2015 as implemented in the TF Object Detection API's
# FasterRcnnBoxCoder and detectron's BBOX_REG_WEIGHTS): centre offsets x10, log sizes x5.
SCALE_FACTORS = (10.0, 10.0, 5.0, 5.0)
# Decoded log size changes are clipped here (detectron's log(1000/16)) so an untrained head
# cannot overflow exp.
MAX_LOG_SCALE = math.log(1000.0 / 16.0)


def area(boxes: jax.Array) -> jax.Array:
    height = jnp.maximum(boxes[..., 2] - boxes[..., 0], 0.0)
    width = jnp.maximum(boxes[..., 3] - boxes[..., 1], 0.0)
    return height * width


def pairwise_iou(boxes_a: jax.Array, boxes_b: jax.Array) -> jax.Array:
    """[..., N, 4] x [..., M, 4] -> [..., N, M] intersection over union (0 for empty boxes)."""
    a = boxes_a[..., :, None, :]
    b = boxes_b[..., None, :, :]
    top_left = jnp.maximum(a[..., :2], b[..., :2])
    bottom_right = jnp.minimum(a[..., 2:], b[..., 2:])
    extent = jnp.maximum(bottom_right - top_left, 0.0)
    intersection = extent[..., 0] * extent[..., 1]
    union = area(a) + area(b) - intersection
    return jnp.where(union > 0, intersection / jnp.where(union > 0, union, 1.0), 0.0)


def _centre_size(boxes: jax.Array) -> tuple[jax.Array, ...]:
    height = boxes[..., 2] - boxes[..., 0]
    width = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * height, boxes[..., 1] + 0.5 * width, height, width


def encode(
    boxes: jax.Array, anchors: jax.Array, scale_factors: Sequence[float] = SCALE_FACTORS
) -> jax.Array:
    """Regression targets (ty, tx, th, tw) of `boxes` relative to `anchors` (broadcastable):
    ty = (y - ya) / ha, th = log(h / ha), each times its scale factor (Faster R-CNN)."""
    y, x, h, w = _centre_size(boxes)
    ya, xa, ha, wa = _centre_size(anchors)
    tiny = 1e-8
    ha, wa = jnp.maximum(ha, tiny), jnp.maximum(wa, tiny)
    h, w = jnp.maximum(h, tiny), jnp.maximum(w, tiny)
    sy, sx, sh, sw = scale_factors
    return jnp.stack(
        [sy * (y - ya) / ha, sx * (x - xa) / wa, sh * jnp.log(h / ha), sw * jnp.log(w / wa)],
        axis=-1,
    )


def decode(
    deltas: jax.Array, anchors: jax.Array, scale_factors: Sequence[float] = SCALE_FACTORS
) -> jax.Array:
    """The inverse of `encode`: boxes from (ty, tx, th, tw) and their anchors."""
    ya, xa, ha, wa = _centre_size(anchors)
    sy, sx, sh, sw = scale_factors
    y = deltas[..., 0] / sy * ha + ya
    x = deltas[..., 1] / sx * wa + xa
    h = jnp.exp(jnp.minimum(deltas[..., 2] / sh, MAX_LOG_SCALE)) * ha
    w = jnp.exp(jnp.minimum(deltas[..., 3] / sw, MAX_LOG_SCALE)) * wa
    return jnp.stack([y - 0.5 * h, x - 0.5 * w, y + 0.5 * h, x + 0.5 * w], axis=-1)


def clip_to_frame(boxes: jax.Array) -> jax.Array:
    return jnp.clip(boxes, 0.0, 1.0)


def anchors(
    grid_height: int,
    grid_width: int,
    sizes: Sequence[float],
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
) -> jax.Array:
    """[grid_height * grid_width * A, 4] anchors centred on every cell of a feature grid.

    A = len(sizes) * len(aspect_ratios); `sizes` are sqrt(area) as fractions of the frame and
    an aspect ratio is height / width. Order: row-major cells, then sizes, then ratios, which
    matches a conv head's [H, W, A] output reshaped to [H * W * A].
    """
    shapes = [
        (size * math.sqrt(ratio), size / math.sqrt(ratio))
        for size in sizes
        for ratio in aspect_ratios
    ]
    half = 0.5 * jnp.asarray(shapes, jnp.float32)  # [A, 2] (h/2, w/2)
    cy = (jnp.arange(grid_height, dtype=jnp.float32) + 0.5) / grid_height
    cx = (jnp.arange(grid_width, dtype=jnp.float32) + 0.5) / grid_width
    centres = jnp.stack(jnp.meshgrid(cy, cx, indexing="ij"), axis=-1)  # [H, W, 2]
    centres = centres[:, :, None, :]
    boxes = jnp.concatenate([centres - half, centres + half], axis=-1)  # [H, W, A, 4]
    return boxes.reshape(-1, 4)


def non_max_suppression(
    boxes: jax.Array, scores: jax.Array, valid: jax.Array, iou_threshold: float, max_outputs: int
):
    """Greedy NMS with a fixed output size.

    boxes [N, 4], scores [N], valid [N] bool -> (indices [max_outputs] int32, keep
    [max_outputs] bool), in decreasing score order; where keep is False the index is padding.
    A box is dropped when a higher-scoring kept box overlaps it with IoU > iou_threshold.
    Ties in score keep the lower index first (a stable sort), so the result is deterministic.
    """
    num = boxes.shape[0]
    order = jnp.argsort(-jnp.where(valid, scores, -jnp.inf), stable=True)
    sorted_boxes = boxes[order]
    sorted_valid = valid[order]
    overlaps = pairwise_iou(sorted_boxes, sorted_boxes) > iou_threshold
    earlier = jnp.arange(num)[:, None] < jnp.arange(num)[None, :]  # [i, j]: i before j

    def visit(i, keep):
        suppressed = jnp.any(keep & overlaps[:, i] & earlier[:, i])
        return keep.at[i].set(sorted_valid[i] & ~suppressed)

    # All False, but derived from the inputs: under shard_map the loop carry must vary over the
    # mesh exactly as the body's output does, and a fresh constant would not.
    nothing = overlaps[0] & sorted_valid & False
    keep = jax.lax.fori_loop(0, num, visit, nothing)
    # Kept boxes first, in score order; the rest are padding.
    rank = jnp.argsort(~keep, stable=True)[:max_outputs]
    if max_outputs > num:
        pad = max_outputs - num
        rank = jnp.concatenate([rank, jnp.zeros((pad,), rank.dtype)])
        return order[rank].astype(jnp.int32), jnp.concatenate(
            [keep[rank[:num]], jnp.zeros((pad,), bool)]
        )
    return order[rank].astype(jnp.int32), keep[rank]
