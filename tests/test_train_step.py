"""The train step and loop: NaN guard, precise BatchNorm, bfloat16 (tests/test_parallel.py: 1 vs 8 devices).

The small model and config live in tests/training_testing.py.
"""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.training_testing import one_train_step, random_batch, small_config
from video_s3d import optim, parallel, train, train_state


def test_nan_loss_stops_naming_the_step_and_last_good_checkpoint(tmp_path):
    config = small_config(**{"optim.learning_rate": 1e30, "optim.warmup_steps": 0,
                             "checkpoint_every_steps": 1, "num_train_steps": 6,
                             "log_every_steps": 1})
    with pytest.raises(train.NonFiniteLossError) as error:
        train.train_and_evaluate(config, str(tmp_path))
    message = str(error.value)
    bad_step = int(re.search(r"at step (\d+)", message).group(1))
    saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    # Every step before the bad one was checkpointed (keep_checkpoints=2), none after it.
    assert 2 <= bad_step <= 6 and saved == list(range(max(1, bad_step - 2), bad_step))
    assert f"last good checkpoint is step {bad_step - 1} " in message


def test_precise_batch_norm_recovers_each_batch_statistic_whatever_the_momentum():
    config = small_config(sync_batch_norm=True)
    mesh = parallel.make_mesh(jax.devices()[:8])
    model = train_state.create_model(config, 10)
    state = train_state.create_state(model, optim.make_optimizer(config.optim, 4), config, mesh,
                                     jax.random.key(0))
    batch = random_batch(config, 16)
    stats_step = train.make_batch_stats_step(model, mesh, sync_batch_norm=True)
    recovered = stats_step(state.variables, parallel.host_to_global(batch["video"], mesh))
    # Reference: one ordinary train-mode update (momentum 0.9) on one device, solved for the batch.
    plain = train_state.create_model(small_config(sync_batch_norm=False), 10)  # no axis name
    _, mutated = plain.apply(jax.device_get(state.variables), batch["video"], train=True,
                             mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)})
    before = jax.device_get(state.batch_stats)
    for r, a, b in zip(jax.tree.leaves(recovered), jax.tree.leaves(mutated["batch_stats"]),
                       jax.tree.leaves(before)):
        np.testing.assert_allclose(np.asarray(r), (np.asarray(a) - 0.9 * np.asarray(b)) / 0.1,
                                   rtol=2e-4, atol=1e-5)


def test_bfloat16_compute_keeps_float32_parameters_and_optimiser_state():
    config = small_config(**{"model.dtype": "bfloat16", "optim.warmup_steps": 0})
    state, metrics = one_train_step(config, jax.devices()[:8], random_batch(config, 16))
    assert {leaf.dtype for leaf in jax.tree.leaves(state.params)} == {jnp.dtype("float32")}
    assert {leaf.dtype for leaf in jax.tree.leaves(state.opt_state)
            if hasattr(leaf, "dtype") and leaf.ndim} == {jnp.dtype("float32")}
    assert np.isfinite(float(metrics["loss"])) and metrics["loss"].dtype == jnp.float32
