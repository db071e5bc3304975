"""Helpers shared by the model tests (not a test module)."""

import functools
import math

import flax
import jax
import jax.numpy as jnp
import numpy as np

# Correctness tests need no fast code; LLVM -O0 compiles ~2.5x faster on XLA:CPU.
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def lively(variables, seed: int = 0):
    """Random variables (any values or just shapes in) that keep activations O(1) through
    the whole network.

    The TF-Slim init (std 0.01 kernels, BN statistics 0 / 1) shrinks activations ~100x
    per layer in eval mode, so deep endpoints are ~0 and any equality test there would
    pass vacuously. He-scaled kernels, spread BN statistics and biases fix that.
    """
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables))
    rng = np.random.default_rng(seed)  # numpy: no XLA compile per parameter shape
    for path, leaf in sorted(flat.items()):
        shape, name = leaf.shape, path[-1]
        if name == "kernel" and len(shape) == 5:
            value = rng.normal(size=shape) * (2.0 / math.prod(shape[:-1])) ** 0.5
        elif name == "kernel":  # gating
            value = rng.normal(size=shape) / shape[0] ** 0.5
        elif name == "mean":
            value = 0.1 * rng.normal(size=shape)
        elif name == "var":
            value = rng.uniform(0.5, 1.5, size=shape)
        elif name == "scale":
            value = 1.0 + 0.1 * rng.normal(size=shape)
        else:
            value = 0.1 * rng.normal(size=shape)
        flat[path] = jnp.asarray(value, jnp.float32)
    return flax.traverse_util.unflatten_dict(flat)
