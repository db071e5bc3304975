"""Data parallelism: mesh and array moves, one train step on 1 device == on 8 devices, and
one gradient all-reduce per step (compiled HLO)."""

import re

import jax
import numpy as np
import pytest

from tests.training_testing import build_train_step, one_train_step, random_batch, small_config
from video_s3d import optim, parallel, train, train_state


def test_host_batches_become_batch_sharded_global_arrays_and_back():
    mesh = parallel.make_mesh()
    assert mesh.axis_names == ("batch",) and mesh.size == 8
    batch = {
        "video": np.arange(16 * 2, dtype=np.float32).reshape(16, 2),
        "label": np.arange(16, dtype=np.int32),
    }
    global_batch = parallel.host_to_global(batch, mesh)
    assert global_batch["video"].shape == (16, 2)
    assert global_batch["video"].sharding.spec == parallel.batch_sharded(mesh).spec
    # Each device holds two consecutive rows.
    shard = global_batch["label"].addressable_shards[3]
    np.testing.assert_array_equal(np.asarray(shard.data), [6, 7])
    back = parallel.global_to_host(global_batch, mesh)
    np.testing.assert_array_equal(back["video"], batch["video"])
    assert parallel.local_batch_size(16, mesh) == 16  # one process feeds all 8 devices
    replicated = jax.device_put(np.ones(3), parallel.replicated(mesh))
    np.testing.assert_array_equal(parallel.replicated_to_host(replicated), np.ones(3))
    assert parallel.allgather_host({"x": np.ones(2)})["x"].shape == (2,)  # one process: as is


def test_a_global_batch_that_does_not_split_evenly_is_one_sentence():
    mesh = parallel.make_mesh()
    with pytest.raises(
        ValueError,
        match=r"config.batch_size=20 is the global batch and must be a "
        r"positive multiple of the 8 devices in the mesh; set "
        r"config.batch_size=16",
    ):
        parallel.check_global_batch(20, mesh)
    with pytest.raises(ValueError, match="config.eval_batch_size=0"):
        parallel.check_global_batch(0, mesh, "config.eval_batch_size")


def test_one_step_on_one_and_eight_devices_matches_with_synchronised_batch_norm():
    # No warm-up so the first step moves the parameters; weight decay on everything.
    config = small_config(**{"optim.warmup_steps": 0, "optim.decay_bn_and_bias": True})
    batch = random_batch(config, 16)
    one, m1 = one_train_step(config, jax.devices()[:1], batch)
    eight, m8 = one_train_step(config, jax.devices()[:8], batch)
    # Same global batch: identical up to float32 reduction order.
    np.testing.assert_allclose(float(m1["loss"]), float(m8["loss"]), rtol=1e-6)
    np.testing.assert_allclose(float(m1["accuracy"]), float(m8["accuracy"]))
    tol = dict(rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(one.variables), jax.tree.leaves(eight.variables)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), **tol)
    initial = train_state.create_state(
        train_state.create_model(config, 10),
        optim.make_optimizer(config.optim, 4),
        config,
        parallel.make_mesh(jax.devices()[:1]),
        jax.random.key(0),
    )
    moved = [
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(initial.params))
    ]
    assert min(moved) > 1e-4  # the comparison above is not between two untouched states


def test_per_device_batch_norm_statistics_are_averaged_so_replicas_agree():
    config = small_config(sync_batch_norm=False)
    state, metrics = one_train_step(config, jax.devices()[:8], random_batch(config, 16))
    for leaf in jax.tree.leaves(state.variables):
        copies = [np.asarray(shard.data) for shard in leaf.addressable_shards]
        assert len(copies) == 8
        for copy in copies[1:]:
            np.testing.assert_array_equal(copy, copies[0])
    assert np.isfinite(float(metrics["loss"]))


def _compiled_all_reduces(config):
    """(result shapes) of every all-reduce in the compiled 8-device train step."""
    mesh, state, step = build_train_step(config, jax.devices()[:8])
    batch = parallel.host_to_global(random_batch(config, 16), mesh)
    hlo = step.lower(state, batch).compile().as_text()
    lines = [line for line in hlo.splitlines() if re.search(r"= .* all-reduce(-start)?\(", line)]
    num_params = sum(leaf.size for leaf in jax.tree.leaves(state.params))
    return [line.split(" all-reduce")[0] for line in lines], num_params


@pytest.mark.parametrize("sync_batch_norm", [False, True])
def test_every_gradient_travels_in_one_all_reduce_per_step(sync_batch_norm):
    results, num_params = _compiled_all_reduces(small_config(sync_batch_norm=sync_batch_norm))
    carrying_gradients = [r for r in results if f"f32[{num_params}]" in r]
    assert len(carrying_gradients) == 1, results
    if sync_batch_norm:
        # The forward pass's BN statistics and their backward pass are all-reduces of their own
        # (2 BN layers here); none of them is parameter-sized.
        assert all(r == carrying_gradients[0] or f"[{num_params}]" not in r for r in results)
    else:
        # Gradients, averaged BN statistics and metrics: XLA combines them all into one.
        assert len(results) == 1, results
