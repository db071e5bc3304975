"""TV-L1 optical flow (Zach, Pock, Bischof, DAGM 2007) as one jit-compiled JAX program.

The duality-based scheme as OpenCV implements it (contrib `optflow::DualTVL1OpticalFlow`,
`tvl1flow.cpp`, after Javier Sánchez Pérez's IPOL code), step for step, so its output can be
checked against OpenCV's:

  * images on the 0..255 scale; a pyramid of `nscales` levels, each `scale_step` times the
    previous (bilinear, half-pixel centres, no smoothing: `cv::resize(..., scaleStep,
    scaleStep)`), stopping before a level under 16 pixels on a side;
  * per level, coarse to fine: `warps` times, warp I1 and its centred gradient by the current
    flow (bicubic, A = -0.75, zero outside the image: `remap(..., INTER_CUBIC)` with its
    default constant border), then up to `outer_iterations` x (5x5 median of the flow, then up
    to `inner_iterations` x [thresholding step for v, u = v + theta div p, dual step for p]);
    both loops stop once the squared flow change of an inner step falls to epsilon^2 * area;
  * the flow is upsampled bilinearly to the next level and divided by `scale_step`.

What differs from OpenCV, on purpose: a batch of pairs is one program with static shapes on CPU,
GPU or TPU, so the stopping rule freezes a converged pair's state and the loop (a
`lax.while_loop` bounded by the iteration counts) ends when every pair of the batch has
converged: each pair's result is the one it would get alone; `remap`'s 1/32-pixel
quantisation of the sample position is not reproduced (we sample at the exact position); the
illumination term (`gamma`, 0 = off by OpenCV's default) is not implemented.

Defaults are OpenCV's (`DualTVL1OpticalFlow::create`, and the getters of
opencv-contrib-python-headless 5.0.0.93 return the same: tau 0.25, lambda 0.15, theta 0.3,
nscales 5, warps 5, epsilon 0.01, innerIterations 30, outerIterations 10, scaleStep 0.8,
gamma 0, medianFiltering 5); the I3D protocol (kinetics-i3d README) names OpenCV's TV-L1 and
changes none of them.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# OpenCV's bicubic kernel parameter (imgproc `interpolateCubic`).
_CUBIC_A = -0.75
# OpenCV stops building the pyramid before a level smaller than this on either side.
_MIN_LEVEL_SIZE = 16


@dataclasses.dataclass(frozen=True)
class TVL1Params:
    """OpenCV DualTVL1's parameters under its names; the defaults are OpenCV's."""

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    median_filtering: int = 5

    def __post_init__(self):
        if self.median_filtering not in (1, 3, 5):
            raise ValueError(
                f"median_filtering={self.median_filtering}: use 1 (off), 3 or 5 "
                "(the sizes OpenCV's float median filter accepts)."
            )
        if not 0.0 < self.scale_step < 1.0 or self.nscales < 1:
            raise ValueError(
                f"scale_step={self.scale_step}, nscales={self.nscales}: need "
                "0 < scale_step < 1 and nscales >= 1."
            )


def pyramid_shapes(height: int, width: int, params: TVL1Params) -> list[tuple[int, int]]:
    """Level sizes, finest first, as OpenCV computes them (round, stop below 16 px)."""
    shapes = [(height, width)]
    for _ in range(1, params.nscales):
        h, w = shapes[-1]
        # cv::resize with fx=fy=scaleStep: dsize = saturate_cast<int>(size * scale) (rint).
        nh, nw = int(np.rint(h * params.scale_step)), int(np.rint(w * params.scale_step))
        if nh < _MIN_LEVEL_SIZE or nw < _MIN_LEVEL_SIZE:
            break
        shapes.append((nh, nw))
    return shapes


def _linear_resize_matrix(n_out: int, n_in: int, inv_scale: float) -> np.ndarray:
    """[n_out, n_in] matrix of cv::resize INTER_LINEAR along one axis (coordinates clamped)."""
    matrix = np.zeros((n_out, n_in), np.float64)
    for dst in range(n_out):
        src = (dst + 0.5) / inv_scale - 0.5
        left = int(np.floor(src))
        frac = src - left
        if left < 0:
            left, frac = 0, 0.0
        if left >= n_in - 1:
            left, frac = n_in - 1, 0.0
        matrix[dst, left] += 1.0 - frac
        if frac > 0:
            matrix[dst, left + 1] += frac
    return matrix.astype(np.float32)


def _resize(images: jnp.ndarray, shape: tuple[int, int], inv_scale: tuple[float, float]):
    """Bilinear resize of [B, H, W] as two small matmuls (exact float32 on every backend)."""
    rows = _linear_resize_matrix(shape[0], images.shape[1], inv_scale[0])
    cols = _linear_resize_matrix(shape[1], images.shape[2], inv_scale[1])
    return jnp.einsum("oh,bhw,pw->bop", rows, images, cols, precision=lax.Precision.HIGHEST)


def _centered_gradient(image):
    """0.5 (f[x+1] - f[x-1]), with one-sided halves at the border (OpenCV centeredGradient)."""
    padded = jnp.pad(image, ((0, 0), (1, 1), (1, 1)), mode="edge")
    dx = 0.5 * (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2])
    dy = 0.5 * (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1])
    return dx, dy


def _forward_gradient(field):
    """f[x+1] - f[x], zero in the last column / row."""
    dx = jnp.pad(field[:, :, 1:] - field[:, :, :-1], ((0, 0), (0, 0), (0, 1)))
    dy = jnp.pad(field[:, 1:, :] - field[:, :-1, :], ((0, 0), (0, 1), (0, 0)))
    return dx, dy


def _divergence(px, py):
    """Backward differences with zero before the first column / row: minus forward_gradient's
    adjoint."""
    return (
        px
        - jnp.pad(px[:, :, :-1], ((0, 0), (0, 0), (1, 0)))
        + py
        - jnp.pad(py[:, :-1, :], ((0, 0), (1, 0), (0, 0)))
    )


def _cubic_weights(frac):
    """OpenCV's four bicubic tap weights for fractional offset `frac` (taps at -1, 0, 1, 2)."""
    a = _CUBIC_A
    x = frac
    w0 = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a
    w1 = ((a + 2) * x - (a + 3)) * x * x + 1
    w2 = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1
    w3 = 1.0 - w0 - w1 - w2
    return (w0, w1, w2, w3)


