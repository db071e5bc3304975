"""torchvision's S3D state dict -> `s3d_torchvision` variables.

torchvision.models.video.s3d names its modules by position: `features.<i>` is the i-th
layer of an nn.Sequential (max-pools included), a Conv3dNormActivation is (0 conv, 1 BN),
a TemporalSeparableConv is (0 spatial unit, 1 temporal unit), and an Inception block has
branch0 .. branch3 (branch1/2: 0 the 1x1x1 reduce, 1 the separable 3x3x3; branch3: 1 the
1x1x1 after the pool). `classifier.1` is the final 1x1x1 conv.

Layouts: a torch Conv3d weight is [out, in, kt, kh, kw], ours [kt, kh, kw, in, out];
BatchNorm3d's weight/bias/running_mean/running_var are our bn scale/bias/mean/var.
`num_batches_tracked` has no counterpart (flax's BN uses a fixed momentum) and is dropped.

The KINETICS400_V1 weights (https://download.pytorch.org/models/s3d-d76dad2f.pth) expect
torchvision's input normalisation, not this project's [-1, 1] pixels: RGB in [0, 1],
minus mean (0.43216, 0.394666, 0.37645), divided by std (0.22803, 0.22145, 0.216989).
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from video_s3d.errors import UserError
from video_s3d.interop import torch_pickle
from video_s3d.interop import variables as variables_lib
from video_s3d.models.spec import LAYER_NAMES

MODEL_NAME = "s3d_torchvision"
KINETICS400_URL = "https://download.pytorch.org/models/s3d-d76dad2f.pth"
INPUT_MEAN = (0.43216, 0.394666, 0.37645)
INPUT_STD = (0.22803, 0.22145, 0.216989)
# The smallest clip torchvision's S3D accepts (its head pools a fixed 2x7x7 window).
MIN_FRAMES, MIN_PIXELS = 13, 209

# Positions in `features` of the stem and the ten LAYER_NAMES (the rest are max-pools).
_STEM = {
    "Conv_1a": ("features.0", "separable"),
    "Conv_2b": ("features.2", "unit"),
    "Conv_2c": ("features.3", "separable"),
}
_BLOCK_POSITIONS = dict(zip(LAYER_NAMES[1:], (5, 6, 8, 9, 10, 11, 12, 14, 15)))
_BRANCHES = {  # our unit name -> (torch sub-path inside the block, kind)
    "Branch_0_Conv_0a_1x1": ("branch0", "unit"),
    "Branch_1_Conv_0a_1x1": ("branch1.0", "unit"),
    "Branch_1_Conv_0b_3x3": ("branch1.1", "separable"),
    "Branch_2_Conv_0a_1x1": ("branch2.0", "unit"),
    "Branch_2_Conv_0b_3x3": ("branch2.1", "separable"),
    "Branch_3_Conv_0b_1x1": ("branch3.1", "unit"),
}


def unit_prefixes() -> dict[tuple[str, ...], tuple[str, str]]:
    """(backbone, unit path) -> (torch prefix, 'unit' | 'separable') for every conv unit."""
    units = {("backbone", name): prefix_kind for name, prefix_kind in _STEM.items()}
    for block, position in _BLOCK_POSITIONS.items():
        for branch, (sub, kind) in _BRANCHES.items():
            units[("backbone", block, branch)] = (f"features.{position}.{sub}", kind)
    return units


def _conv_kernel(weight: np.ndarray) -> np.ndarray:
    if weight.ndim != 5:
        raise UserError(
            f"Expected a Conv3d weight [out, in, kt, kh, kw], got shape {weight.shape}."
        )
    return np.transpose(weight, (2, 3, 4, 1, 0))


def convert(state_dict: Mapping[str, np.ndarray]) -> dict[tuple[str, ...], np.ndarray]:
    """{('params' | 'batch_stats', ...): array} from a torchvision S3D state dict.

    Every tensor of the state dict is used exactly once; a key this mapping does not know
    (or one it needs and does not find) fails with the first few names.
    """
    remaining = dict(state_dict)
    missing = []

    def take(key: str):
        if key not in remaining:
            missing.append(key)
            return None
        return remaining.pop(key)

    flat = {}

    def conv_bn(torch_prefix: str, path: tuple[str, ...], conv: str, bn: str) -> None:
        kernel = take(f"{torch_prefix}.0.weight")
        if kernel is not None:
            flat[("params", *path, conv, "kernel")] = _conv_kernel(kernel)
        for torch_name, collection, name in (
            ("weight", "params", "scale"),
            ("bias", "params", "bias"),
            ("running_mean", "batch_stats", "mean"),
            ("running_var", "batch_stats", "var"),
        ):
            value = take(f"{torch_prefix}.1.{torch_name}")
            if value is not None:
                flat[(collection, *path, bn, name)] = value
        remaining.pop(f"{torch_prefix}.1.num_batches_tracked", None)

    for path, (prefix, kind) in unit_prefixes().items():
        if kind == "unit":
            conv_bn(prefix, path, "conv", "bn")
        else:
            conv_bn(f"{prefix}.0", path, "conv", "bn")
            conv_bn(f"{prefix}.1", path, "temporal_conv", "temporal_bn")
    kernel, bias = take("classifier.1.weight"), take("classifier.1.bias")
    if kernel is not None:
        flat[("params", "head", "Logits", "kernel")] = _conv_kernel(kernel)
    if bias is not None:
        flat[("params", "head", "Logits", "bias")] = bias
    variables_lib.check_all_used(
        missing,
        remaining,
        noun="tensors",
        architecture="S3D",
        what_it_is="a torchvision S3D state dict",
        what_to_pass="pass the .pth of torchvision.models.video.s3d (e.g. its KINETICS400_V1 weights)",
    )
    return {p: np.asarray(v, np.float32) for p, v in flat.items()}


def num_classes_of(state_dict: Mapping[str, np.ndarray]) -> int:
    if "classifier.1.bias" not in state_dict:
        raise UserError(
            "The state dict has no classifier.1.bias, so it is not a torchvision S3D "
            "state dict; pass the .pth of torchvision.models.video.s3d."
        )
    return int(state_dict["classifier.1.bias"].shape[0])


def load_variables(path: str | os.PathLike) -> tuple[dict, int]:
    """s3d_torchvision variables from a torchvision S3D .pth, and the file's class count."""
    from video_s3d import models

    state_dict = torch_pickle.load_state_dict(path)
    num_classes = num_classes_of(state_dict)
    flat = convert(state_dict)
    target = variables_lib.abstract_variables(
        models.create(MODEL_NAME, num_classes), MIN_FRAMES, MIN_PIXELS
    )
    return variables_lib.fill(flat, target, f"torchvision S3D ({os.fspath(path)})"), num_classes
