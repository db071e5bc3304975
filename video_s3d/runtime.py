"""Process set-up shared by every entry point: TensorFlow off the accelerators, multi-host start.

`launch/multiprocess.py` (and any cluster launcher) tells each process who it is through
the environment; `maybe_initialize_distributed` is the only place that reads it.
"""

from __future__ import annotations

import logging
import os

import jax
import ml_collections

COORDINATOR_ENV = "VIDEO_S3D_COORDINATOR"  # host:port of process 0
NUM_PROCESSES_ENV = "VIDEO_S3D_NUM_PROCESSES"
PROCESS_ID_ENV = "VIDEO_S3D_PROCESS_ID"


def hide_accelerators_from_tf() -> None:
    """tf.data must not grab GPU memory (or TPUs) that JAX needs."""
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")
    try:
        tf.config.set_visible_devices([], "TPU")
    except (RuntimeError, ValueError):
        pass  # no TPU support in this TF build


def maybe_initialize_distributed(
    config: ml_collections.ConfigDict | None = None, force: bool = False
) -> bool:
    """Calls jax.distributed.initialize when the environment or config.distributed asks.

    Environment (set by launch/multiprocess.py): explicit coordinator, process count and id.
    config.distributed=True (or force, from main's --multihost) without it: JAX's cluster
    auto-detection (TPU pod, SLURM, ...).
    """
    if os.environ.get(COORDINATOR_ENV):
        jax.distributed.initialize(
            coordinator_address=os.environ[COORDINATOR_ENV],
            num_processes=int(os.environ[NUM_PROCESSES_ENV]),
            process_id=int(os.environ[PROCESS_ID_ENV]),
        )
        return True
    if force or (config is not None and config.get("distributed", False)):
        jax.distributed.initialize()
        return True
    return False


# Library notices printed on every run that say nothing the user can act on: TFDS/TF
# deprecations of their own internals, and orbax asking for metrics at the checkpoints saved
# between evaluations (those are kept by recency, not by accuracy, on purpose).
_NOISE = ("deprecat", "did not provide metrics")


class _DropLibraryNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage().lower()
        return not any(text in message for text in _NOISE)


def quiet_library_notices() -> None:
    """Drops the notices above; everything else (e.g. 'Generating dataset...') still shows."""
    noise = _DropLibraryNoise()
    # On the loggers (absl's, which orbax and TFDS log through, and the root) and on the
    # root's handlers: without app.run there may be no handler yet (Python's last resort).
    for logger in (logging.getLogger("absl"), logging.getLogger()):
        logger.addFilter(noise)
    for handler in logging.getLogger().handlers:
        handler.addFilter(noise)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