def _warp_bicubic(images, flow_x, flow_y):
    """Sample [B, H, W, C] at (x + flow_x, y + flow_y); taps outside the image read 0."""
    batch, height, width, channels = images.shape
    ys, xs = jnp.meshgrid(
        jnp.arange(height, dtype=jnp.float32), jnp.arange(width, dtype=jnp.float32), indexing="ij"
    )
    map_x, map_y = xs + flow_x, ys + flow_y
    x0, y0 = jnp.floor(map_x), jnp.floor(map_y)
    wx, wy = _cubic_weights(map_x - x0), _cubic_weights(map_y - y0)
    x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
    flat = images.reshape(batch, height * width, channels)
    out = jnp.zeros((batch, height, width, channels), images.dtype)
    for i in range(4):
        yi = y0 + (i - 1)
        y_inside = (yi >= 0) & (yi < height)
        for j in range(4):
            xi = x0 + (j - 1)
            inside = y_inside & (xi >= 0) & (xi < width)
            index = jnp.clip(yi, 0, height - 1) * width + jnp.clip(xi, 0, width - 1)
            taps = jnp.take_along_axis(flat, index.reshape(batch, -1, 1), axis=1)
            weight = jnp.where(inside, wy[i] * wx[j], 0.0)
            out = out + taps.reshape(batch, height, width, channels) * weight[..., None]
    return out


