"""Optical flow for the flow stream: TV-L1 in JAX and the I3D input protocol."""

from video_s3d.flow.i3d import FLOW_BOUND, clip_flow, flip_horizontally, rescale, rgb_to_gray
from video_s3d.flow.tvl1 import TVL1Params, pyramid_shapes, tvl1_flow

__all__ = [
    "FLOW_BOUND",
    "TVL1Params",
    "clip_flow",
    "flip_horizontally",
    "pyramid_shapes",
    "rescale",
    "rgb_to_gray",
    "tvl1_flow",
]
