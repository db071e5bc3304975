"""Inception block, backbone and classifier head, driven by a `NetworkSpec`.

`VideoInception` is the one model class of the zoo; every named model is a spec.
Variables: {'params': {'backbone': {'Conv_1a', ..., 'Mixed_5c'}, 'head': {'Logits'}},
'batch_stats': {...}}.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from video_s3d.errors import UserError
from video_s3d.models.layers import Conv3D, ConvUnit, max_pool3d, pooled_size
from video_s3d.models.spec import INCEPTION_CHANNELS, LAYER_NAMES, LayerSpec, NetworkSpec

# (name, window, strides) of the backbone's max-pools, applied before the layer named.
POOLS = {
    "Conv_2b": ("MaxPool_2a", (1, 3, 3), (1, 2, 2)),
    "Mixed_3b": ("MaxPool_3a", (1, 3, 3), (1, 2, 2)),
    "Mixed_4b": ("MaxPool_4a", (3, 3, 3), (2, 2, 2)),
    "Mixed_5b": ("MaxPool_5a", (2, 2, 2), (2, 2, 2)),
}
HEAD_POOL = (2, 7, 7)


class InceptionBlock(nn.Module):
    """Four branches concatenated on channels:
    B0 1x1x1; B1 1x1x1 -> kxk (layer kind); B2 1x1x1 -> kxk (layer kind);
    B3 max-pool 3x3x3 stride 1 -> 1x1x1 (the pool is 3x3x3 even in 2D blocks, as in
    every reference). With gating, each branch output is gated before the concat.
    """

    channels: tuple[int, int, int, int, int, int]
    layer: LayerSpec
    convention: str = "tf_slim"
    padding: str = "same"
    dtype: Any = jnp.float32
    bn_axis_name: str | None = None
    temporal_padding: str = "zero"
    kernel_init: str = "tf_slim"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        b0, b1_reduce, b1, b2_reduce, b2, b3 = self.channels
        unit = functools.partial(
            ConvUnit,
            gating=self.layer.gating,
            convention=self.convention,
            padding=self.padding,
            dtype=self.dtype,
            bn_axis_name=self.bn_axis_name,
            temporal_padding=self.temporal_padding,
            kernel_init=self.kernel_init,
        )
        pointwise = functools.partial(unit, kernel_size=1)
        spatiotemporal = functools.partial(
            unit, kernel_size=3, temporal_kernel=self.layer.temporal_kernel, kind=self.layer.kind
        )
        branch_0 = pointwise(b0, name="Branch_0_Conv_0a_1x1")(x, train)
        branch_1 = pointwise(b1_reduce, gating=False, name="Branch_1_Conv_0a_1x1")(x, train)
        branch_1 = spatiotemporal(b1, name="Branch_1_Conv_0b_3x3")(branch_1, train)
        branch_2 = pointwise(b2_reduce, gating=False, name="Branch_2_Conv_0a_1x1")(x, train)
        branch_2 = spatiotemporal(b2, name="Branch_2_Conv_0b_3x3")(branch_2, train)
        branch_3 = max_pool3d(x, (3, 3, 3), (1, 1, 1), self.padding)
        branch_3 = pointwise(b3, name="Branch_3_Conv_0b_1x1")(branch_3, train)
        return jnp.concatenate([branch_0, branch_1, branch_2, branch_3], axis=-1)


def minimum_input(spec: NetworkSpec) -> tuple[int, int]:
    """Smallest (frames, pixels) for which no layer's output is empty."""

    def smallest(axis: int) -> int:
        size = 1
        while True:
            # Conv_1a (odd window, stride 2) shrinks like a pool; the other convs keep size.
            reduced = pooled_size(size, 7, 2, spec.padding)
            for _, window, strides in POOLS.values():
                reduced = pooled_size(reduced, window[axis], strides[axis], spec.padding)
            if reduced >= 1:
                return size
            size += 1

    return smallest(0), smallest(1)


