"""ROI-Align (He et al., Mask R-CNN, 2017) of a spatio-temporal feature map, in JAX.

Each box is extended over the clip's whole time extent (the same box in every feature frame,
as in the I3D/AVA detectors of Gu et al. 2018), bilinearly sampled into an output_size x
output_size grid per frame, and averaged over time.

Bilinear sampling is separable, so it is written as two small interpolation matrices per box
(rows: sample points; columns: feature rows or columns) contracted with the feature map by one
einsum: no gathers, static shapes, differentiable in the features.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _interpolation_matrix(
    start: jax.Array, end: jax.Array, output_size: int, sampling_ratio: int, length: int
) -> jax.Array:
    """[R, output_size * sampling_ratio, length] linear-interpolation weights along one axis.

    start/end [R] are box edges in feature pixels where pixel i covers [i, i + 1) (its centre at
    i + 0.5, detectron2's aligned=True). A sample point p samples continuous coordinate p - 0.5;
    points more than one pixel outside the map sample zero; the rest are clamped to the first
    or last pixel centre (as in Detectron's ROIAlign kernel).
    """
    bin_size = (end - start) / output_size  # [R]
    steps = (jnp.arange(output_size * sampling_ratio, dtype=jnp.float32) + 0.5) / sampling_ratio
    points = start[:, None] + steps[None, :] * bin_size[:, None] - 0.5  # [R, P*s]
    inside = (points >= -1.0) & (points <= length)
    points = jnp.clip(points, 0.0, length - 1)
    low = jnp.floor(points)
    frac = points - low
    cells = jnp.arange(length, dtype=jnp.float32)
    weights = jnp.where(cells == low[..., None], 1.0 - frac[..., None], 0.0) + jnp.where(
        cells == low[..., None] + 1.0, frac[..., None], 0.0
    )
    return weights * inside[..., None]


def roi_align(
    features: jax.Array,
    boxes: jax.Array,
    output_size: int = 7,
    sampling_ratio: int = 2,
    pool_time: bool = True,
) -> jax.Array:
    """features [T, H, W, C], boxes [R, 4] (ymin, xmin, ymax, xmax as fractions of the frame)
    -> [R, output_size, output_size, C] averaged over T (or [R, T, P, P, C] with
    pool_time=False). Each bin averages sampling_ratio^2 bilinear samples. vmap it over a batch.
    """
    _, height, width, _ = features.shape
    weights_y = _interpolation_matrix(
        boxes[:, 0] * height, boxes[:, 2] * height, output_size, sampling_ratio, height
    )
    weights_x = _interpolation_matrix(
        boxes[:, 1] * width, boxes[:, 3] * width, output_size, sampling_ratio, width
    )
    num_boxes = boxes.shape[0]
    # Averaging the samples of a bin commutes with the (linear) sampling: fold it into weights.
    weights_y = weights_y.reshape(num_boxes, output_size, sampling_ratio, height).mean(axis=2)
    weights_x = weights_x.reshape(num_boxes, output_size, sampling_ratio, width).mean(axis=2)
    weights_y = weights_y.astype(features.dtype)
    weights_x = weights_x.astype(features.dtype)
    if pool_time:
        # Averaging over time also commutes with sampling: pool the map once, not per box.
        pooled = jnp.mean(features, axis=0)
        return jnp.einsum("rph,rqw,hwc->rpqc", weights_y, weights_x, pooled)
    return jnp.einsum("rph,rqw,thwc->rtpqc", weights_y, weights_x, features)
