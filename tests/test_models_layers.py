"""Building blocks: conv/pool lowerings agree, conv-unit kinds, BatchNorm, self-gating."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from models_testing import jit, lively

from video_s3d import cost, errors
from video_s3d.models import layers


def _native_conv(x, kernel, strides, padding):
    pads = layers.padding_pairs(x.shape[1:4], kernel.shape[:3], strides, padding)
    return lax.conv_general_dilated(
        x, kernel, strides, pads, dimension_numbers=("NDHWC", "DHWIO", "NDHWC")
    )


@pytest.mark.parametrize("lowering", ["auto", "unrolled", "unrolled_vjp"])
def test_conv_and_pool_lowerings_compute_the_native_ops(lowering):
    """Per-frame 2D convs, temporal-shift unrolling and separable max-pools must be the
    very same functions as XLA's 3D conv / reduce_window (values and gradients), for
    zero and edge temporal padding, SAME and torchvision's symmetric padding: with the
    hand-written conv VJP ('unrolled_vjp'), with XLA's ('unrolled') and with the CPU
    default that mixes them by conv size ('auto').
    Tolerance: values 2e-5 absolute; gradients 1e-5 of each gradient's largest entry."""
    key1, key2 = jax.random.split(jax.random.key(0))
    x = jax.random.normal(key1, (2, 7, 9, 10, 3))
    # (kernel, strides): 2D with stride (Conv_1a-like), 3D, temporal half of a separable
    # conv (strided and not; one 2D conv over [B, T, H*W, C]), pointwise, 2D 3x3 with
    # spatial stride, strided 3D.
    cases = [
        ((1, 7, 7), (2, 2, 2)),
        ((3, 3, 3), (1, 1, 1)),
        ((7, 1, 1), (2, 1, 1)),
        ((3, 1, 1), (1, 1, 1)),
        ((1, 1, 1), (1, 1, 1)),
        ((1, 3, 3), (1, 2, 2)),
        ((3, 3, 3), (2, 2, 2)),
        # A temporal kernel with spatial stride, a strided pointwise conv (its odd phases
        # get no kernel tap in the phase-split input gradient).
        ((3, 1, 1), (2, 2, 2)),
        ((1, 1, 1), (1, 2, 2)),
        # A 1 x k spatial kernel: its kernel gradient runs over columns.
        ((1, 1, 3), (1, 1, 2)),
    ]
    kernels = [
        jax.random.normal(jax.random.fold_in(key2, i), (*k, 3, 4)) for i, (k, _) in enumerate(cases)
    ]
    pools = [
        ((1, 3, 3), (1, 2, 2)),
        ((3, 3, 3), (1, 1, 1)),
        ((3, 3, 3), (2, 2, 2)),
        ((2, 2, 2), (2, 2, 2)),
    ]

    def run(x, kernels, padding):
        convs = [layers.conv3d(x, k, s, padding) for k, (_, s) in zip(kernels, cases)]
        maxes = [layers.max_pool3d(x, w, s, padding) for w, s in pools]
        # Edge fill: only kernels with kt > 1 read padded frames.
        edge = [
            layers.conv3d(x, k, s, padding, "edge")
            for k, (_, s) in zip(kernels, cases)
            if k.shape[0] > 1
        ]
        return convs + maxes + edge

    def both_paddings(x, kernels):
        return run(x, kernels, "same") + run(x, kernels, "symmetric")

    def loss(x, kernels):
        return sum(jnp.sum(jnp.sin(y)) for y in both_paddings(x, kernels))

    results = {}
    for implementation in (lowering, "native"):
        with layers.window_ops(implementation):
            results[implementation] = jit(
                lambda x, k: (both_paddings(x, k), jax.grad(loss, argnums=(0, 1))(x, k))
            )(x, kernels)
    (ours, our_grads), (native, native_grads) = results[lowering], results["native"]

    def xla_ops(x, kernels):  # one XLA 3D conv / reduce_window per case, for reference
        out = []
        for padding in ("same", "symmetric"):
            for k, (_, s) in zip(kernels, cases):
                pads = layers.padding_pairs(x.shape[1:4], k.shape[:3], s, padding)
                out.append(
                    lax.conv_general_dilated(
                        x, k, s, pads, dimension_numbers=("NDHWC", "DHWIO", "NDHWC")
                    )
                )
            for w, s in pools:
                out.append(nn.max_pool(x, w, s, layers.padding_pairs(x.shape[1:4], w, s, padding)))
            for k, (_, s) in zip(kernels, cases):
                if k.shape[0] == 1:
                    continue
                (lo, hi), *space = layers.padding_pairs(x.shape[1:4], k.shape[:3], s, padding)
                # Edge fill by hand: the first / last frame repeated, then no temporal padding.
                framed = jnp.concatenate([x[:, :1]] * lo + [x] + [x[:, -1:]] * hi, axis=1)
                out.append(
                    lax.conv_general_dilated(
                        framed,
                        k,
                        s,
                        [(0, 0), *space],
                        dimension_numbers=("NDHWC", "DHWIO", "NDHWC"),
                    )
                )
        return out

    for a, b in zip(native, jit(xla_ops)(x, kernels)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-5)
    for a, b in zip(ours, native):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(our_grads), jax.tree.leaves(native_grads)):
        # Sums of many terms in another order: compare relative to the gradient's scale.
        np.testing.assert_allclose(a, b, atol=1e-5 * float(jnp.abs(b).max()))
    with pytest.raises(errors.UserError, match="window-op implementation"):
        with layers.window_ops("fast"):
            pass
    with pytest.raises(errors.UserError, match="temporal padding 'reflect'; use one of"):
        layers.conv3d(x, kernels[1], (1, 1, 1), "same", "reflect")


