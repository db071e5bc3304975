"""Test-wide environment: 8 simulated CPU devices, TensorFlow kept off accelerators.

The XLA flag must be set before JAX is imported anywhere, so it lives here, at the
top of the first module pytest imports.
"""
import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import tensorflow as tf  # noqa: E402

# tf.data only: JAX owns every accelerator.
tf.config.set_visible_devices([], "GPU")
