"""Optimisers and learning-rate schedules from `config.optim`, and the training loss.

Schedules are linear warm-up into cosine decay or piecewise-constant steps (the I3D
release decays x0.1 twice). Weight decay is optionally restricted to convolution / dense
kernels, because decaying BatchNorm offsets and biases only pulls them towards zero
without regularising the function (see `decay_bn_and_bias`). Optionally the off-centre
temporal taps of 3D kernels are held still, then ramped in (`hold_off_centre_taps`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax

from video_s3d.errors import UserError

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step", "constant")


def make_schedule(cfg: ml_collections.ConfigDict, num_train_steps: int) -> optax.Schedule:
    """Learning rate per step: linear warm-up from 0, then cosine / step / constant."""
    if cfg.schedule not in SCHEDULES:
        raise UserError(
            f"config.optim.schedule={cfg.schedule!r} is unknown; use one of {SCHEDULES}."
        )
    warmup = int(cfg.warmup_steps)
    peak = float(cfg.learning_rate)
    after = max(num_train_steps - warmup, 1)
    if cfg.schedule == "cosine":
        main = optax.cosine_decay_schedule(peak, decay_steps=after)
    elif cfg.schedule == "step":
        # Boundaries are absolute steps from which the rate is multiplied by the factor; the
        # schedule after warm-up counts from 0 (optax scales once the count reaches a key).
        boundaries = {
            int(b) - warmup: float(cfg.step_decay_factor) for b in (cfg.step_boundaries or ())
        }
        main = optax.piecewise_constant_schedule(peak, boundaries)
    else:
        main = optax.constant_schedule(peak)
    if warmup <= 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), main], [warmup])


def decay_mask(params, decay_bn_and_bias: bool):
    """True for the leaves weight decay applies to: kernels only unless told otherwise."""
    if decay_bn_and_bias:
        return jax.tree.map(lambda _: True, params)
    # BatchNorm scale/bias and conv/dense biases are 1-D; kernels and gating matrices are not.
    return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(
    cfg: ml_collections.ConfigDict, num_train_steps: int
) -> optax.GradientTransformation:
    """The optax transformation for `config.optim` (clipping, decay, SGD or AdamW)."""
    if cfg.name not in OPTIMIZERS:
        raise UserError(f"config.optim.name={cfg.name!r} is unknown; use one of {OPTIMIZERS}.")
    schedule = make_schedule(cfg, num_train_steps)
    mask = lambda params: decay_mask(params, bool(cfg.decay_bn_and_bias))  # noqa: E731
    parts = []
    if cfg.grad_clip_norm and cfg.grad_clip_norm > 0:
        parts.append(optax.clip_by_global_norm(float(cfg.grad_clip_norm)))
    if cfg.name == "sgd":
        if cfg.weight_decay:
            # Coupled L2 (added to the gradient before momentum), as in the paper's recipe.
            parts.append(optax.add_decayed_weights(float(cfg.weight_decay), mask=mask))
        parts.append(
            optax.sgd(
                schedule,
                momentum=float(cfg.momentum) or None,
                nesterov=bool(cfg.get("nesterov", False)),
            )
        )
    else:
        parts.append(
            optax.adamw(
                schedule,
                b1=float(cfg.get("b1", 0.9)),
                b2=float(cfg.get("b2", 0.999)),
                weight_decay=float(cfg.weight_decay),
                mask=mask,
            )
        )
    delay = int(cfg.get("off_centre_delay_steps", 0))
    ramp = int(cfg.get("off_centre_ramp_steps", 0))
    if delay or ramp:
        parts.append(hold_off_centre_taps(delay, ramp))
    return optax.chain(*parts)


def centre_tap_mask(param: jax.Array) -> jax.Array | None:
    """[kt, 1, 1, 1, 1]: 1 at the temporal centre tap of a 3D conv kernel [kt, kh, kw, in, out],
    0 at the others; None for every other parameter (2D kernels, kt = 1, dense, BatchNorm)."""
    if param.ndim != 5 or param.shape[0] == 1:
        return None
    kt = param.shape[0]
    return jnp.zeros((kt, 1, 1, 1, 1), param.dtype).at[kt // 2].set(1.0)


def off_centre_schedule(delay_steps: int, ramp_steps: int) -> optax.Schedule:
    """The off-centre taps' learning-rate multiplier per step: 0 for `delay_steps`, then a
    linear ramp over `ramp_steps` up to 1."""
    if ramp_steps <= 0:  # optax's linear schedule would stay at 0 without a ramp
        return lambda count: jnp.where(count < delay_steps, 0.0, 1.0)
    return optax.linear_schedule(0.0, 1.0, ramp_steps, transition_begin=delay_steps)


def hold_off_centre_taps(delay_steps: int, ramp_steps: int) -> optax.GradientTransformation:
    """Multiplies the final update of every 3D kernel's off-centre temporal taps by
    `off_centre_schedule` (with Adam, scaling the gradient instead would do nothing): a 3D
    network first trains as the 2D network it starts as (`he_centre`), then learns time.

    Why (synthetic study, STUDY_HISTORY.md "Measured (session 18)"): AdamW moves every weight by
    about the learning rate per step whatever its gradient's size, so from the first step the zero
    off-centre taps move as fast as the centre ones while their gradients are noise. Tiny I3D
    on `flash_order` then sat at chance in 2 of 3 seeds; with those taps held still it left
    chance by step 400 as tiny I2D does."""
    multiplier = off_centre_schedule(delay_steps, ramp_steps)

    def init(params):
        del params
        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(updates, state, params=None):
        del params
        factor = multiplier(state.count)

        def held(u):
            centre = centre_tap_mask(u)
            return u if centre is None else u * (centre + (1 - centre) * factor).astype(u.dtype)

        count = optax.safe_increment(state.count)
        return jax.tree.map(held, updates), optax.ScaleByScheduleState(count=count)

    return optax.GradientTransformation(init, update)


def cross_entropy(
    logits: jax.Array, labels: jax.Array, num_classes: int, label_smoothing: float = 0.0
) -> jax.Array:
    """Mean softmax cross-entropy with optional label smoothing, computed in float32."""
    targets = (
        optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing)
        if label_smoothing
        else jax.nn.one_hot(labels, num_classes)
    )
    return jnp.mean(optax.softmax_cross_entropy(logits.astype(jnp.float32), targets))