@pytest.mark.parametrize("convention", ["tf_slim", "torchvision"])
def test_conv_unit_gradients_of_the_cpu_lowering_equal_the_native_ops(convention):
    """Every conv-unit kind (2D, 3D, separable, with gating), strided, train-mode BN: the
    parameter and input gradients of the 'unrolled_vjp' lowering (hand-written VJP) equal those
    of XLA's native 3D conv / reduce_window within 1e-4 of each gradient's scale."""
    x = jax.random.normal(jax.random.key(4), (2, 5, 9, 9, 4))
    for kind in layers.CONV_KINDS:
        unit = layers.ConvUnit(
            6,
            3,
            temporal_kernel=3,
            strides=(2, 2, 2),
            kind=kind,
            gating=kind == "separable",
            convention=convention,
            padding="symmetric" if convention == "torchvision" else "same",
        )
        variables = lively(unit.init(jax.random.key(0), x, train=False))

        def loss(params, x):
            y, _ = unit.apply(
                {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
            )
            pooled = layers.max_pool3d(y, (3, 3, 3), (2, 2, 2), unit.padding)
            return jnp.sum(jnp.sin(pooled * 3.0))

        grads = {}
        for implementation in ("unrolled_vjp", "native"):
            with layers.window_ops(implementation):
                grads[implementation] = jit(jax.grad(loss, argnums=(0, 1)))(variables["params"], x)
        leaves = jax.tree.leaves(grads["native"])
        assert len(leaves) >= 3 and all(float(jnp.abs(b).max()) > 0 for b in leaves)
        for a, b in zip(jax.tree.leaves(grads["unrolled_vjp"]), leaves):
            np.testing.assert_allclose(a, b, atol=1e-4 * float(jnp.abs(b).max()))


def test_batch_norm_matches_flax():
    x = jax.random.normal(jax.random.key(1), (4, 3, 5, 5, 6)) * 3 + 1
    for use_scale in (False, True):
        ours = layers.BatchNorm(use_scale=use_scale)
        ref = nn.BatchNorm(
            momentum=layers.BN_MOMENTUM, epsilon=layers.BN_EPSILON, use_scale=use_scale
        )
        variables = jax.eval_shape(
            lambda x: ours.init(jax.random.key(0), x, use_running_average=False), x
        )
        ref_vars = jax.eval_shape(
            lambda x: ref.init(jax.random.key(0), x, use_running_average=False), x
        )
        assert jax.tree.map(jnp.shape, variables) == jax.tree.map(jnp.shape, ref_vars)
        # Non-trivial scale / bias / running statistics.
        variables = jax.tree.map(lambda a: jnp.linspace(0.5, 1.5, a.shape[0]), variables)

        def both(module, variables, x):
            train = module.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
            return train, module.apply(variables, x, use_running_average=True)

        (y, new), y_eval = jit(functools.partial(both, ours))(variables, x)
        (y_ref, new_ref), y_eval_ref = jit(functools.partial(both, ref))(variables, x)
        np.testing.assert_allclose(y, y_ref, atol=1e-5)
        np.testing.assert_allclose(y_eval, y_eval_ref, atol=1e-5)
        for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(new_ref)):
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_cross_device_batch_norm_equals_full_batch_statistics():
    """bn_axis_name inside shard_map: per-device BN uses the global batch's statistics."""
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:8]), ("batch",))
    x = (
        jax.random.normal(jax.random.key(2), (8, 2, 6, 6, 3))
        * jnp.arange(1, 9)[:, None, None, None, None]
    )
    plain = layers.ConvUnit(4, 3, kind="2d")
    synced = layers.ConvUnit(4, 3, kind="2d", bn_axis_name="batch")
    variables = plain.init(jax.random.key(0), x, train=False)

    def step(module, variables, x):
        return module.apply(variables, x, train=True, mutable=["batch_stats"])

    expected, expected_stats = jit(functools.partial(step, plain))(variables, x)
    P = jax.sharding.PartitionSpec
    sharded = jax.shard_map(
        functools.partial(step, synced),
        mesh=mesh,
        in_specs=(P(), P("batch")),
        out_specs=(P("batch"), P()),
    )
    got, got_stats = jit(sharded)(variables, x)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    for a, b in zip(jax.tree.leaves(got_stats), jax.tree.leaves(expected_stats)):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("convention", ["tf_slim", "torchvision"])
