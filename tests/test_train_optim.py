"""Schedules, weight-decay masks, label smoothing, clipping: the numbers, not just 'it runs'."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from video_s3d import optim


def _cfg(**overrides):
    cfg = ml_collections.ConfigDict(
        dict(
            name="sgd",
            learning_rate=1.0,
            momentum=0.0,
            nesterov=False,
            weight_decay=0.0,
            decay_bn_and_bias=False,
            schedule="cosine",
            warmup_steps=10,
            step_boundaries=(50, 80),
            step_decay_factor=0.1,
            grad_clip_norm=0.0,
        )
    )
    cfg.update(overrides)
    return cfg


def test_warmup_then_cosine_and_step_schedules():
    cosine = optim.make_schedule(_cfg(), num_train_steps=110)
    np.testing.assert_allclose(
        [cosine(0), cosine(5), cosine(10), cosine(60), cosine(110)],
        [0.0, 0.5, 1.0, 0.5, 0.0],
        atol=1e-6,
    )
    step = optim.make_schedule(_cfg(schedule="step"), num_train_steps=100)
    np.testing.assert_allclose(
        [step(5), step(49), step(50), step(79), step(80), step(99)],
        [0.5, 1.0, 0.1, 0.1, 0.01, 0.01],
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="schedule='linear' is unknown"):
        optim.make_schedule(_cfg(schedule="linear"), 100)


def test_weight_decay_skips_batch_norm_and_biases_unless_asked():
    params = {
        "conv": {"kernel": jnp.ones((3, 3, 2, 2))},
        "bn": {"bias": jnp.ones(2)},
        "head": {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)},
    }
    zero_grads = jax.tree.map(jnp.zeros_like, params)
    for decay_all, bias_changes in ((False, False), (True, True)):
        tx = optim.make_optimizer(
            _cfg(
                weight_decay=0.5, warmup_steps=0, schedule="constant", decay_bn_and_bias=decay_all
            ),
            10,
        )
        updates, _ = tx.update(zero_grads, tx.init(params), params)
        new = optax.apply_updates(params, updates)
        np.testing.assert_allclose(new["conv"]["kernel"], 0.5)  # p - lr * wd * p
        assert bool(jnp.all(new["bn"]["bias"] != 1.0)) == bias_changes
        assert bool(jnp.all(new["head"]["bias"] != 1.0)) == bias_changes


def test_adamw_clipping_and_label_smoothing():
    params = {"w": jnp.ones((2, 2))}
    grads = {"w": jnp.full((2, 2), 100.0)}
    clipped = optim.make_optimizer(
        _cfg(grad_clip_norm=1.0, warmup_steps=0, schedule="constant"), 10
    )
    updates, _ = clipped.update(grads, clipped.init(params), params)
    assert float(optax.global_norm(updates)) == pytest.approx(1.0, rel=1e-5)
    adamw = optim.make_optimizer(
        _cfg(
            name="adamw", weight_decay=0.1, warmup_steps=0, schedule="constant", learning_rate=0.01
        ),
        10,
    )
    updates, _ = adamw.update(grads, adamw.init(params), params)
    # Adam's first step is lr * sign(g); decoupled decay adds lr * wd * p.
    np.testing.assert_allclose(updates["w"], -0.01 * (1.0 + 0.1), rtol=1e-4)
    with pytest.raises(ValueError, match="optim.name='lamb' is unknown"):
        optim.make_optimizer(_cfg(name="lamb"), 10)

    logits = jnp.array([[2.0, 0.0, 0.0, 0.0]])
    labels = jnp.array([0])
    log_p = jax.nn.log_softmax(logits)[0]
    plain = float(optim.cross_entropy(logits, labels, 4))
    smooth = float(optim.cross_entropy(logits, labels, 4, label_smoothing=0.2))
    assert plain == pytest.approx(-float(log_p[0]), rel=1e-6)
    # Smoothed target: 0.85 on the label, 0.05 elsewhere.
    assert smooth == pytest.approx(
        -(0.85 * float(log_p[0]) + 0.05 * float(log_p[1:].sum())), rel=1e-6
    )


@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_off_centre_taps_wait_then_ramp_in(name):
    schedule = optim.off_centre_schedule(delay_steps=4, ramp_steps=4)
    np.testing.assert_allclose(
        [float(schedule(jnp.asarray(t))) for t in (0, 3, 4, 6, 8, 20)], [0, 0, 0, 0.5, 1, 1]
    )
    params = {
        "conv3d": {"kernel": jnp.ones((3, 2, 2, 1, 1))},
        "conv1x1x1": {"kernel": jnp.ones((1, 1, 1, 2, 2))},
        "conv2d": {"kernel": jnp.ones((3, 3, 1, 1))},
        "bn": {"bias": jnp.ones(3)},
    }
    grads = jax.tree.map(jnp.ones_like, params)
    cfg = _cfg(name=name, warmup_steps=0, schedule="constant", learning_rate=0.01)
    plain = optim.make_optimizer(cfg, 10)
    cfg.update(off_centre_delay_steps=1, off_centre_ramp_steps=2)
    held = optim.make_optimizer(cfg, 10)
    plain_state, held_state = plain.init(params), held.init(params)
    for factor in (0.0, 0.0, 0.5, 1.0):  # step 0 held, ramp 1 -> 3
        base, plain_state = plain.update(grads, plain_state, params)
        taps, held_state = held.update(grads, held_state, params)
        kernel, reference = taps["conv3d"]["kernel"], base["conv3d"]["kernel"]
        assert float(jnp.abs(reference).min()) > 0
        # The 3D kernel's centre tap (index 1 of 3) keeps its step; taps 0 and 2 are scaled.
        np.testing.assert_allclose(kernel[1], reference[1], rtol=1e-6)
        np.testing.assert_allclose(kernel[::2], factor * reference[::2], rtol=1e-6)
        # Kernels with one tap in time, 2D kernels and 1-D parameters are untouched.
        for key in ("conv1x1x1", "conv2d", "bn"):
            jax.tree.map(np.testing.assert_array_equal, taps[key], base[key])
