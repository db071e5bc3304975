"""torchvision's GoogLeNet (ImageNet Inception-v1) state dict -> i2d variables.

A second 2D source beside TF-Slim's checkpoint: torchvision's IMAGENET1K_V1 weights
(https://download.pytorch.org/models/googlenet-1378be20.pth) were ported from TF, so
their "5x5" branch is 3x3 like Slim's and ours, and the network expects pixels in [-1, 1]
(torchvision's `transform_input=True` only converts its ImageNet-normalised input to
that range), as this project's pipeline gives.

Mapping: conv1, conv2, conv3 -> Conv_1a, Conv_2b, Conv_2c; inception3a, 3b, 4a..4e,
5a, 5b -> Mixed_3b, 3c, 4b..4f, 5b, 5c, whose branch1, branch2.{0,1}, branch3.{0,1},
branch4.1 are our Branch_0, Branch_1 (reduce, 3x3), Branch_2 (reduce, 3x3), Branch_3;
fc (1000 classes) -> the 1x1x1 Logits conv. The auxiliary classifiers (aux1, aux2) have
no counterpart and are skipped (reported).

BatchNorm: torchvision's is affine (gamma) while the 'tf_slim' BN has no scale. In eval
mode gamma * (Wx - m) / s + b = (gamma W x - gamma m) / s + b, so gamma is folded into
the kernel and the running mean, exactly, whatever its sign.

Padding: torchvision pads Conv 7x7/2 by 3|3 and max-pools with ceil_mode; our SAME
padding samples the same grid when the input side is 16k - 1 (223, 207, ...), where the
two networks agree to float rounding. At 224 the first conv's grid is one pixel off:
fine for an initialisation, not bit-for-bit.
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from video_s3d.interop import torch_pickle
from video_s3d.interop import variables as variables_lib

DOWNLOAD_URL = "https://download.pytorch.org/models/googlenet-1378be20.pth"
_STEM = {"conv1": "Conv_1a", "conv2": "Conv_2b", "conv3": "Conv_2c"}
_BLOCKS = {
    "inception3a": "Mixed_3b",
    "inception3b": "Mixed_3c",
    "inception4a": "Mixed_4b",
    "inception4b": "Mixed_4c",
    "inception4c": "Mixed_4d",
    "inception4d": "Mixed_4e",
    "inception4e": "Mixed_4f",
    "inception5a": "Mixed_5b",
    "inception5b": "Mixed_5c",
}
_BRANCHES = {
    "branch1": "Branch_0_Conv_0a_1x1",
    "branch2.0": "Branch_1_Conv_0a_1x1",
    "branch2.1": "Branch_1_Conv_0b_3x3",
    "branch3.0": "Branch_2_Conv_0a_1x1",
    "branch3.1": "Branch_2_Conv_0b_3x3",
    "branch4.1": "Branch_3_Conv_0b_1x1",
}


def unit_prefixes() -> dict[str, tuple[str, ...]]:
    """torchvision BasicConv2d prefix -> our unit path under 'backbone'."""
    units = {torch_name: (ours,) for torch_name, ours in _STEM.items()}
    for block, ours_block in _BLOCKS.items():
        for branch, ours in _BRANCHES.items():
            units[f"{block}.{branch}"] = (ours_block, ours)
    return units


def convert(
    state_dict: Mapping[str, np.ndarray],
) -> tuple[dict[tuple[str, ...], np.ndarray], list[str]]:
    """Flat i2d variables (1000 classes) and the auxiliary-classifier names skipped."""
    remaining = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    skipped = sorted(k for k in remaining if k.startswith(("aux1.", "aux2.")))
    for name in skipped:
        del remaining[name]
    missing, flat = [], {}

    def take(key: str):
        if key not in remaining:
            missing.append(key)
            return None
        return np.asarray(remaining.pop(key), np.float64)

    for prefix, unit in unit_prefixes().items():
        weight, gamma = take(f"{prefix}.conv.weight"), take(f"{prefix}.bn.weight")
        beta, mean = take(f"{prefix}.bn.bias"), take(f"{prefix}.bn.running_mean")
        var = take(f"{prefix}.bn.running_var")
        if any(v is None for v in (weight, gamma, beta, mean, var)):
            continue
        kernel = np.transpose(weight, (2, 3, 1, 0))[None] * gamma  # [1, kh, kw, in, out]
        flat[("params", "backbone", *unit, "conv", "kernel")] = kernel
        flat[("params", "backbone", *unit, "bn", "bias")] = beta
        flat[("batch_stats", "backbone", *unit, "bn", "mean")] = gamma * mean
        flat[("batch_stats", "backbone", *unit, "bn", "var")] = var
    fc_weight, fc_bias = take("fc.weight"), take("fc.bias")
    if fc_weight is not None:
        flat[("params", "head", "Logits", "kernel")] = fc_weight.T[None, None, None]
    if fc_bias is not None:
        flat[("params", "head", "Logits", "bias")] = fc_bias
    variables_lib.check_all_used(
        missing,
        remaining,
        noun="tensors",
        architecture="GoogLeNet",
        what_it_is="a torchvision GoogLeNet state dict",
        what_to_pass=f"pass the .pth of torchvision.models.googlenet (e.g. {DOWNLOAD_URL})",
    )
    return {p: v.astype(np.float32) for p, v in flat.items()}, skipped


def load_i2d(path: str | os.PathLike) -> tuple[dict, int, list[str]]:
    """i2d variables from a GoogLeNet .pth, its class count and the skipped names."""
    from video_s3d.interop import slim_inception

    flat, skipped = convert(torch_pickle.load_state_dict(path))
    num_classes = int(flat[("params", "head", "Logits", "bias")].shape[0])
    return (
        slim_inception.i2d_variables(
            flat, num_classes, f"torchvision GoogLeNet ({os.fspath(path)})"
        ),
        num_classes,
        skipped,
    )
