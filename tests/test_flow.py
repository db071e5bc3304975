"""TV-L1 flow in JAX: known motions recovered, OpenCV's DualTVL1 matched, the I3D protocol.

Every flow computation here is one 64x64 pair with 3 pyramid levels (the other parameters
OpenCV's defaults), so the program compiles once for the whole file; the tests are about
correctness, the default 5 levels at 256 pixels are the benchmark's
(`python -m video_s3d.flow.bench`).
"""

from __future__ import annotations

import os

import cv2
import jax.numpy as jnp
import numpy as np
import pytest

from video_s3d import flow
from video_s3d.data.builders import video_files

SIZE = 64
PARAMS = flow.TVL1Params(nscales=3)
# "Interior": 16 px (a quarter of the frame) from the edges. Nearer, the warp reads zeros outside
# the frame and the coarsest level (41 px) spreads that over about 3 of its pixels; measured at
# 8 px from the edges the worst translation error is 0.10-0.15 px, from 16 px on 0.05-0.06 px.
BORDER = 16


def texture(x, y, seed=0):
    """A smooth random texture defined everywhere, so any warp of it is exact (no resampling):
    a sum of 12 sinusoids with periods 6..24 px on the 0..255 scale."""
    rng = np.random.default_rng(seed)
    value = np.zeros(np.broadcast(x, y).shape)
    for _ in range(12):
        angle = rng.uniform(0, np.pi)
        frequency = 2 * np.pi / rng.uniform(6, 24)
        phase = rng.uniform(0, 2 * np.pi)
        value += np.sin(frequency * (np.cos(angle) * x + np.sin(angle) * y) + phase)
    return 127.5 + 127.5 * value / np.abs(value).max()


def flow_of(image0, image1):
    return np.asarray(
        flow.tvl1_flow(
            jnp.asarray(image0[None], jnp.float32), jnp.asarray(image1[None], jnp.float32), PARAMS
        )
    )[0]


def interior(field):
    return field[BORDER:-BORDER, BORDER:-BORDER]


def test_defaults_are_opencvs():
    reference = cv2.optflow.DualTVL1OpticalFlow_create()
    ours = flow.TVL1Params()
    assert (ours.tau, ours.lambda_, ours.theta, ours.epsilon, ours.scale_step) == (
        reference.getTau(),
        reference.getLambda(),
        reference.getTheta(),
        reference.getEpsilon(),
        reference.getScaleStep(),
    )
    assert (
        ours.nscales,
        ours.warps,
        ours.inner_iterations,
        ours.outer_iterations,
        ours.median_filtering,
    ) == (
        reference.getScalesNumber(),
        reference.getWarpingsNumber(),
        reference.getInnerIterations(),
        reference.getOuterIterations(),
        reference.getMedianFiltering(),
    )
    assert reference.getGamma() == 0.0  # the illumination term we do not implement is off


def test_pyramid_stops_before_16_pixels():
    assert flow.pyramid_shapes(256, 340, flow.TVL1Params()) == [
        (256, 340),
        (205, 272),
        (164, 218),
        (131, 174),
        (105, 139),
    ]
    assert flow.pyramid_shapes(24, 30, flow.TVL1Params()) == [(24, 30), (19, 24)]


@pytest.mark.parametrize("shift", [(0.4, -0.7), (1.3, 0.25)])
def test_subpixel_translation_is_recovered(shift):
    dx, dy = shift
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    # Frame 1 shows the scene moved by (dx, dy): I1(p) = I0(p - d), so the flow is +d.
    field = flow_of(texture(x, y), texture(x - dx, y - dy))
    error = np.abs(interior(field) - np.asarray(shift))
    assert error.max() < 0.1, error.max()


def test_rotation_field_is_recovered():
    angle = np.deg2rad(3.0)  # up to 1.3 px at the interior's corners
    centre = (SIZE - 1) / 2
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) - centre
    cos, sin = np.cos(angle), np.sin(angle)
    # Frame 1 is the scene rotated by `angle` about the centre: sample it at R^-1 p.
    frame1 = texture(cos * x + sin * y, -sin * x + cos * y)
    expected = np.stack([cos * x - sin * y - x, sin * x + cos * y - y], axis=-1)
    endpoint_error = np.linalg.norm(interior(flow_of(texture(x, y), frame1) - expected), axis=-1)
    # A rotation is not piecewise constant, which TV favours: a stated tolerance of 0.1 px mean
    # and 0.25 px worst interior end-point error.
    assert endpoint_error.mean() < 0.1, endpoint_error.mean()
    assert endpoint_error.max() < 0.25, endpoint_error.max()


