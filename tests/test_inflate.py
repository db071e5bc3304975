"""2D -> 3D inflation: variable mapping, and the boring-video property where it is exact."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from video_s3d import models
from video_s3d.models import inflate
from video_s3d.models.inception import POOLS
from video_s3d.models.layers import padding_pairs
from video_s3d.models.spec import LAYER_NAMES

from models_testing import jit, lively


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
        (p_lo, p_hi), = padding_pairs([length], [window], [stride], spec.padding)
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


def _boring_comparison(name: str, frames: int, size: int, keep):
    """Endpoints of `name` inflated from its lively 2D twin, on a video repeating one frame,
    beside the 2D twin's endpoints on that frame."""
    spec = models.get_spec(name)
    target = models.create(name, 5)
    source = models.create_from_spec(spec.as_2d(), 5)
    source_frames = max(1, models.minimum_input(spec)[0])
    source_vars = lively(_abstract_variables(source, (1, source_frames, size, size, 3)))
    target_vars = inflate.inflate_variables(source_vars, _abstract_variables(target, (1, frames, size, size, 3)))
    image = jax.random.uniform(jax.random.key(1), (1, 1, size, size, 3), minval=-1, maxval=1)

    @jit
    def run(source_vars, target_vars, image):
        _, two_d = source.apply(source_vars, jnp.repeat(image, source_frames, 1), return_endpoints=True)
        _, three_d = target.apply(target_vars, jnp.repeat(image, frames, 1), return_endpoints=True)
        return {k: two_d[k] for k in keep}, {k: three_d[k] for k in keep}

    return run(source_vars, target_vars, image)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny_i3d", "tiny_s3d_torchvision"])
def test_boring_video_matches_2d_network_where_padding_is_not_read(name):
    """i3d: equal away from the clip's ends (the repeated 3D kernels read zero padding
    there), so pre-logit features, a mean over all frames, are close but not equal.
    s3d_torchvision: every temporal conv starts as the identity, which never reads
    padding, so everything equals the 2D network, pre-logit features included."""
    frames, size = 128, 24  # long enough for i3d's Mixed_5c to have untouched frames
    exact = exact_frames(models.get_spec(name), frames)
    assert exact["Mixed_5c"][1] >= exact["Mixed_5c"][0]
    two_d, three_d = _boring_comparison(name, frames, size, models.ENDPOINT_NAMES)
    for layer, (lo, hi) in exact.items():
        if layer == "PreLogits":
            continue
        reference = two_d[layer][0, 0]  # every frame of the 2D network's output is the same
        scale = float(jnp.abs(reference).max())
        assert scale > 0.1, layer  # lively weights: a real comparison, not 0 == 0
        gap = float(jnp.abs(three_d[layer][0, lo:hi + 1] - reference).max())
        assert gap <= 1e-5 * scale, (layer, gap, scale)
    relative_gap = float(jnp.abs(three_d["PreLogits"] - two_d["PreLogits"]).max()) / float(
        jnp.abs(two_d["PreLogits"]).max())
    if name == "tiny_i3d":
        assert exact["PreLogits"] == (1, 0) and relative_gap > 1e-3
    else:
        assert exact["PreLogits"] == (0, 0) and exact["Conv_1a"] == (0, frames // 2 - 1)
        assert relative_gap <= 1e-5


def test_boring_video_with_gating_is_exact_only_before_the_first_gate():
    keep = ["Conv_1a", "Conv_2b", "Conv_2c"]
    two_d, three_d = _boring_comparison("tiny_s3dg", 16, 16, keep)
    exact = exact_frames(models.get_spec("tiny_s3dg"), 16)
    assert exact["Conv_2c"] == (1, 0)
    for layer in ("Conv_1a", "Conv_2b"):
        lo, hi = exact[layer]
        np.testing.assert_allclose(three_d[layer][0, lo:hi + 1], np.broadcast_to(
            two_d[layer][0, 0], three_d[layer][0, lo:hi + 1].shape), atol=1e-5)
    assert float(jnp.abs(three_d["Conv_2c"][0, 4] - two_d["Conv_2c"][0, 0]).max()) > 1e-4


def test_inflated_variables_follow_the_rules():
    source_model = models.create("tiny_i2d", 7)
    source = lively(_abstract_variables(source_model, (1, 1, 16, 16, 3)))
    for name in ("tiny_i3d", "tiny_s3d", "tiny_s3d_torchvision", "tiny_s3dg"):
        target_model = models.create(name, 9)  # another class count: its classifier stays
        spec = models.get_spec(name)
        two_d = source if name != "tiny_s3d_torchvision" and name != "tiny_s3dg" else lively(
            _abstract_variables(models.create_from_spec(spec.as_2d(), 7), (1, 5, 17, 17, 3)))
        target = lively(_abstract_variables(target_model, (1, 8, 17, 17, 3)), seed=1)
        result = inflate.inflate_variables(two_d, target)
        assert jax.tree.map(jnp.shape, result) == jax.tree.map(jnp.shape, target)
        params, src = result["params"]["backbone"], two_d["params"]["backbone"]
        np.testing.assert_array_equal(result["params"]["head"]["Logits"]["kernel"],
                                      target["params"]["head"]["Logits"]["kernel"])
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
            np.testing.assert_array_equal(unit["conv"]["kernel"], src["Mixed_4b"]["Branch_1_Conv_0b_3x3"]["conv"]["kernel"])
        if spec.convention == "torchvision":
            stats = result["batch_stats"]["backbone"]["Mixed_4b"]["Branch_1_Conv_0b_3x3"]["temporal_bn"]
            # BN divides by sqrt(var + eps) = 1 exactly.
            np.testing.assert_allclose(stats["var"] + 1e-3, 1.0, rtol=0, atol=1e-7)
            np.testing.assert_array_equal(stats["mean"], 0.0)


def test_inflation_rejects_mismatched_networks():
    i2d = lively(_abstract_variables(models.create("tiny_i2d", 5), (1, 1, 16, 16, 3)))
    wide_i3d = _abstract_variables(models.create("i3d", 5), (1, 8, 32, 32, 3))
    with pytest.raises(ValueError, match="does not fit target shape.*same width multiplier"):
        inflate.inflate_variables(i2d, wide_i3d)
    torchvision = _abstract_variables(models.create("tiny_s3d_torchvision", 5), (1, 8, 32, 32, 3))
    with pytest.raises(ValueError, match="2D twin"):
        inflate.inflate_variables(i2d, torchvision)  # TF-Slim BN has no scale to copy
    gated_2d = lively(_abstract_variables(
        models.create_from_spec(models.get_spec("tiny_s3dg").as_2d(), 5), (1, 1, 16, 16, 3)))
    with pytest.raises(ValueError, match="variables the target lacks"):
        inflate.inflate_variables(gated_2d, _abstract_variables(models.create("tiny_i3d", 5), (1, 8, 32, 32, 3)))