def test_conv_unit_kinds_and_separable_identity_start(convention):
    x = jax.random.normal(jax.random.key(3), (2, 5, 8, 8, 3))
    shapes = {}
    for kind in layers.CONV_KINDS:
        unit = layers.ConvUnit(
            6, 3, temporal_kernel=3, strides=(2, 2, 2), kind=kind, convention=convention
        )
        variables = jax.eval_shape(lambda x: unit.init(jax.random.key(0), x, train=False), x)
        shapes[kind] = jax.tree.map(jnp.shape, variables["params"])
        out = jax.eval_shape(lambda v, x: unit.apply(v, x, train=False), variables, x)
        assert out.shape == (2, 3, 4, 4, 6)
    assert shapes["2d"]["conv"]["kernel"] == (1, 3, 3, 3, 6)
    assert shapes["3d"]["conv"]["kernel"] == (3, 3, 3, 3, 6)
    assert shapes["separable"]["conv"]["kernel"] == (1, 3, 3, 3, 6)
    assert shapes["separable"]["temporal_conv"]["kernel"] == (3, 1, 1, 6, 6)
    assert ("scale" in shapes["2d"]["bn"]) == (convention == "torchvision")
    if convention == "torchvision":
        assert "bias" not in shapes["separable"]["temporal_conv"]
        assert "temporal_bn" in shapes["separable"]
        return
    # TF-Slim temporal half: bias, no BN, identity init, so the unit starts as the 2D unit
    # (whose stride-2 one-tap temporal kernel keeps frames 0, 2, 4: the identity's centre
    # tap reads the same frames when SAME padding is symmetric, i.e. for odd T).
    assert shapes["separable"]["temporal_conv"]["bias"] == (6,)
    assert "temporal_bn" not in shapes["separable"]
    separable = layers.ConvUnit(6, 3, 3, (2, 2, 2), "separable", convention=convention)
    two_d = layers.ConvUnit(6, 3, 1, (2, 2, 2), "2d", convention=convention)
    variables = jit(lambda x: separable.init(jax.random.key(0), x, train=False))(x)
    spatial_only = {
        "params": {k: variables["params"][k] for k in ("conv", "bn")},
        "batch_stats": variables["batch_stats"],
    }
    got, expected = jit(
        lambda v, w, x: (separable.apply(v, x, train=False), two_d.apply(w, x, train=False))
    )(variables, spatial_only, x)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_self_gating_zero_weights_halve_and_cost_c_squared():
    x = jax.random.normal(jax.random.key(4), (2, 3, 4, 4, 5))
    gated = layers.ConvUnit(8, 3, kind="2d", gating=True)
    plain = layers.ConvUnit(8, 3, kind="2d")
    variables = jit(lambda x: gated.init(jax.random.key(0), x, train=False))(x)
    plain_vars = jax.eval_shape(lambda x: plain.init(jax.random.key(0), x, train=False), x)
    assert variables["params"]["gating"]["kernel"].shape == (8, 8)
    n_gated = sum(a.size for a in jax.tree.leaves(variables["params"]))
    assert n_gated - sum(a.size for a in jax.tree.leaves(plain_vars["params"])) == 8 * 8
    zeroed = jax.tree_util.tree_map_with_path(
        lambda path, a: jnp.zeros_like(a) if "gating" in jax.tree_util.keystr(path) else a,
        variables,
    )
    without_gate = {
        **zeroed,
        "params": {k: v for k, v in zeroed["params"].items() if k != "gating"},
    }
    got, ungated = jit(
        lambda v, w, x: (gated.apply(v, x, train=False), plain.apply(w, x, train=False))
    )(zeroed, without_gate, x)
    np.testing.assert_array_equal(got, 0.5 * ungated)
    # The gate costs one C x C matrix-vector product per clip: negligible next to the conv.
    macs = cost.program_macs(lambda v, x: gated.apply(v, x, train=False), variables, x)
    macs_plain = cost.program_macs(lambda v, x: plain.apply(v, x, train=False), plain_vars, x)
    assert macs - macs_plain == 2 * 8 * 8  # batch of 2 clips
    assert (macs - macs_plain) / macs_plain < 0.01