def encoded_clip(path, num_frames=6):
    """A scene with a panning background and a disc moving the other way, H.264-encoded."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    frames = []
    for t in range(num_frames):
        background = texture(x - 0.8 * t, y - 0.3 * t, seed=1)
        disc = (x - 20 - 1.5 * t) ** 2 + (y - 32 + 0.5 * t) ** 2 < 10**2
        foreground = texture(x + 1.5 * t, y - 0.5 * t, seed=2)
        gray = np.where(disc, foreground, background)
        frames.append(np.repeat(gray[..., None], 3, axis=-1))
    video_files.write_video(path, np.clip(np.round(np.stack(frames)), 0, 255).astype(np.uint8))
    decoded, _ = video_files.read_video(path, short_side=None)
    return decoded


def test_matches_opencv_dualtvl1_on_an_encoded_clip(tmp_path):
    frames = encoded_clip(os.path.join(tmp_path, "clip.mp4"))
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    assert np.array_equal(gray, np.asarray(flow.rgb_to_gray(frames)).astype(np.uint8))
    reference = cv2.optflow.DualTVL1OpticalFlow_create(nscales=PARAMS.nscales)
    expected = np.stack([reference.calc(a, b, None) for a, b in zip(gray[:-1], gray[1:])])
    ours = np.stack([flow_of(a, b) for a, b in zip(gray[:-1], gray[1:])])  # one compile
    endpoint_error = np.linalg.norm(ours - expected, axis=-1)
    motion = np.linalg.norm(expected, axis=-1).mean()
    print(
        f"mean EPE vs OpenCV {endpoint_error.mean():.5f} px over {len(expected)} pairs "
        f"(99th percentile {np.percentile(endpoint_error, 99):.4f} px; mean motion "
        f"{motion:.2f} px)"
    )
    assert motion > 0.5  # the clip moves: agreeing on zero flow would prove nothing
    # The same scheme step for step; what differs is float rounding (summation order, fused
    # multiply-adds) and remap's 1/32-px sample positions, which can tip a pixel across a
    # thresholding branch or a median. Measured: 0.0015 px mean (99th percentile 0.014 px).
    # A wrong step is far away: our flow without the median filter is 0.025 px from OpenCV's
    # on this clip, with 4 warps instead of 5 0.040 px. 0.005 px is 3x the rounding we saw
    # and 5x below the nearest wrong step.
    assert endpoint_error.mean() < 0.005


def test_i3d_input_is_clipped_rescaled_and_flips_negate_x():
    field = jnp.asarray([[[[25.0, -3.0], [-40.0, 10.0], [2.0, 0.5]]]])  # [1, 1, 3, 2]
    rescaled = np.asarray(flow.rescale(field))
    np.testing.assert_allclose(rescaled[0, 0], [[1.0, -0.15], [-1.0, 0.5], [0.1, 0.025]])
    flipped = np.asarray(flow.flip_horizontally(flow.rescale(field)))
    np.testing.assert_allclose(flipped[0, 0], [[-0.1, 0.025], [1.0, 0.5], [-1.0, -0.15]])


def test_flipping_the_frames_negates_x_of_the_clip_flow():
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    frames = np.stack([texture(x - 0.9 * t, y - 0.4 * t) for t in range(2)])
    rgb = np.repeat(np.round(frames)[..., None], 3, axis=-1).astype(np.uint8)
    forward = np.asarray(flow.clip_flow(jnp.asarray(rgb), PARAMS))
    mirrored = np.asarray(flow.clip_flow(jnp.asarray(rgb[:, :, ::-1]), PARAMS))
    assert forward.shape == (1, SIZE, SIZE, 2)
    np.testing.assert_allclose(
        interior(forward[0]).mean((0, 1)), [0.9 / 20, 0.4 / 20], atol=0.1 / 20
    )
    unmirrored = np.asarray(flow.flip_horizontally(mirrored))
    np.testing.assert_allclose(interior(unmirrored[0]), interior(forward[0]), atol=0.05 / 20)


def test_bad_input_says_what_shape_it_needs():
    with pytest.raises(ValueError, match="RGB frames"):
        flow.clip_flow(jnp.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match="grayscale batches"):
        flow.tvl1_flow(jnp.zeros((8, 8)), jnp.zeros((8, 8)))
