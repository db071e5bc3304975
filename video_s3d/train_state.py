"""The model from the config and the replicated training state around it."""
from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from video_s3d import parallel

@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any

    @property
    def variables(self) -> dict[str, Any]:
        return {"params": self.params, "batch_stats": self.batch_stats}


def compiler_options(config: ml_collections.ConfigDict | None = None) -> dict[str, Any] | None:
    """On CPU, XLA's backend optimisation level 0 compiles 2-3x faster at the same step time.

    (Measured on tiny_s3dg: init 140 s -> 32 s, train step 89 s -> 38 s on a loaded 2-core
    machine; convolutions run in library kernels either way, so speed is unchanged.)
    """
    fast = config.get("cpu_fast_compile", True) if config is not None else True
    if fast and jax.default_backend() == "cpu":
        return {"xla_backend_optimization_level": 0}
    return None


def create_model(config: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
    """`config.model` -> flax module; bfloat16 compute keeps float32 parameters."""
    from video_s3d import models  # models.create names the valid choices on a bad name/dtype
    return models.create(
        config.model.name, num_classes, dtype=config.model.dtype,
        # Synchronised BN averages batch statistics over the mesh axis inside the step.
        bn_axis_name=parallel.BATCH_AXIS if config.sync_batch_norm else None,
        dropout_rate=float(config.model.dropout_rate), remat=bool(config.model.remat))


def input_shape(config: ml_collections.ConfigDict, batch: int = 1) -> tuple[int, ...]:
    size = config.data.crop_size
    return (batch, config.data.num_frames, size, size, 3)


def init_variables(model: nn.Module, config: ml_collections.ConfigDict, rng: jax.Array) -> dict:
    params_rng, dropout_rng = jax.random.split(rng)
    variables = model.init({"params": params_rng, "dropout": dropout_rng},
                           jnp.zeros(input_shape(config), jnp.float32), train=False)
    return {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}


def _new_state(model, tx, config, rng) -> TrainState:
    variables = init_variables(model, config, rng)
    return TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                      batch_stats=variables["batch_stats"], opt_state=tx.init(variables["params"]))


def create_state(model: nn.Module, tx: optax.GradientTransformation,
                 config: ml_collections.ConfigDict, mesh, rng: jax.Array) -> TrainState:
    """Fresh state, initialised once under jit and laid out replicated on the mesh."""
    return jax.jit(lambda r: _new_state(model, tx, config, r), out_shardings=parallel.replicated(mesh),
                   compiler_options=compiler_options(config))(rng)


def abstract_state(model: nn.Module, tx: optax.GradientTransformation,
                   config: ml_collections.ConfigDict, mesh) -> TrainState:
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