def test_he_centre_init_starts_a_3d_conv_as_a_per_frame_2d_conv():
    """'he_centre': only the centre tap is drawn (He, fan-in of the 2D kernel), so each output
    frame depends on its own input frame alone until training moves the other taps."""
    shape = (3, 3, 3, 16, 32)
    kernel = layers.he_centre_init(jax.random.key(0), shape)
    np.testing.assert_array_equal(kernel[0], 0.0)
    np.testing.assert_array_equal(kernel[2], 0.0)
    # Truncated at 2 std, flax's variance scaling corrects the spread to sqrt(2 / fan_in).
    assert float(jnp.std(kernel[1])) == pytest.approx(np.sqrt(2 / (3 * 3 * 16)), rel=0.1)
    conv = layers.Conv3D(8, (3, 3, 3), kernel_init=layers.KERNEL_INITS["he_centre"])
    clip = jax.random.normal(jax.random.key(1), (1, 5, 8, 8, 4))
    variables = conv.init(jax.random.key(2), clip)
    changed = clip.at[:, 2].multiply(-3.0)  # only frame 2 differs
    difference = jnp.abs(conv.apply(variables, changed) - conv.apply(variables, clip))
    assert float(difference[:, 2].max()) > 0.1
    np.testing.assert_array_equal(np.asarray(difference[:, [0, 1, 3, 4]]), 0.0)
    # A 1-tap kernel is plain He.
    assert layers.he_centre_init(jax.random.key(0), (1, 3, 3, 16, 32)).shape == (1, 3, 3, 16, 32)


def _fused_bodies(hlo: str) -> dict[str, str]:
    """Each fused computation's name and text in an optimised HLO module."""
    bodies, name = {}, None
    for line in hlo.splitlines():
        if line.startswith("%") and "{" in line:
            name = line.split()[0][1:]
            bodies[name] = ""
        elif name is not None:
            bodies[name] += line + "\n"
    return bodies


