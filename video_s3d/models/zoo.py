"""Named models of the paper as specs, and the registry (`names`, `get_spec`, `create`).

Base models (TF-Slim layout unless said otherwise; every Inception conv is 3x3 spatial):

  i2d              every conv 2D; Conv_1a is 1x7x7 with stride (2,2,2), i.e. it also
                   keeps every other frame.
  i3d              every conv full 3D: Conv_1a 7x7x7, the rest 3x3x3.
  s3d              Conv_1a full 3x7x7 (TF-Slim: "separable is slow in the first layer"),
                   every other 3x3x3 conv separable (1x3x3 then 3x1x1).
  s3dg             s3d + self-gating after Conv_2c and on every Inception branch (37 gates).
  s3d_torchvision  torchvision's S3D: separable stem 1x7x7 s(1,2,2) then 7x1x1 s(2,1,1),
                   every conv conv+BN+ReLU (temporal half too), affine BN, PyTorch padding.

Sweeps. The cut index k (0..10) counts the layers of `LAYER_NAMES` =
(Conv_2c, Mixed_3b, Mixed_3c, Mixed_4b, Mixed_4c, Mixed_4d, Mixed_4e, Mixed_4f,
Mixed_5b, Mixed_5c) that lie below the cut; the stem always has Conv_2c's kind.

  top_heavy_{i3d,s3d}_k     LAYER_NAMES[:k] (and the stem if k >= 1) are 2D, the rest
                            3D (i3d: 3x3x3, stem 7x7x7) or separable (s3d: as in s3d).
                            k=0 is i3d / s3d, k=10 is i2d.
  bottom_heavy_{i3d,s3d}_k  LAYER_NAMES[:k] (and the stem if k >= 1) are 3D / separable,
                            the rest 2D. k=0 is i2d, k=10 is i3d / s3d.

  So e.g. top_heavy_i3d_3 is 2D up to Mixed_3c and 3D from Mixed_4b on (3D only after
  MaxPool_4a), and bottom_heavy_i3d_3 is its mirror. `get_spec(name).describe()` lists
  each layer's kind.

I2D and time reversal (eval mode). Every I2D op is per-frame except Conv_1a's temporal
stride 2, MaxPool_4a (3 frames, stride 2), MaxPool_5a (2, stride 2), the Inception B3
3x3x3 max-pools, and the head's 2-frame average and mean over time. The stride-1 ops are
mirror-symmetric, so they commute with reversing the frames; a strided op commutes only
when its sampling grid is mirror-symmetric: Conv_1a iff T is odd, MaxPool_4a iff its
input length is odd, MaxPool_5a iff its input length is even. Hence reversing a clip
reverses the endpoints Conv_1a..Mixed_3c iff T is odd, also MaxPool_4a..Mixed_4f iff
T = 1 (mod 4), and all endpoints, PreLogits and the logits unchanged, iff T = 5 (mod 8)
(5, 13, 21, ... 61). For even T (e.g. 64) the stem samples the other half of the frames,
so nothing is exactly invariant; the logits differ only as much as those frames do.

Every name has a `tiny_` twin: width multiplier 1/8 with at least 8 channels per conv,
for tests and CPU demos.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from video_s3d.errors import UserError
from video_s3d.models.inception import VideoInception
from video_s3d.models.spec import LAYER_NAMES, TWO_D, LayerSpec, NetworkSpec

TINY_PREFIX = "tiny_"
TINY_WIDTH = 1 / 8
TINY_MIN_CHANNELS = 8
SWEEP_CUTS = tuple(range(len(LAYER_NAMES) + 1))

_I3D_STEM = LayerSpec("3d", 7)
_I3D_LAYER = LayerSpec("3d", 3)
_S3D_STEM = LayerSpec("3d", 3)
_S3D_LAYER = LayerSpec("separable", 3)
_N = len(LAYER_NAMES)


def _uniform(stem: LayerSpec, layer: LayerSpec, **kwargs) -> NetworkSpec:
    return NetworkSpec(stem=stem, layers=(layer,) * _N, **kwargs)


def _cut(k: int, below: tuple[LayerSpec, LayerSpec], above: tuple[LayerSpec, LayerSpec]):
    """Spec with LAYER_NAMES[:k] of kind `below` and the rest `above`; each pair is
    (stem spec, layer spec) and the stem goes with Conv_2c."""
    layers = tuple(below[1] if i < k else above[1] for i in range(_N))
    stem = below[0] if k >= 1 else above[0]
    return NetworkSpec(stem=stem, layers=layers)


_BASE_NAMES = ("i2d", "i3d", "s3d", "s3dg", "s3d_torchvision")


def _base_specs() -> dict[str, NetworkSpec]:
    gated = LayerSpec("separable", 3, gating=True)
    specs = {
        "i2d": _uniform(TWO_D, TWO_D),
        "i3d": _uniform(_I3D_STEM, _I3D_LAYER),
        "s3d": _uniform(_S3D_STEM, _S3D_LAYER),
        "s3dg": _uniform(_S3D_STEM, gated),
        "s3d_torchvision": _uniform(
            LayerSpec("separable", 7), _S3D_LAYER, convention="torchvision", padding="symmetric"
        ),
    }
    two_d = (TWO_D, TWO_D)
    for family, three_d in (("i3d", (_I3D_STEM, _I3D_LAYER)), ("s3d", (_S3D_STEM, _S3D_LAYER))):
        for k in SWEEP_CUTS:
            specs[f"top_heavy_{family}_{k}"] = _cut(k, below=two_d, above=three_d)
        for k in SWEEP_CUTS:
            specs[f"bottom_heavy_{family}_{k}"] = _cut(k, below=three_d, above=two_d)
    return specs


_BASE = _base_specs()
_SPECS = {
    **_BASE,
    **{
        TINY_PREFIX + name: spec.replace(
            width_multiplier=TINY_WIDTH, min_channels=TINY_MIN_CHANNELS
        )
        for name, spec in _BASE.items()
    },
}

OVERRIDES = (
    "dtype",
    "bn_axis_name",
    "dropout_rate",
    "remat",
    "width_multiplier",
    "min_channels",
    "temporal_padding",
    "kernel_init",
)
_SPEC_OVERRIDES = (
    "dropout_rate",
    "width_multiplier",
    "min_channels",
    "temporal_padding",
    "kernel_init",
)
_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def names(include_tiny: bool = True) -> list[str]:
    """Every registered model name (base models, sweeps, then their tiny twins)."""
    return [n for n in _SPECS if include_tiny or not n.startswith(TINY_PREFIX)]


def get_spec(name: str) -> NetworkSpec:
    if name not in _SPECS:
        raise UserError(
            f"Unknown model {name!r}; valid names: {', '.join(_BASE_NAMES)}, "
            f"top_heavy_{{i3d,s3d}}_K and bottom_heavy_{{i3d,s3d}}_K for K in 0..{len(LAYER_NAMES)}, "
            f"each also as {TINY_PREFIX}<name>."
        )
    return _SPECS[name]


def _compute_dtype(dtype: Any) -> Any:
    key = dtype if isinstance(dtype, str) else jnp.dtype(dtype).name
    if key not in _DTYPES:
        raise UserError(f"Unsupported compute dtype {dtype!r}; use one of {list(_DTYPES)}.")
    return _DTYPES[key]


def create_from_spec(spec: NetworkSpec, num_classes: int, **overrides) -> VideoInception:
    """A `VideoInception` for `spec`; see `create` for the overrides."""
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise UserError(f"Unknown model override(s) {unknown}; valid: {', '.join(OVERRIDES)}.")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise UserError(f"num_classes must be a positive int, got {num_classes!r}.")
    spec_changes = {k: overrides[k] for k in _SPEC_OVERRIDES if k in overrides}
    spec = spec.replace(**spec_changes)  # NetworkSpec validates the values.
    bn_axis_name = overrides.get("bn_axis_name")
    if bn_axis_name is not None and not isinstance(bn_axis_name, str):
        raise UserError(
            f"bn_axis_name must be a mesh axis name (str) or None, got {bn_axis_name!r}."
        )
    return VideoInception(
        spec=spec,
        num_classes=num_classes,
        dtype=_compute_dtype(overrides.get("dtype", "float32")),
        bn_axis_name=bn_axis_name,
        remat=bool(overrides.get("remat", False)),
    )


def create(name: str, num_classes: int, **overrides) -> VideoInception:
    """The flax module for model `name` with `num_classes` outputs.

    Overrides: dtype (compute dtype: 'float32' | 'bfloat16' | 'float16'; params stay
    float32), bn_axis_name (mesh axis for cross-device BatchNorm inside shard_map),
    dropout_rate, remat (rematerialise each Inception block in the backward pass),
    width_multiplier, min_channels, temporal_padding ('zero', the reference, or 'edge':
    padded frames copy the clip's end frames, which makes 2D -> 3D inflation exact; see
    models/inflate.py), kernel_init ('tf_slim', the reference's stddev 0.01; 'he': fan-in
    scaled, for training from scratch; 'he_centre': He at each 3D kernel's centre tap only;
    layers.KERNEL_INITS).
    """
    return create_from_spec(get_spec(name), num_classes, **overrides)
