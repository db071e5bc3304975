"""Every named model builds, initialises and runs forward and backward at tiny size.

What runs. The 98 names are 41 distinct networks: a full-width name at tiny size is its
tiny_ twin (same spec but the width multiplier, which the override sets), and the sweep
ends are base models (top_heavy_i3d_0 is i3d, bottom_heavy_i3d_0 is i2d, ...). Each
distinct network is initialised abstractly (`model.init` traced in full by eval_shape:
every variable created with its initialiser's shape and dtype) and given O(1) values
(`lively`), then runs a train-mode forward and backward pass for real: finite loss,
finite gradients of the right shape for every parameter, new BN statistics.

Why eagerly. Jitted, one network costs 27-34 CPU-s of tracing and XLA:CPU compiling
(init + train step) even at LLVM -O0 (measured for tiny_i3d, tiny_s3dg), ~20 CPU-min
for all 41. Run op by op instead, each distinct (op, shapes) compiles once per process
and every later network reuses it: the first networks of a family pay ~1 min of such
compiles, each later one ~3 s of dispatch plus ~2 s to trace the abstract init; all 41
took 3.8 CPU-min here. The networks run in two groups (I3D sweeps, S3D sweeps), one
pytest item each, so that pytest-xdist can put them on two workers.
"""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from models_testing import lively

from video_s3d import models
from video_s3d.models import zoo

CLIP = (2, 5, 17, 17, 3)  # batch 2: train-mode BN needs 2 values per channel at Mixed_5c


def tiny_spec(name: str):
    """The network `name` runs as at tiny size."""
    return models.get_spec(name).replace(
        width_multiplier=zoo.TINY_WIDTH, min_channels=zoo.TINY_MIN_CHANNELS
    )


def networks() -> dict:
    """{tiny spec: [every name that runs as it]}, in registry order."""
    groups = collections.defaultdict(list)
    for name in models.names():
        groups[tiny_spec(name)].append(name)
    return dict(groups)


def _family(names: list[str]) -> str:
    return "i3d" if any(n in ("i2d", "i3d") or "_i3d_" in n for n in names) else "s3d"


def test_every_name_builds_and_aliases_only_identical_networks():
    groups = networks()
    assert len(models.names()) == 98 and len(groups) == 41
    for name in models.names():
        model = models.create(name, 5)
        assert model.spec == models.get_spec(name)
        if not name.startswith(zoo.TINY_PREFIX):  # the width override is the tiny twin
            assert models.create(name, 5, width_multiplier=1 / 8).spec == models.get_spec(
                "tiny_" + name
            )
    aliases = {names[0]: names[1:] for names in groups.values() if len(names) > 2}
    assert aliases == {  # the sweeps' ends are the base models, nothing else coincides
        "i2d": [
            "top_heavy_i3d_10",
            "bottom_heavy_i3d_0",
            "top_heavy_s3d_10",
            "bottom_heavy_s3d_0",
            "tiny_i2d",
            "tiny_top_heavy_i3d_10",
            "tiny_bottom_heavy_i3d_0",
            "tiny_top_heavy_s3d_10",
            "tiny_bottom_heavy_s3d_0",
        ],
        "i3d": [
            "top_heavy_i3d_0",
            "bottom_heavy_i3d_10",
            "tiny_i3d",
            "tiny_top_heavy_i3d_0",
            "tiny_bottom_heavy_i3d_10",
        ],
        "s3d": [
            "top_heavy_s3d_0",
            "bottom_heavy_s3d_10",
            "tiny_s3d",
            "tiny_top_heavy_s3d_0",
            "tiny_bottom_heavy_s3d_10",
        ],
    }
    counts = collections.Counter(_family(names) for names in groups.values())
    assert counts == {"i3d": 20, "s3d": 21}


def _forward_backward(spec):
    model = models.create_from_spec(spec, 5)
    x = jax.random.uniform(jax.random.key(0), CLIP, minval=-1, maxval=1)
    variables = lively(jax.eval_shape(lambda x: model.init(jax.random.key(1), x, train=False), x))

    def loss(params, batch_stats):
        logits, new_state = model.apply(
            {"params": params, "batch_stats": batch_stats},
            x,
            train=True,
            mutable=["batch_stats"],
            rngs={"dropout": jax.random.key(2)},
        )
        return jnp.mean(logits**2), new_state

    (value, new_state), grads = jax.value_and_grad(loss, has_aux=True)(
        variables["params"], variables["batch_stats"]
    )
    return variables, value, grads, new_state["batch_stats"]


@pytest.mark.parametrize("family", ["i3d", "s3d"])
def test_every_network_runs_forward_and_backward(family):
    ran = []
    for spec, names in networks().items():
        if _family(names) != family:
            continue
        variables, loss, grads, batch_stats = _forward_backward(spec)
        label = f"{names[0]} (also {', '.join(names[1:])})" if names[1:] else names[0]
        assert np.isfinite(float(loss)) and float(loss) > 0, label
        assert jax.tree.map(jnp.shape, grads) == jax.tree.map(jnp.shape, variables["params"]), label
        assert jax.tree.map(jnp.shape, batch_stats) == jax.tree.map(
            jnp.shape, variables["batch_stats"]
        )
        for layer, tree in grads["backbone"].items():  # every layer gets a real gradient
            leaves = jax.tree.leaves(tree)
            assert all(np.all(np.isfinite(g)) for g in leaves), (label, layer)
            assert any(np.any(g != 0) for g in leaves), (label, layer)
        ran.extend(names)
    assert len(ran) == {"i3d": 52, "s3d": 46}[family]  # 98 in all
