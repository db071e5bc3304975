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

import pytest  # noqa: E402

TINY_MOTION = "synthetic_motion/motion_tiny"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A TFDS data_dir holding synthetic_motion/motion_tiny, generated once per test process.

    Tests may build other generated datasets into it (the runlocal configs build appearance_tiny).
    """
    from video_s3d.data import pipeline  # imports TensorFlow Datasets: only when a test asks

    directory = str(tmp_path_factory.mktemp("tfds"))
    pipeline.ensure_built(TINY_MOTION, data_dir=directory)
    return directory


TINY_MOTION_FLOW = "synthetic_motion/motion_tiny_flow"


@pytest.fixture(scope="session")
def flow_data_dir(data_dir):
    """`data_dir` with synthetic_motion/motion_tiny_flow (the TV-L1 flow of 88 of motion_tiny's
    clips) built as well: a few minutes of TV-L1 on a CPU, once per test process."""
    from video_s3d.data import pipeline

    pipeline.ensure_built(TINY_MOTION_FLOW, data_dir=data_dir)
    return data_dir