def _median_filter(field, size):
    """size x size median with replicated borders (cv::medianBlur on float images)."""
    r = size // 2
    padded = jnp.pad(field, ((0, 0), (r, r), (r, r)), mode="edge")
    h, w = field.shape[1:]
    windows = jnp.stack(
        [padded[:, i : i + h, j : j + w] for i in range(size) for j in range(size)], axis=-1
    )
    return jnp.sort(windows, axis=-1)[..., size * size // 2]


def _gate(active, new, old):
    """Per pair of the batch: `new` where it is still iterating, else `old` (frozen)."""
    return tuple(jnp.where(active[:, None, None], n, o) for n, o in zip(new, old))


def _scaled_epsilon(height: int, width: int, params: TVL1Params) -> float:
    """OpenCV's stopping threshold on the squared flow change of one inner step."""
    return params.epsilon**2 * height * width


def _level_images(i1):
    """I1 and its centred gradient, stacked [B, H, W, 3] to be warped together (once a level)."""
    i1x, i1y = _centered_gradient(i1)
    return jnp.stack([i1, i1x, i1y], axis=-1)


def _linearise(i0, i1_stack, u1, u2):
    """Once a warp: I1 and its gradient warped by the current flow, and the data term
    linearised around it: (I1w_x, I1w_y, |grad I1w|^2, rho at zero flow change)."""
    warped = _warp_bicubic(i1_stack, u1, u2)
    i1w, i1wx, i1wy = warped[..., 0], warped[..., 1], warped[..., 2]
    grad = i1wx * i1wx + i1wy * i1wy
    rho_c = i1w - i1wx * u1 - i1wy * u2 - i0
    return i1wx, i1wy, grad, rho_c


def _median_step(params: TVL1Params, scaled_epsilon: float, carry):
    """Once an outer iteration: the flow's median filter, for the pairs still iterating."""
    n, (u1, u2, *duals), error = carry
    if params.median_filtering > 1:
        u1, u2 = _gate(
            error > scaled_epsilon,
            (
                _median_filter(u1, params.median_filtering),
                _median_filter(u2, params.median_filtering),
            ),
            (u1, u2),
        )
    return n, (u1, u2, *duals), error


def _inner_step(linear, params: TVL1Params, scaled_epsilon: float, carry):
    """One inner iteration (OpenCV's loop body): thresholding step for v, u = v + theta div p,
    the dual step for p; pairs already converged keep their state."""
    i1wx, i1wy, grad, rho_c = linear
    l_t = params.lambda_ * params.theta
    taut = params.tau / params.theta
    tiny = np.finfo(np.float32).eps
    n, (u1, u2, p11, p12, p21, p22), error = carry
    active = error > scaled_epsilon
    # Thresholding step: v minimises the data term plus (u - v)^2 / (2 theta).
    rho = rho_c + i1wx * u1 + i1wy * u2
    fi = jnp.where(grad > tiny, -rho / jnp.where(grad > tiny, grad, 1.0), 0.0)
    step = jnp.where(rho < -l_t * grad, l_t, jnp.where(rho > l_t * grad, -l_t, fi))
    v1, v2 = u1 + step * i1wx, u2 + step * i1wy
    new_u1 = v1 + params.theta * _divergence(p11, p12)
    new_u2 = v2 + params.theta * _divergence(p21, p22)
    new_error = jnp.sum((new_u1 - u1) ** 2 + (new_u2 - u2) ** 2, axis=(1, 2))
    # Dual step (Chambolle's projection, semi-implicit).
    u1x, u1y = _forward_gradient(new_u1)
    u2x, u2y = _forward_gradient(new_u2)
    ng1 = 1.0 + taut * jnp.sqrt(u1x * u1x + u1y * u1y)
    ng2 = 1.0 + taut * jnp.sqrt(u2x * u2x + u2y * u2y)
    new = (
        (p11 + taut * u1x) / ng1,
        (p12 + taut * u1y) / ng1,
        (p21 + taut * u2x) / ng2,
        (p22 + taut * u2y) / ng2,
    )
    state = _gate(active, (new_u1, new_u2) + new, (u1, u2, p11, p12, p21, p22))
    return n + 1, state, jnp.where(active, new_error, error)


def _one_scale(i0, i1, u1, u2, params: TVL1Params):
    """TV-L1 at one pyramid level for a batch: [B, H, W] images and flow, 0..255 scale.

    The loop bodies are the module's functions above, which video_s3d.flow.cost counts."""
    batch, height, width = i0.shape
    scaled_epsilon = _scaled_epsilon(height, width, params)
    i1_stack = _level_images(i1)
    zeros = jnp.zeros_like(i0)

    def running(count):
        # OpenCV's loop condition, for the batch: go on while some pair has not converged.
        return lambda carry: (carry[0] < count) & jnp.any(carry[-1] > scaled_epsilon)

    def warp_step(_, state):
        inner_step = functools.partial(
            _inner_step, _linearise(i0, i1_stack, state[0], state[1]), params, scaled_epsilon
        )
        error = jnp.full((batch,), np.finfo(np.float32).max, jnp.float32)

        def outer_step(carry):
            n, state, error = _median_step(params, scaled_epsilon, carry)
            _, state, error = lax.while_loop(
                running(params.inner_iterations), inner_step, (0, state, error)
            )
            return n + 1, state, error

        _, state, _ = lax.while_loop(
            running(params.outer_iterations), outer_step, (0, state, error)
        )
        return state

    state = (u1, u2, zeros, zeros, zeros, zeros)
    u1, u2, *_ = lax.fori_loop(0, params.warps, warp_step, state)
    return u1, u2


@functools.partial(jax.jit, static_argnames=("params",))
def tvl1_flow(image0, image1, params: TVL1Params = TVL1Params()):
    """Flow from `image0` to `image1`: [B, H, W] grayscale on the 0..255 scale -> [B, H, W, 2].

    Channel 0 is x (to the right), channel 1 is y (down), in pixels: image1 at p + flow(p)
    matches image0 at p, as OpenCV's `calc(I0, I1)` returns it.
    """
    if image0.ndim != 3 or image0.shape != image1.shape:
        raise ValueError(
            f"tvl1_flow takes two [batch, height, width] grayscale batches of one "
            f"shape; got {image0.shape} and {image1.shape}."
        )
    i0 = image0.astype(jnp.float32)
    i1 = image1.astype(jnp.float32)
    shapes = pyramid_shapes(i0.shape[1], i0.shape[2], params)
    step = (params.scale_step, params.scale_step)
    pyramid = [(i0, i1)]
    for shape in shapes[1:]:
        prev0, prev1 = pyramid[-1]
        pyramid.append((_resize(prev0, shape, step), _resize(prev1, shape, step)))
    coarse = shapes[-1]
    u1 = jnp.zeros((i0.shape[0],) + coarse, jnp.float32)
    u2 = jnp.zeros_like(u1)
    for level in range(len(shapes) - 1, -1, -1):
        u1, u2 = _one_scale(*pyramid[level], u1, u2, params)
        if level == 0:
            break
        finer = shapes[level - 1]
        # dsize given: cv::resize's scale is the ratio of sizes; the flow is then divided
        # by scale_step (not by that ratio), as OpenCV does.
        inv = (finer[0] / u1.shape[1], finer[1] / u1.shape[2])
        u1 = _resize(u1, finer, inv) / params.scale_step
        u2 = _resize(u2, finer, inv) / params.scale_step
    return jnp.stack([u1, u2], axis=-1)
