"""Helpers shared by the training tests (not a test module): a small model and config.

`small_video_net` is a throwaway video model (two 3-D conv + BatchNorm layers) that compiles
in seconds; training tests use it through config.model.name=SMALL_MODEL
(train_state.create_model imports 'module:function' names), also in subprocesses started
from the repository root.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from experiments import synthetic_motion
from video_s3d import optim, parallel, train, train_state

SMALL_MODEL = "tests.training_testing:small_video_net"


class SmallVideoNet(nn.Module):
    num_classes: int
    dtype: str = "float32"
    bn_axis_name: str | None = None
    dropout_rate: float = 0.0

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.astype(self.dtype)
        for i, features in enumerate((8, 16)):
            x = nn.Conv(
                features,
                (3, 3, 3),
                strides=(1, 2, 2),
                use_bias=False,
                dtype=self.dtype,
                name=f"conv{i}",
            )(x)
            x = nn.BatchNorm(
                use_running_average=not train,
                axis_name=self.bn_axis_name,
                momentum=0.9,
                epsilon=1e-3,
                dtype=self.dtype,
                name=f"bn{i}",
            )(x)
            x = nn.relu(x)
        x = jnp.mean(x, axis=(1, 2, 3))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x).astype(jnp.float32)


def small_video_net(
    num_classes,
    *,
    dtype="float32",
    bn_axis_name=None,
    dropout_rate=0.0,
    remat=False,
    kernel_init="tf_slim",
):
    # Takes every models.create option a config's `model` group can hold; these two do nothing
    # here (nothing worth rematerialising; flax's default kernel initialiser).
    del remat, kernel_init
    return SmallVideoNet(
        num_classes, dtype=dtype, bn_axis_name=bn_axis_name, dropout_rate=dropout_rate
    )


def small_config(**overrides):
    """The default config on in-memory clips with the small model: seconds per run."""
    config = synthetic_motion.get_config("in_memory,runlocal")
    config.model.name = SMALL_MODEL
    config.model.dropout_rate = 0.0
    config.data.num_frames = 4
    config.data.crop_size = 16
    config.data.num_eval_videos = 16
    config.batch_size = 16
    config.eval_batch_size = 16
    config.num_train_steps = 4
    config.log_every_steps = 2
    config.checkpoint_every_steps = 2
    config.reverse_time_eval = False
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return config


def build_train_step(config, devices):
    """(mesh, fresh state, jitted train step) for `config` on `devices`, built as the trainer
    builds them (label smoothing 0.1, seed 0)."""
    mesh = parallel.make_mesh(devices)
    model = train_state.create_model(config, config.data.num_classes)
    tx = optim.make_optimizer(config.optim, config.num_train_steps)
    state = train_state.create_state(model, tx, config, mesh, jax.random.key(0))
    step = train.make_train_step(
        model,
        tx,
        optim.make_schedule(config.optim, config.num_train_steps),
        mesh,
        num_classes=config.data.num_classes,
        label_smoothing=0.1,
        sync_batch_norm=config.sync_batch_norm,
        freeze_batch_norm=False,
        seed=0,
    )
    return mesh, state, step


def one_train_step(config, devices, batch):
    mesh, state, step = build_train_step(config, devices)
    return step(state, parallel.host_to_global(batch, mesh))


def random_batch(config, n):
    rng = np.random.default_rng(0)
    return {
        "video": rng.uniform(
            -1, 1, (n, config.data.num_frames, config.data.crop_size, config.data.crop_size, 3)
        ).astype(np.float32),
        "label": rng.integers(0, config.data.num_classes, n).astype(np.int32),
    }
