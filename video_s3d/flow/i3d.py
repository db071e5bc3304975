"""The flow input protocol of the I3D release, which S3D-G's two-stream numbers follow.

deepmind/kinetics-i3d README (quoted in /work/shared/REFERENCE.md, "Two-stream"): frames
converted to grayscale, TV-L1 optical flow between consecutive frames, values truncated to
[-20, 20] and rescaled to [-1, 1], two channels (x, y). A horizontal flip of a flow clip mirrors
the field and negates its x channel.
"""

from __future__ import annotations

import jax.numpy as jnp

from video_s3d.flow.tvl1 import TVL1Params, tvl1_flow

# kinetics-i3d README: flow values truncated to [-20, 20].
FLOW_BOUND = 20.0
# ITU-R BT.601 luma, the weights of OpenCV's cvtColor(RGB2GRAY) (imgproc docs, "RGB <-> GRAY").
_LUMA = (0.299, 0.587, 0.114)


def rgb_to_gray(frames):
    """[..., 3] RGB on 0..255 -> [...] gray on 0..255, rounded as OpenCV's uint8 conversion."""
    r, g, b = (frames[..., c].astype(jnp.float32) for c in range(3))
    return jnp.round(_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b)


def rescale(flow):
    """Pixels -> the network's input: clip to [-FLOW_BOUND, FLOW_BOUND], then divide by it."""
    return jnp.clip(flow, -FLOW_BOUND, FLOW_BOUND) / FLOW_BOUND


def clip_flow(frames, params: TVL1Params = TVL1Params()):
    """A clip of RGB frames [T, H, W, 3] (0..255) -> its flow input [T - 1, H, W, 2] in [-1, 1].

    All T - 1 consecutive pairs go through TV-L1 as one batch.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 2:
        raise ValueError(
            f"clip_flow takes [T >= 2, height, width, 3] RGB frames; got shape "
            f"{tuple(frames.shape)}."
        )
    gray = rgb_to_gray(frames)
    return rescale(tvl1_flow(gray[:-1], gray[1:], params))


def flip_horizontally(flow):
    """Mirror a flow field or clip [..., H, W, 2] left-right: x motion changes sign."""
    return flow[..., ::-1, :] * jnp.asarray([-1.0, 1.0], flow.dtype)
