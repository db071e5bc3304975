"""Flow networks: every zoo model takes a 2-channel (x, y) input; cost and inflation follow."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from models_testing import jit, lively

from video_s3d import cost, models
from video_s3d.models import inflate

# One of each stem / layer kind: full 3D, 2D, separable (TF-Slim and torchvision), gated, mixed.
FLOW_MODELS = (
    "tiny_i2d",
    "tiny_i3d",
    "tiny_s3d",
    "tiny_s3dg",
    "tiny_s3d_torchvision",
    "tiny_bottom_heavy_i3d_3",
    "tiny_top_heavy_s3d_4",
)


def _abstract_variables(model, shape):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


@pytest.mark.parametrize("name", FLOW_MODELS)
def test_flow_input_sets_the_stem_channels_and_the_cost(name):
    variables = _abstract_variables(models.create(name, 5), (1, 8, 32, 32, 2))
    assert variables["params"]["backbone"]["Conv_1a"]["conv"]["kernel"].shape[-2] == 2
    spec = models.get_spec(name)
    rgb = cost.analytic_macs(spec, 8, 32, 5)
    flow = cost.analytic_macs(spec, 8, 32, 5, in_channels=2)
    assert flow["Conv_1a"] * 3 == rgb["Conv_1a"] * 2 or (  # separable: temporal half unchanged
        spec.stem.kind == "separable" and flow["Conv_1a"] < rgb["Conv_1a"]
    )
    assert {k: v for k, v in flow.items() if k != "Conv_1a"} == {
        k: v for k, v in rgb.items() if k != "Conv_1a"
    }


def test_flow_cost_counted_from_the_program_equals_the_per_layer_count():
    measured = cost.measure("tiny_s3dg", 8, 32, num_classes=5, in_channels=2)
    assert measured.gmacs == pytest.approx(
        cost.gmacs("tiny_s3dg", 8, 32, 5, in_channels=2), rel=1e-9
    )
    assert measured.params < cost.measure("tiny_s3dg", 8, 32, num_classes=5).params


@pytest.mark.parametrize("name", ["tiny_i3d", "tiny_s3d_torchvision"])
def test_flow_network_inflates_from_rgb_weights_by_averaging_the_stem(name):
    spec = models.get_spec(name)
    rgb_2d = lively(
        _abstract_variables(models.create_from_spec(spec.as_2d(), 5), (1, 5, 32, 32, 3))
    )
    flow_model = models.create(name, 5)
    target = lively(_abstract_variables(flow_model, (1, 8, 32, 32, 2)), seed=1)
    result = inflate.inflate_variables(rgb_2d, target)
    assert jax.tree.map(jnp.shape, result) == jax.tree.map(jnp.shape, target)
    source_stem = np.asarray(rgb_2d["params"]["backbone"]["Conv_1a"]["conv"]["kernel"])
    stem = np.asarray(result["params"]["backbone"]["Conv_1a"]["conv"]["kernel"])
    averaged = source_stem.mean(axis=-2, keepdims=True)  # [1, 7, 7, 1, C]
    if spec.stem.kind == "3d":  # then repeated over time and divided by kt, as for RGB
        averaged = np.repeat(averaged, stem.shape[0], axis=0) / stem.shape[0]
    np.testing.assert_allclose(stem, np.repeat(averaged, 2, axis=-2), rtol=1e-6, atol=1e-7)
    # Everything after the stem is inflated exactly as for an RGB network.
    rgb_result = inflate.inflate_variables(
        rgb_2d, _abstract_variables(models.create(name, 5), (1, 8, 32, 32, 3))
    )
    np.testing.assert_array_equal(
        result["params"]["backbone"]["Mixed_4b"]["Branch_0_Conv_0a_1x1"]["conv"]["kernel"],
        rgb_result["params"]["backbone"]["Mixed_4b"]["Branch_0_Conv_0a_1x1"]["conv"]["kernel"],
    )
    # A flow clip runs through it: finite logits for every clip.
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 8, 32, 32, 2)), jnp.float32)
    logits = jit(lambda v, x: flow_model.apply(v, x, train=False))(result, x)
    assert logits.shape == (2, 5) and bool(jnp.all(jnp.isfinite(logits)))
