"""Model zoo: S3D-family video networks as per-layer specs over one Inception-v1 graph.

    from video_s3d import models
    model = models.create("s3dg", num_classes=400, dtype="bfloat16")
    variables = model.init({"params": k1, "dropout": k2}, x, train=False)

Modules: spec (the per-layer design space), layers (conv unit, gating, BN), inception
(block, backbone, head), zoo (named specs, registry), inflate (2D -> 3D), bench (speed).
"""

from video_s3d.models.inception import (
    Backbone,
    ClassifierHead,
    InceptionBlock,
    VideoInception,
    minimum_input,
)
from video_s3d.models.layers import Conv3D, ConvUnit, SelfGating
from video_s3d.models.spec import INCEPTION_CHANNELS, LAYER_NAMES, LayerSpec, NetworkSpec
from video_s3d.models.zoo import OVERRIDES, create, create_from_spec, get_spec, names

ENDPOINT_NAMES = (
    "Conv_1a",
    "MaxPool_2a",
    "Conv_2b",
    "Conv_2c",
    "MaxPool_3a",
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool_4a",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool_5a",
    "Mixed_5b",
    "Mixed_5c",
    "PreLogits",
)

__all__ = [
    "Backbone",
    "ClassifierHead",
    "Conv3D",
    "ConvUnit",
    "ENDPOINT_NAMES",
    "INCEPTION_CHANNELS",
    "InceptionBlock",
    "LAYER_NAMES",
    "LayerSpec",
    "NetworkSpec",
    "OVERRIDES",
    "SelfGating",
    "VideoInception",
    "create",
    "create_from_spec",
    "get_spec",
    "minimum_input",
    "names",
]
