"""Model zoo: registry, specs, endpoint shapes, a real training step, mixed precision,
remat, and exactly which I2D outputs ignore time order."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from models_testing import jit, lively

from video_s3d import cost, errors, models
from video_s3d.models import zoo
from video_s3d.models.spec import LAYER_NAMES, TWO_D, LayerSpec

RNGS = {"params": jax.random.key(0), "dropout": jax.random.key(1)}

# REFERENCE.md's layer table: [T, H, W, C] at input 64x224x224.
REFERENCE_SHAPES = {
    "Conv_1a": (32, 112, 112, 64),
    "MaxPool_2a": (32, 56, 56, 64),
    "Conv_2b": (32, 56, 56, 64),
    "Conv_2c": (32, 56, 56, 192),
    "MaxPool_3a": (32, 28, 28, 192),
    "Mixed_3b": (32, 28, 28, 256),
    "Mixed_3c": (32, 28, 28, 480),
    "MaxPool_4a": (16, 14, 14, 480),
    "Mixed_4b": (16, 14, 14, 512),
    "Mixed_4c": (16, 14, 14, 512),
    "Mixed_4d": (16, 14, 14, 512),
    "Mixed_4e": (16, 14, 14, 528),
    "Mixed_4f": (16, 14, 14, 832),
    "MaxPool_5a": (8, 7, 7, 832),
    "Mixed_5b": (8, 7, 7, 832),
    "Mixed_5c": (8, 7, 7, 1024),
    "PreLogits": (1024,),
}


def _abstract_init(model, shape):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    return jax.eval_shape(lambda x: model.init(RNGS, x, train=False), x), x


# ---------------------------------------------------------------- registry and specs


def test_registry_names_and_errors():
    names = models.names()
    base = models.names(include_tiny=False)
    for name in (
        "i2d",
        "i3d",
        "s3d",
        "s3dg",
        "s3d_torchvision",
        "top_heavy_i3d_5",
        "bottom_heavy_s3d_10",
    ):
        assert name in base and "tiny_" + name in names
    assert len(names) == 2 * len(base) == 2 * (5 + 4 * 11)
    with pytest.raises(ValueError, match="Unknown model 'i4d'.*s3dg"):
        models.create("i4d", 10)
    with pytest.raises(ValueError, match="Unknown model override.*valid: dtype"):
        models.create("s3dg", 10, depth=3)
    with pytest.raises(ValueError, match="compute dtype"):
        models.create("s3dg", 10, dtype="int8")
    with pytest.raises(ValueError, match="width_multiplier"):
        models.create("s3dg", 10, width_multiplier=0)
    with pytest.raises(ValueError, match="dropout_rate"):
        models.create("s3dg", 10, dropout_rate=1.5)
    with pytest.raises(ValueError, match="temporal_padding 'wrap'; use one of.*edge"):
        models.create("s3dg", 10, temporal_padding="wrap")
    assert models.create("s3dg", 10, temporal_padding="edge").spec.temporal_padding == "edge"
    # Every named model keeps the references' zero padding unless told otherwise.
    assert {models.get_spec(n).temporal_padding for n in names} == {"zero"}
    with pytest.raises(ValueError, match="num_classes"):
        models.create("s3dg", 0)
    with pytest.raises(ValueError, match="2d' layer has temporal kernel 1"):
        LayerSpec("2d", 3)


def test_kernel_init_choices():
    """'tf_slim' keeps the reference's stddev 0.01 for every conv; 'he' scales each kernel to
    std sqrt(2 / fan_in) (flax's truncated variance scaling corrects for the truncation); the
    TF-Slim temporal half stays identity-initialised under both."""
    with pytest.raises(ValueError, match="kernel_init 'xavier'; use one of.*he"):
        models.create("tiny_s3dg", 10, kernel_init="xavier")
    clip = jnp.zeros((1, 5, 32, 32, 3))
    for choice in ("tf_slim", "he"):
        model = models.create("tiny_s3dg", 10, kernel_init=choice)
        params = jax.jit(lambda c, m=model: m.init(jax.random.key(0), c))(clip)["params"]
        backbone = params["backbone"]
        stem = backbone["Conv_1a"]["conv"]["kernel"]  # [3, 7, 7, 3, 8]
        pointwise = backbone["Mixed_4b"]["Branch_0_Conv_0a_1x1"]["conv"]["kernel"]
        for kernel in (stem, pointwise):
            fan_in = int(np.prod(kernel.shape[:-1]))
            # truncated at 2 std: std 0.88 x 0.01 for TF-Slim's
            expected = np.sqrt(2 / fan_in) if choice == "he" else 0.0088
            assert float(jnp.std(kernel)) == pytest.approx(expected, rel=0.1)
        temporal = backbone["Mixed_4b"]["Branch_1_Conv_0b_3x3"]["temporal_conv"]["kernel"]
        np.testing.assert_array_equal(temporal[1, 0, 0], np.eye(temporal.shape[-1]))
    assert models.get_spec("tiny_s3dg").kernel_init == "tf_slim"


def test_sweep_specs_enumerate_from_all_2d_to_all_3d():
    i2d, i3d, s3d = (models.get_spec(n) for n in ("i2d", "i3d", "s3d"))
    for family, full in (("i3d", i3d), ("s3d", s3d)):
        assert models.get_spec(f"top_heavy_{family}_0") == full
        assert models.get_spec(f"top_heavy_{family}_10") == i2d
        assert models.get_spec(f"bottom_heavy_{family}_0") == i2d
        assert models.get_spec(f"bottom_heavy_{family}_10") == full
        for k in zoo.SWEEP_CUTS:
            top = models.get_spec(f"top_heavy_{family}_{k}")
            bottom = models.get_spec(f"bottom_heavy_{family}_{k}")
            for i, name in enumerate(LAYER_NAMES):
                assert top.layer(name) == (TWO_D if i < k else full.layer(name))
                assert bottom.layer(name) == (full.layer(name) if i < k else TWO_D)
            assert top.stem == (TWO_D if k else full.stem)  # the stem goes with Conv_2c
            assert bottom.stem == (full.stem if k else TWO_D)
    assert (
        models.get_spec("top_heavy_i3d_3")
        .describe()
        .startswith("Conv_1a=2d Conv_2c=2d Mixed_3b=2d Mixed_3c=2d Mixed_4b=3d3")
    )
    assert models.get_spec("s3dg").describe().endswith("Mixed_5c=sep3+g")
    for name in models.names(include_tiny=False):
        tiny = models.get_spec("tiny_" + name)
        assert tiny == models.get_spec(name).replace(width_multiplier=1 / 8, min_channels=8)


@pytest.mark.parametrize("name", ["i3d", "s3d", "s3dg"])
def test_endpoint_shapes_match_reference_table(name):
    model = models.create(name, 400)
    variables, x = _abstract_init(model, (2, 64, 224, 224, 3))
    logits, endpoints = jax.eval_shape(
        lambda v, x: model.apply(v, x, train=False, return_endpoints=True), variables, x
    )
    assert logits.shape == (2, 400) and logits.dtype == jnp.float32
    assert set(endpoints) == set(models.ENDPOINT_NAMES) == set(REFERENCE_SHAPES)
    for layer, shape in REFERENCE_SHAPES.items():
        assert endpoints[layer].shape == (2, *shape), layer


def test_any_input_size_at_or_above_the_minimum():
    model = models.create("tiny_s3d_torchvision", 7)  # PyTorch padding has a real minimum
    assert models.minimum_input(models.get_spec("tiny_s3d_torchvision")) == (5, 17)
    for shape in [(1, 5, 17, 17, 3), (1, 250, 40, 56, 3)]:  # minimum; long, non-square eval clip
        variables, x = _abstract_init(model, shape)
        assert jax.eval_shape(lambda v, x: model.apply(v, x), variables, x).shape == (1, 7)
    with pytest.raises(errors.UserError, match="too small for this model; use at least 5x17x17"):
        _abstract_init(model, (1, 4, 17, 17, 3))
    same = models.create("tiny_s3dg", 7)  # SAME padding: any size works
    variables, x = _abstract_init(same, (1, 1, 8, 8, 3))
    assert jax.eval_shape(lambda v, x: same.apply(v, x), variables, x).shape == (1, 7)


# ---------------------------------------------------------------- training
# (Every named model's forward and backward pass: tests/test_models_every_name.py.)


@pytest.mark.slow
def test_training_steps_reduce_the_loss():
    """tiny_s3dg for real: finite gradients for every parameter, BN statistics move, a few
    optimiser steps on one batch lower its loss, and logits are affine in PreLogits.

    Conditioned so the outcome survives any CPU's rounding: BatchNorm normalises each channel
    over batch x T x H x W values, and at 4 clips of 32x32 the top blocks see 4 values per
    channel (1x1x1 maps), so 1/std and the gradients (|g| ~ 800, since BN makes the loss
    invariant to the 0.01-scale kernels) blow up and any step size gave a chaotic loss curve
    (measured: SGD 0.002-1.0 and Adam 1e-4-1e-3 all non-monotone). At 8 clips of 64x64 with
    Adam's per-parameter steps of 1e-4 (1% of the kernels' scale) the loss falls at every step
    by 0.03 or more (1.53 -> 0.93 in 4 steps here, the same at XLA optimisation level 0 and for
    another input seed)."""
    model = models.create("tiny_s3dg", 4, dropout_rate=0.0)
    x = jax.random.uniform(jax.random.key(3), (8, 8, 64, 64, 3), minval=-1, maxval=1)
    labels = jnp.arange(8) % 4
    variables = lively(_abstract_init(model, x.shape)[0])  # numpy init: no XLA compile
    optimizer = optax.adam(1e-4)

    @jit
    def step(params, batch_stats, opt_state):
        def loss_fn(params):
            (logits, endpoints), new_state = model.apply(
                {"params": params, "batch_stats": batch_stats},
                x,
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": jax.random.key(0)},
                return_endpoints=True,
            )
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            return loss, (new_state, logits, endpoints["PreLogits"])

        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, grads, aux

    params, batch_stats = variables["params"], variables["batch_stats"]
    opt_state = optimizer.init(params)
    losses = []
    for i in range(5):
        new_params, opt_state, loss, grads, (new_state, logits, pre_logits) = step(
            params, batch_stats, opt_state
        )
        losses.append(float(loss))
        if i == 0:
            for path, g in jax.tree_util.tree_leaves_with_path(grads):
                assert np.all(np.isfinite(g)) and np.any(g != 0), jax.tree_util.keystr(path)
            head = params["head"]["Logits"]  # the parameters that produced these logits
            np.testing.assert_allclose(
                logits, pre_logits @ head["kernel"][0, 0, 0] + head["bias"], atol=1e-4
            )
        params, batch_stats = new_params, new_state["batch_stats"]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0] - 0.25, losses
    moved = jax.tree.map(
        lambda a, b: float(jnp.abs(a - b).max()), batch_stats, variables["batch_stats"]
    )
    assert min(jax.tree.leaves(moved)) > 0


def test_bfloat16_compute_keeps_float32_params_and_logits():
    model = models.create("tiny_s3dg", 5, dtype="bfloat16")
    variables, x = _abstract_init(model, (1, 8, 32, 32, 3))
    assert {a.dtype for a in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
    jaxpr = jax.make_jaxpr(lambda v, x: model.apply(v, x))(variables, x)
    assert jaxpr.out_avals[0].dtype == jnp.float32
    conv_dtypes = {
        str(eqn.invars[0].aval.dtype)
        for eqn in jaxpr.jaxpr.eqns
        if eqn.primitive.name == "conv_general_dilated"
    }
    assert conv_dtypes == {"bfloat16"}


def test_remat_rematerialises_each_inception_block():
    x = jax.ShapeDtypeStruct((2, 8, 32, 32, 3), jnp.float32)
    saved = {}
    for remat in (False, True):
        model = models.create("tiny_s3d", 5, remat=remat)
        variables = jax.eval_shape(lambda x: model.init(RNGS, x, train=False), x)

        def loss(params, batch_stats, x):
            logits, _ = model.apply(
                {"params": params, "batch_stats": batch_stats},
                x,
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": jax.random.key(0)},
            )
            return jnp.sum(logits)

        saved[remat] = cost.saved_residual_bytes(
            loss, variables["params"], variables["batch_stats"], x
        )
    # Only block inputs stay alive across a rematerialised block.
    assert saved[True] < 0.5 * saved[False], saved


# ---------------------------------------------------------------- I2D and time order


@pytest.mark.slow
def test_i2d_time_reversal_invariance_depends_on_clip_length():
    """I2D reverses exactly with its input only where every temporal sampling grid is
    mirror-symmetric (see models/zoo.py): all endpoints and the logits for T = 5 (mod 8),
    endpoints up to Mixed_4f for T = 1 (mod 8), nothing for even T."""
    model = models.create("tiny_i2d", 6)
    variables = jax.eval_shape(
        lambda x: model.init(RNGS, x, train=False), jnp.zeros((1, 5, 16, 16, 3))
    )
    variables = lively(variables)

    def run(x, keep):
        logits, endpoints = model.apply(variables, x, return_endpoints=True)
        return logits, {k: endpoints[k] for k in keep}

    def compare(frames, keep):
        x = jax.random.uniform(jax.random.key(frames), (2, frames, 16, 16, 3), minval=-1, maxval=1)
        forward = jit(functools.partial(run, keep=keep))
        (logits, ends), (logits_rev, ends_rev) = forward(x), forward(jnp.flip(x, axis=1))
        gaps = {k: float(jnp.abs(jnp.flip(ends[k], axis=1) - ends_rev[k]).max()) for k in keep}
        return float(jnp.abs(logits - logits_rev).max()), gaps

    all_ends = [k for k in models.ENDPOINT_NAMES if k != "PreLogits"]
    logit_gap, gaps = compare(13, all_ends)
    assert logit_gap < 1e-5 and max(gaps.values()) < 1e-5, gaps
    logit_gap, gaps = compare(9, ["Mixed_4f", "MaxPool_5a"])
    assert gaps["Mixed_4f"] < 1e-5 and gaps["MaxPool_5a"] > 1e-3 and logit_gap > 1e-6, gaps
    _, gaps = compare(8, ["Conv_1a"])
    assert gaps["Conv_1a"] > 1e-3  # reversed even clip: the stride-2 stem keeps the other frames