def test_the_kernel_gradients_channel_major_copy_has_no_arithmetic_fused_in():
    """The row-conv kernel gradient copies a temporal conv's input into channel-major
    order. On XLA:CPU that copy runs ~7x slower when the BatchNorm + ReLU that produced the
    input is fused into it (`layers._materialised`); it must stay a pure copy, and the
    gradient must not change."""
    b, t, hw, c = 1, 8, 64, 16
    x = jax.random.normal(jax.random.key(0), (b, t, 8, 8, c))
    kernel = jax.random.normal(jax.random.key(1), (7, 1, 1, c, c))
    scale, shift = jnp.linspace(0.5, 1.5, c), jnp.linspace(-0.1, 0.1, c)

    def loss(kernel, x):
        h = jnp.maximum(x * scale + shift, 0)  # BatchNorm + ReLU, as in a conv unit
        return jnp.sum(layers.conv3d(h, kernel, (2, 1, 1), "same") ** 2)

    with layers.window_ops("auto"):
        grad = jax.jit(jax.grad(loss))
        hlo = grad.lower(kernel, x).compile().as_text()
        value = grad(kernel, x)
    with layers.window_ops("native"):
        reference = jax.jit(jax.grad(loss))(kernel, x)
    np.testing.assert_allclose(value, reference, atol=1e-5 * float(jnp.abs(reference).max()))

    channel_major = f"f32[{c},{t},{b * hw}]"
    calls = [
        line.split("calls=")[1].split(",")[0].lstrip("%")
        for line in hlo.split("ENTRY")[1].splitlines()
        if f"= {channel_major}" in line and " fusion(" in line
    ]
    assert calls, f"no fusion writes the channel-major copy {channel_major}"
    bodies = _fused_bodies(hlo)
    for call in calls:
        arithmetic = [op for op in (" multiply(", " add(", " maximum(") if op in bodies[call]]
        assert not arithmetic, f"{call} fuses {arithmetic} into the copy:\n{bodies[call]}"


@pytest.mark.parametrize(
    "height, kernel_hw, stride, pads, channels",
    [
        (16, (7, 1), 2, (3, 3), 3),
        (224, (7, 1), 2, (3, 3), 3),
        (16, (7, 1), 2, (2, 3), 3),
        (9, (3, 1), 1, (1, 1), 3),
        (10, (3, 3), 1, (1, 1), 3),
        (10, (3, 3), 1, (1, 1), layers._PER_TAP_MIN_CHANNELS),
        (12, (7, 7), 2, (3, 3), layers._PER_TAP_MIN_CHANNELS),
    ],
)
def test_kernel_gradient_by_rows_equals_xla(height, kernel_hw, stride, pads, channels):
    """The row-conv kernel gradient must give XLA's: where symmetric padding of an even
    length leaves a padded row that no tap reaches (Conv_1a: 16 frames, 7 taps, stride 2,
    3 + 3 padded), which it skips, and where it leaves none; with the kw column taps stacked
    into one conv (few input channels) and with one conv per tap."""
    kh, kw = kernel_hw
    x = jax.random.normal(jax.random.key(0), (2, height, 9, channels))
    out_h = (height + sum(pads) - kh) // stride + 1
    col_pads = (kw // 2, kw // 2)
    out_w = (9 + sum(col_pads) - kw) // stride + 1
    grad_y = jax.random.normal(jax.random.key(1), (2, out_h, out_w, 4))
    shape = (kh, kw, channels, 4)

    def conv(kernel):
        return layers._conv2d_xla(x, kernel, (stride, stride), (pads, col_pads))

    _, vjp = jax.vjp(conv, jnp.zeros(shape))
    (reference,) = vjp(grad_y)
    value = layers._kernel_gradient_by_rows(x, grad_y, shape, (stride, stride), (pads, col_pads))
    np.testing.assert_allclose(value, reference, atol=1e-5 * float(jnp.abs(reference).max()))
