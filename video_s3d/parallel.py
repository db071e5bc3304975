"""Data parallelism: a 1-D device mesh and the moves between host-local and global arrays.

Every process owns the devices it can address; its input pipeline produces only the rows
of the global batch those devices hold. `host_to_global` stitches the per-process numpy
batches into one `jax.Array` sharded along the mesh axis `batch`; `global_to_host` is the
way back (each process gets its own rows), used for evaluation logits and metrics.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax import lax
from jax.experimental import multihost_utils
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from video_s3d.errors import UserError

BATCH_AXIS = "batch"


def make_mesh(devices: list[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (BATCH_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding of parameters and optimiser state: a full copy on every device."""
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Sharding of batches: the leading (batch) dimension split across the mesh."""
    return NamedSharding(mesh, P(BATCH_AXIS))


def check_global_batch(global_batch: int, mesh: Mesh, field: str = "config.batch_size") -> None:
    """Fails in one sentence when the global batch cannot be split evenly over the devices."""
    n = mesh.size
    if global_batch <= 0 or global_batch % n:
        suggestion = max(n, (global_batch // n) * n) if global_batch > 0 else n
        raise UserError(
            f"{field}={global_batch} is the global batch and must be a positive multiple of "
            f"the {n} devices in the mesh; set {field}={suggestion} or another multiple of {n}."
        )


def local_batch_size(global_batch: int, mesh: Mesh) -> int:
    """Rows of the global batch that this process feeds (its devices' share)."""
    check_global_batch(global_batch, mesh)
    local_devices = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
    return global_batch // mesh.size * local_devices


def host_to_global(batch: Any, mesh: Mesh) -> Any:
    """Host-local numpy batch (pytree) -> global arrays sharded along `batch`."""
    sharding = batch_sharded(mesh)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch
    )


def global_to_host(tree: Any, mesh: Mesh) -> Any:
    """Global batch-sharded arrays -> this process's rows as numpy, in feeding order."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, tree)
    local = multihost_utils.global_array_to_host_local_array(tree, mesh, P(BATCH_AXIS))
    return jax.tree.map(np.asarray, local)


def fused_pmean(tree: Any, axis_name: str = BATCH_AXIS) -> Any:
    """pmean of a whole pytree as ONE all-reduce of one flat vector (inside shard_map).

    XLA's all-reduce combiner usually merges per-leaf pmeans, but not reliably: with
    synchronised BatchNorm it merged some gradients into the backward pass's BN
    all-reduces (two gradient all-reduces per step, measured on a 2-layer net), and it
    splits above its size threshold. One flat vector makes it one collective by
    construction (tested on the compiled HLO in tests/test_parallel.py).
    """
    flat, unravel = ravel_pytree(tree)
    return unravel(lax.pmean(flat, axis_name))


def replicated_to_host(tree: Any) -> Any:
    """Replicated arrays (params, metrics) -> numpy, reading this process's first copy."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


def allgather_host(tree: Any) -> Any:
    """Concatenate equally-shaped per-process numpy arrays along axis 0 (all processes)."""
    if jax.process_count() == 1:
        return tree
    return jax.tree.map(
        lambda x: np.asarray(multihost_utils.process_allgather(x, tiled=True)), tree
    )