class Backbone(nn.Module):
    """Conv_1a ... Mixed_5c; returns every endpoint by layer name.

    `last_layer` stops the network early (a detector that reads Mixed_3c builds, runs and
    keeps BatchNorm statistics for nothing above it)."""

    spec: NetworkSpec
    dtype: Any = jnp.float32
    bn_axis_name: str | None = None
    remat: bool = False
    last_layer: str = LAYER_NAMES[-1]

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
        spec = self.spec
        if x.ndim != 5:
            raise UserError(f"Expected a video batch [B, T, H, W, C], got shape {x.shape}.")
        min_t, min_s = minimum_input(spec)
        if x.shape[1] < min_t or min(x.shape[2:4]) < min_s:
            raise UserError(
                f"Input {x.shape[1]}x{x.shape[2]}x{x.shape[3]} (frames x height x width) is too "
                f"small for this model; use at least {min_t}x{min_s}x{min_s}."
            )
        unit = functools.partial(
            ConvUnit,
            convention=spec.convention,
            padding=spec.padding,
            dtype=self.dtype,
            bn_axis_name=self.bn_axis_name,
            temporal_padding=spec.temporal_padding,
            kernel_init=spec.kernel_init,
        )
        block_cls = nn.remat(InceptionBlock, static_argnums=(2,)) if self.remat else InceptionBlock
        endpoints = {}

        def pool_before(name: str, x: jax.Array) -> jax.Array:
            if name in POOLS:
                pool_name, window, strides = POOLS[name]
                x = max_pool3d(x, window, strides, spec.padding)
                endpoints[pool_name] = x
            return x

        stem = spec.stem
        x = unit(spec.channels(64), 7, stem.temporal_kernel, (2, 2, 2), stem.kind, name="Conv_1a")(
            x.astype(self.dtype), train
        )
        endpoints["Conv_1a"] = x
        x = pool_before("Conv_2b", x)
        x = unit(spec.channels(64), 1, name="Conv_2b")(x, train)
        endpoints["Conv_2b"] = x
        for name, layer in zip(LAYER_NAMES, spec.layers):
            x = pool_before(name, x)
            if name == "Conv_2c":
                x = unit(
                    spec.channels(192),
                    3,
                    layer.temporal_kernel,
                    kind=layer.kind,
                    gating=layer.gating,
                    name=name,
                )(x, train)
            else:
                channels = tuple(spec.channels(c) for c in INCEPTION_CHANNELS[name])
                x = block_cls(
                    channels,
                    layer,
                    spec.convention,
                    spec.padding,
                    self.dtype,
                    self.bn_axis_name,
                    spec.temporal_padding,
                    spec.kernel_init,
                    name=name,
                )(x, train)
            endpoints[name] = x
            if name == self.last_layer:
                break
        return endpoints


class ClassifierHead(nn.Module):
    """Avg-pool [2, 7, 7] stride 1 VALID (window clipped to the input), dropout, 1x1x1 conv
    with bias, mean over time and space. Also returns the pre-logit features: the pooled
    map averaged over time and space, [B, C] float32 (the logits are an affine map of it)."""

    num_classes: int
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> tuple[jax.Array, jax.Array]:
        window = tuple(min(w, s) for w, s in zip(HEAD_POOL, x.shape[1:4]))
        x = nn.avg_pool(x, window, strides=(1, 1, 1), padding="VALID")
        pre_logits = jnp.mean(x.astype(jnp.float32), axis=(1, 2, 3))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = Conv3D(self.num_classes, (1, 1, 1), use_bias=True, dtype=self.dtype, name="Logits")(x)
        return jnp.mean(x.astype(jnp.float32), axis=(1, 2, 3)), pre_logits


class VideoInception(nn.Module):
    """Backbone + head. Input float [B, T, H, W, 3] in [-1, 1]; logits [B, classes] float32.

    Call with train=True and mutable=['batch_stats'] (and a 'dropout' rng) to train;
    return_endpoints=True also returns {layer name: activation, ..., 'PreLogits': [B, C]}.
    """

    spec: NetworkSpec
    num_classes: int
    dtype: Any = jnp.float32
    bn_axis_name: str | None = None
    remat: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, return_endpoints: bool = False):
        endpoints = Backbone(self.spec, self.dtype, self.bn_axis_name, self.remat, name="backbone")(
            x, train
        )
        logits, pre_logits = ClassifierHead(
            self.num_classes, self.spec.dropout_rate, self.dtype, name="head"
        )(endpoints["Mixed_5c"], train)
        if return_endpoints:
            return logits, {**endpoints, "PreLogits": pre_logits}
        return logits
