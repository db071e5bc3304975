"""Exact resume: SIGTERM a training process mid-run, restart it, and compare with a run that
never stopped. Real data (the tiny synthetic dataset through tf.data), dropout on, async
checkpoints: the final parameters must be bitwise equal (same device count, CPU)."""

import os
import re
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.training_testing import SMALL_MODEL, small_config
from video_s3d import checkpointing, parallel, train_state

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from tests.conftest import TINY_MOTION as TINY

STEPS = 24


def _command(workdir, data_dir):
    return [
        sys.executable,
        "-u",
        "-m",
        "video_s3d.main",
        "--config=experiments/synthetic_motion.py:runlocal",
        f"--workdir={workdir}",
        f"--config.model.name={SMALL_MODEL}",
        "--config.model.dropout_rate=0.3",
        f"--config.data.name={TINY}",
        f"--config.data.data_dir={data_dir}",
        "--config.data.num_frames=8",
        "--config.data.crop_size=32",
        f"--config.num_train_steps={STEPS}",
        "--config.log_every_steps=1",
        "--config.checkpoint_every_steps=10",
        "--config.eval_every_steps=0",
        "--config.reverse_time_eval=false",
    ]


def _environment(cache_dir):
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        JAX_PLATFORMS="cpu",
        CUDA_VISIBLE_DEVICES="",
        XLA_FLAGS="--xla_force_host_platform_device_count=8",
        JAX_COMPILATION_CACHE_DIR=cache_dir,
    )
    return env


def _final_variables(workdir):
    config = small_config()
    mesh = parallel.make_mesh(jax.devices()[:8])
    model = train_state.create_model(config, 10)
    ckpt = checkpointing.Checkpoints(str(workdir))
    assert ckpt.latest_step() == STEPS
    variables = ckpt.restore_model(STEPS, train_state.abstract_variables(model, config, mesh))
    ckpt.close()
    return jax.tree.map(np.asarray, variables)


@pytest.mark.slow
def test_sigterm_mid_run_then_restart_matches_an_uninterrupted_run(data_dir, tmp_path):
    env = _environment(str(tmp_path / "xla_cache"))
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    done = subprocess.run(
        _command(straight, data_dir), cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr

    child = subprocess.Popen(
        _command(interrupted, data_dir),
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = []
    for line in child.stdout:
        output.append(line)
        progress = re.match(r"step\s+(\d+)/", line)
        if progress and int(progress.group(1)) >= 3 and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            break
    output.extend(child.stdout)
    assert child.wait(timeout=600) == 0, "".join(output)
    stopped = re.search(r"SIGTERM: saved step (\d+)", "".join(output))
    assert stopped, "".join(output)
    stop_step = int(stopped.group(1))
    assert 3 <= stop_step < STEPS
    assert not (interrupted / "result.json").exists()

    resumed = subprocess.run(
        _command(interrupted, data_dir),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resumed from {interrupted / 'checkpoints'} at step {stop_step}" in resumed.stdout

    a, b = _final_variables(straight), _final_variables(interrupted)
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))
