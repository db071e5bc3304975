"""The model from the config and the replicated training state around it."""

from __future__ import annotations

import importlib
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from video_s3d import parallel
from video_s3d.compile_policy import CompilePolicy
from video_s3d.errors import UserError


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any

    @property
    def variables(self) -> dict[str, Any]:
        return {"params": self.params, "batch_stats": self.batch_stats}

    def apply_gradients(self, tx: optax.GradientTransformation, grads, batch_stats) -> "TrainState":
        """The state after one optimiser update with `grads`, holding `batch_stats`."""
        updates, opt_state = tx.update(grads, self.opt_state, self.params)
        return self.replace(
            step=self.step + 1,
            params=optax.apply_updates(self.params, updates),
            batch_stats=batch_stats,
            opt_state=opt_state,
        )


# Below this many steps a run compiles fast on CPU (config.cpu_fast_compile; the measurements
# are in video_s3d/compile_policy.py): ~18 s more compiling per program is repaid by ~0.13 s
# per step after ~150 steps.
FAST_COMPILE_BELOW_STEPS = 150


def fast_compile_pays_off(num_train_steps: int) -> bool:
    """The cpu_fast_compile value for a run of this many steps (the break-even above)."""
    return num_train_steps < FAST_COMPILE_BELOW_STEPS


def create_model(config: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
    """`config.model` -> flax module; bfloat16 compute keeps float32 parameters.

    Every field of `config.model` but `name` is passed to the model as a keyword argument
    (big_vision's `Model(num_classes, **config.model)`), so a model knob such as
    `width_multiplier` or `temporal_padding` is set from the config with no change here.
    `config.model.name` is a zoo name, or 'package.module:function' for a model outside the
    zoo (the function takes the same arguments as `models.create` after the name).
    """
    kwargs = {key: value for key, value in config.model.to_dict().items() if key != "name"}
    # Synchronised BN averages batch statistics over the mesh axis inside the step.
    kwargs["bn_axis_name"] = parallel.BATCH_AXIS if config.sync_batch_norm else None
    if ":" in config.model.name:
        return _import_factory(config.model.name)(num_classes, **kwargs)
    from video_s3d import models  # models.create names the valid choices on a bad name/dtype

    return models.create(config.model.name, num_classes, **kwargs)


def _import_factory(path: str):
    module_name, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise UserError(
            f"config.model.name={path!r} names no importable function ({e}); use a zoo "
            f"name from video_s3d.models.names() or 'package.module:function'."
        ) from e


def input_shape(config: ml_collections.ConfigDict, batch: int = 1) -> tuple[int, ...]:
    """[batch, T, S, S, C]: C is 2 for a flow run (config.data.modality), else 3."""
    size = config.data.crop_size
    channels = 2 if config.data.get("modality", None) == "flow" else 3
    return (batch, config.data.num_frames, size, size, channels)


def init_variables(model: nn.Module, config: ml_collections.ConfigDict, rng: jax.Array) -> dict:
    params_rng, dropout_rng = jax.random.split(rng)
    variables = model.init(
        {"params": params_rng, "dropout": dropout_rng},
        jnp.zeros(input_shape(config), jnp.float32),
        train=False,
    )
    return {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}


def _new_state(model, tx, config, rng) -> TrainState:
    variables = init_variables(model, config, rng)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=variables["params"],
        batch_stats=variables["batch_stats"],
        opt_state=tx.init(variables["params"]),
    )


def create_state(
    model: nn.Module,
    tx: optax.GradientTransformation,
    config: ml_collections.ConfigDict,
    mesh,
    rng: jax.Array,
) -> TrainState:
    """Fresh state, initialised once under jit and laid out replicated on the mesh."""
    policy = CompilePolicy.from_config(config, runs_few_times=True)
    return policy.jit(
        lambda r: _new_state(model, tx, config, r), out_shardings=parallel.replicated(mesh)
    )(rng)


def abstract_state(
    model: nn.Module, tx: optax.GradientTransformation, config: ml_collections.ConfigDict, mesh
) -> TrainState:
    """Shapes, dtypes and (replicated) shardings of the state, without computing it."""
    shapes = jax.eval_shape(lambda r: _new_state(model, tx, config, r), jax.random.key(0))
    sharding = parallel.replicated(mesh)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)


def abstract_variables(model: nn.Module, config: ml_collections.ConfigDict, mesh) -> dict:
    shapes = jax.eval_shape(lambda r: init_variables(model, config, r), jax.random.key(0))
    sharding = parallel.replicated(mesh)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)


def count_params(params) -> int:
    return int(sum(x.size for x in jax.tree.leaves(params)))
