"""2D -> 3D inflation: variable mapping, and the boring-video property: exact for every
inflated model with edge temporal padding, and where exactly it holds with zero padding."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from models_testing import jit, lively

from video_s3d import errors, models
from video_s3d.models import inflate
from video_s3d.models.inception import POOLS
from video_s3d.models.layers import padding_pairs
from video_s3d.models.spec import LAYER_NAMES


def _abstract_variables(model, shape):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


def exact_frames(spec, frames: int) -> dict[str, tuple[int, int]]:
    """Per endpoint, the first and last frame whose value on a boring video must equal the
    2D network's (hi < lo: none) right after inflation: frames whose temporal receptive
    field avoids the zero padding at the clip's ends, until a self-gate averages a border
    frame into all. A full kt-tap conv reads all its taps; a separable conv's temporal
    half starts as the identity, so it reads only its centre tap and never padding."""
    exact = {}
    lo, hi, length = 0, frames - 1, frames

    def window_op(lo, hi, length, window, stride, read_taps, zero_padded):
        ((p_lo, p_hi),) = padding_pairs([length], [window], [stride], spec.padding)
        count = (length + p_lo + p_hi - window) // stride + 1
        good = []
        for i in range(count):
            taps = [i * stride - p_lo + j for j in read_taps]
            # A max-pool's -inf padding never wins; a conv's zero padding changes the sum.
            inside = [t for t in taps if 0 <= t < length]
            if all(lo <= t <= hi for t in inside) and (not zero_padded or len(inside) == len(taps)):
                good.append(i)
        return (good[0], good[-1], count) if good else (1, 0, count)

    def conv(lo, hi, length, layer, stride=1):
        kt = 1 if layer.kind == "2d" else layer.temporal_kernel
        read = [kt // 2] if layer.kind == "separable" else range(kt)
        return window_op(lo, hi, length, kt, stride, read, True)

    def pool(lo, hi, length, window, stride):
        return window_op(lo, hi, length, window, stride, range(window), False)

    lo, hi, length = conv(lo, hi, length, spec.stem, 2)
    exact.update(Conv_1a=(lo, hi), MaxPool_2a=(lo, hi), Conv_2b=(lo, hi))
    for name, layer in zip(LAYER_NAMES, spec.layers):
        if name in POOLS:
            pool_name, window, stride = POOLS[name]
            lo, hi, length = pool(lo, hi, length, window[0], stride[0])
            exact[pool_name] = (lo, hi)
        if name == "Conv_2c":
            lo, hi, length = conv(lo, hi, length, layer)
        else:  # branches: kt conv, and 3x3x3 max-pool; the block is exact where both are
            a, b = conv(lo, hi, length, layer), pool(lo, hi, length, 3, 1)
            lo, hi = max(a[0], b[0]), min(a[1], b[1])
        if layer.gating and (lo > 0 or hi < length - 1):
            lo, hi = 1, 0  # the gate's mean over time now includes a border frame
        exact[name] = (lo, hi)
    exact["PreLogits"] = (0, 0) if (lo, hi) == (0, length - 1) else (1, 0)
    return exact


def _boring_comparison(name: str, frames: int, size: int, keep, paddings=("zero",)):
    """Endpoints of `name` inflated from its lively 2D twin, on a video repeating one frame,
    beside the 2D twin's endpoints on that frame: (2D, {temporal padding: 3D})."""
    spec = models.get_spec(name)
    targets = {p: models.create(name, 5, temporal_padding=p) for p in paddings}
    source = models.create_from_spec(spec.as_2d(), 5)
    source_frames = max(1, models.minimum_input(spec)[0])
    source_vars = lively(_abstract_variables(source, (1, source_frames, size, size, 3)))
    # The temporal padding fill adds no variables: one inflated tree serves every target.
    target_vars = inflate.inflate_variables(
        source_vars, _abstract_variables(targets[paddings[0]], (1, frames, size, size, 3))
    )
    image = jax.random.uniform(jax.random.key(1), (1, 1, size, size, 3), minval=-1, maxval=1)

    @jit
    def run(source_vars, target_vars, image):
        _, two_d = source.apply(
            source_vars, jnp.repeat(image, source_frames, 1), return_endpoints=True
        )
        three_d = {}
        for padding, target in targets.items():
            _, ends = target.apply(target_vars, jnp.repeat(image, frames, 1), return_endpoints=True)
            three_d[padding] = {k: ends[k] for k in keep}
        return {k: two_d[k] for k in keep}, three_d

    return run(source_vars, target_vars, image)


