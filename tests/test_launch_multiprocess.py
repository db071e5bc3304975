"""launch/multiprocess.py: two JAX processes x two CPU devices train together and agree.

Run as a module (`python -m tests.test_launch_multiprocess ...`) this file is also the
worker the launcher starts: it trains through train.train_and_evaluate exactly as
video_s3d.main does, then saves this process's own copy of the parameters so the test can
compare the processes with each other and with the collective orbax checkpoint.
"""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from tests.training_testing import small_config
from video_s3d import checkpointing, parallel, runtime, train, train_state

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Not imported from tests.conftest: this module is also the launched worker, and importing
# conftest there would set 8 host devices per process over the launcher's 2.
TINY = "synthetic_motion/motion_tiny"
STEPS = 3


def _worker_config(data_dir):
    return small_config(
        **{
            "data.name": TINY,
            "data.data_dir": data_dir,
            "num_train_steps": STEPS,
            "log_every_steps": 1,
            "checkpoint_every_steps": 2,
            "model.dropout_rate": 0.3,
            "sync_batch_norm": False,
        }
    )


def _worker(argv):
    if argv[0] == "fail_on_1":  # process 1 dies at once, process 0 would wait forever
        if os.environ[runtime.PROCESS_ID_ENV] == "1":
            print("process 1 failing on purpose", flush=True)
            sys.exit(3)
        time.sleep(600)
        return
    _, workdir, data_dir = argv
    runtime.maybe_initialize_distributed()
    state = train.train_and_evaluate(_worker_config(data_dir), workdir)
    copies = {}
    for i, (path, leaf) in enumerate(jax.tree_util.tree_leaves_with_path(state.variables)):
        for d, shard in enumerate(leaf.addressable_shards):  # every local device's copy
            copies[f"{i}/{d}"] = np.asarray(shard.data)
    np.savez(os.path.join(workdir, f"variables_process_{jax.process_index()}.npz"), **copies)


def _launch(*args, timeout=600):
    # A session of its own: if the launcher hangs, the whole process group is killed.
    launcher = subprocess.Popen(
        [sys.executable, "-m", "launch.multiprocess", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
        start_new_session=True,
    )
    try:
        stdout, stderr = launcher.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.communicate()
        raise
    return subprocess.CompletedProcess(launcher.args, launcher.returncode, stdout, stderr)


@pytest.mark.slow
def test_two_processes_of_two_devices_train_to_identical_parameters(data_dir, tmp_path):
    workdir = str(tmp_path / "run")
    done = _launch(
        "--num_processes=2",
        "--devices_per_process=2",
        "--module=tests.test_launch_multiprocess",
        "--",
        "train",
        workdir,
        data_dir,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(l.startswith("[p0] ") for l in lines) and any(l.startswith("[p1] ") for l in lines)
    # Process 0 alone reports; it saw all 4 devices of both processes.
    assert any("4 devices (2 processes)" in l for l in lines if l.startswith("[p0] "))
    assert not any("step " in l for l in lines if l.startswith("[p1] "))

    p0 = np.load(os.path.join(workdir, "variables_process_0.npz"))
    p1 = np.load(os.path.join(workdir, "variables_process_1.npz"))
    assert sorted(p0.files) == sorted(p1.files) and len(p0.files) > 8
    for key in p0.files:  # both devices of both processes hold the same parameters and BN stats
        np.testing.assert_array_equal(p0[key], p1[key], err_msg=key)
        np.testing.assert_array_equal(p0[key], p0[key.split("/")[0] + "/0"], err_msg=key)

    config = _worker_config(data_dir)
    mesh = parallel.make_mesh(jax.devices()[:4])
    ckpt = checkpointing.Checkpoints(workdir)
    assert ckpt.latest_step() == STEPS
    saved = ckpt.restore_model(
        STEPS, train_state.abstract_variables(train_state.create_model(config, 10), config, mesh)
    )
    ckpt.close()
    for i, leaf in enumerate(jax.tree.leaves(saved)):
        np.testing.assert_array_equal(np.asarray(leaf), p0[f"{i}/0"])
    assert os.path.exists(os.path.join(workdir, "result.json"))


def test_one_failing_process_stops_the_others_and_the_launch_fails(tmp_path):
    started = time.time()
    done = _launch(
        "--num_processes=2",
        "--devices_per_process=1",
        "--module=tests.test_launch_multiprocess",
        "--",
        "fail_on_1",
        timeout=90,
    )
    assert done.returncode == 3
    assert "[p1] process 1 failing on purpose" in done.stdout
    assert "p1 (exit 3)" in done.stderr
    assert time.time() - started < 60  # process 0 was stopped, not waited for


if __name__ == "__main__":
    _worker(sys.argv[1:])