def _relative_gap(got, reference) -> float:
    return float(jnp.abs(got - reference).max()) / float(jnp.abs(reference).max())


@pytest.mark.parametrize("name", ["tiny_i3d", "tiny_s3d", "tiny_s3dg", "tiny_s3d_torchvision"])
def test_boring_video_gives_the_2d_features_exactly_with_edge_padding(name):
    """temporal_padding='edge': a clip of one repeated frame stays constant in time
    through every layer, so every endpoint at every frame, and the pre-logit features,
    equal the 2D network's on that frame. Under the reference zero padding the same
    holds for s3d_torchvision, whose identity temporal halves never read padding; i3d,
    s3d, s3dg's repeated 3D kernels read zeros at the clip's ends (two tests below)."""
    frames, size = 9, 17  # odd: SAME pads unevenly; 17: s3d_torchvision's minimum size
    keep = models.ENDPOINT_NAMES
    paddings = ("edge", "zero") if name == "tiny_s3d_torchvision" else ("edge",)
    two_d, three_d = _boring_comparison(name, frames, size, keep, paddings=paddings)
    for padding in paddings:
        for layer in keep:
            reference = two_d[layer][:1] if layer == "PreLogits" else two_d[layer][0, 0]
            scale = float(jnp.abs(reference).max())
            assert scale > 0.1, layer  # lively weights: a real comparison, not 0 == 0
            gap = float(jnp.abs(three_d[padding][layer][0] - reference).max())
            assert gap <= 1e-5 * scale, (padding, layer, gap, scale)


@pytest.mark.slow
def test_boring_video_with_zero_padding_matches_2d_network_where_padding_is_not_read():
    """i3d under zero padding: equal on the frames whose temporal receptive field stays
    inside the clip; pre-logit features, a mean over all frames, never are."""
    name, frames, size = "tiny_i3d", 128, 24  # long enough for Mixed_5c to have such frames
    exact = exact_frames(models.get_spec(name), frames)
    assert exact["Mixed_5c"][1] >= exact["Mixed_5c"][0] and exact["PreLogits"] == (1, 0)
    two_d, three_d = _boring_comparison(name, frames, size, models.ENDPOINT_NAMES)
    three_d = three_d["zero"]
    for layer, (lo, hi) in exact.items():
        if layer == "PreLogits":
            continue
        reference = two_d[layer][0, 0]  # every frame of the 2D network's output is the same
        scale = float(jnp.abs(reference).max())
        assert scale > 0.1, layer
        gap = float(jnp.abs(three_d[layer][0, lo : hi + 1] - reference).max())
        assert gap <= 1e-5 * scale, (layer, gap, scale)
        if lo > 0:  # the border frames do read padding, and it shows
            assert float(jnp.abs(three_d[layer][0, 0] - reference).max()) > 1e-5 * scale, layer
    assert _relative_gap(three_d["PreLogits"], two_d["PreLogits"]) > 1e-3


def test_boring_video_with_gating_is_exact_only_before_the_first_gate():
    keep = ["Conv_1a", "Conv_2b", "Conv_2c"]
    two_d, three_d = _boring_comparison("tiny_s3dg", 16, 16, keep)
    three_d = three_d["zero"]
    exact = exact_frames(models.get_spec("tiny_s3dg"), 16)
    assert exact["Conv_2c"] == (1, 0)
    for layer in ("Conv_1a", "Conv_2b"):
        lo, hi = exact[layer]
        np.testing.assert_allclose(
            three_d[layer][0, lo : hi + 1],
            np.broadcast_to(two_d[layer][0, 0], three_d[layer][0, lo : hi + 1].shape),
            atol=1e-5,
        )
    # The first gate averages frames that read padding into every frame.
    assert float(jnp.abs(three_d["Conv_2c"][0, 4] - two_d["Conv_2c"][0, 0]).max()) > 1e-4


def test_inflated_variables_follow_the_rules():
    source_model = models.create("tiny_i2d", 7)
    source = lively(_abstract_variables(source_model, (1, 1, 16, 16, 3)))
    for name in ("tiny_i3d", "tiny_s3d", "tiny_s3d_torchvision", "tiny_s3dg"):
        target_model = models.create(name, 9)  # another class count: its classifier stays
        spec = models.get_spec(name)
        two_d = (
            source
            if name != "tiny_s3d_torchvision" and name != "tiny_s3dg"
            else lively(
                _abstract_variables(models.create_from_spec(spec.as_2d(), 7), (1, 5, 17, 17, 3))
            )
        )
        target = lively(_abstract_variables(target_model, (1, 8, 17, 17, 3)), seed=1)
        result = inflate.inflate_variables(two_d, target)
        assert jax.tree.map(jnp.shape, result) == jax.tree.map(jnp.shape, target)
        params, src = result["params"]["backbone"], two_d["params"]["backbone"]
        np.testing.assert_array_equal(
            result["params"]["head"]["Logits"]["kernel"],
            target["params"]["head"]["Logits"]["kernel"],
        )
        stem = params["Conv_1a"]["conv"]["kernel"]
        if spec.stem.kind == "3d":  # repeated over time, divided by kt: sums to the 2D kernel
            assert stem.shape[0] == spec.stem.temporal_kernel > 1
            np.testing.assert_allclose(stem.sum(0), src["Conv_1a"]["conv"]["kernel"][0], atol=1e-6)
        else:
            np.testing.assert_array_equal(stem, src["Conv_1a"]["conv"]["kernel"])
        unit = params["Mixed_4b"]["Branch_1_Conv_0b_3x3"]
        if "temporal_conv" in unit:
            kernel = unit["temporal_conv"]["kernel"]
            centre = kernel.shape[0] // 2
            np.testing.assert_array_equal(kernel[centre, 0, 0], np.eye(kernel.shape[-1]))
            assert float(jnp.abs(kernel).sum()) == kernel.shape[-1]
            np.testing.assert_array_equal(
                unit["conv"]["kernel"], src["Mixed_4b"]["Branch_1_Conv_0b_3x3"]["conv"]["kernel"]
            )
        if spec.convention == "torchvision":
            stats = result["batch_stats"]["backbone"]["Mixed_4b"]["Branch_1_Conv_0b_3x3"][
                "temporal_bn"
            ]
            # BN divides by sqrt(var + eps) = 1 exactly.
            np.testing.assert_allclose(stats["var"] + 1e-3, 1.0, rtol=0, atol=1e-7)
            np.testing.assert_array_equal(stats["mean"], 0.0)


def test_inflation_rejects_mismatched_networks():
    i2d = lively(_abstract_variables(models.create("tiny_i2d", 5), (1, 1, 16, 16, 3)))
    wide_i3d = _abstract_variables(models.create("i3d", 5), (1, 8, 32, 32, 3))
    with pytest.raises(errors.UserError, match="does not fit target shape.*same width multiplier"):
        inflate.inflate_variables(i2d, wide_i3d)
    torchvision = _abstract_variables(models.create("tiny_s3d_torchvision", 5), (1, 8, 32, 32, 3))
    with pytest.raises(errors.UserError, match="2D twin"):
        inflate.inflate_variables(i2d, torchvision)  # TF-Slim BN has no scale to copy
    gated_2d = lively(
        _abstract_variables(
            models.create_from_spec(models.get_spec("tiny_s3dg").as_2d(), 5), (1, 1, 16, 16, 3)
        )
    )
    with pytest.raises(errors.UserError, match="variables the target lacks"):
        inflate.inflate_variables(
            gated_2d, _abstract_variables(models.create("tiny_i3d", 5), (1, 8, 32, 32, 3))
        )
