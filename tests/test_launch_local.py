"""launch/local.py: environment, dry run, a real short run with its log file, exit status."""

import os
import subprocess
import sys

import pytest

from launch import local
from tests.training_testing import SMALL_MODEL

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _local(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "launch.local", *args],
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=timeout,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
    )


def test_environment_replaces_the_device_count_and_keeps_other_xla_flags():
    env = local.run_environment(
        cpu_devices=3,
        gpu_memory_fraction=0.5,
        base={"XLA_FLAGS": "--xla_force_host_platform_device_count=8 --xla_dump_to=/tmp/x"},
    )
    assert env["XLA_FLAGS"].split() == [
        "--xla_dump_to=/tmp/x",
        "--xla_force_host_platform_device_count=3",
    ]
    assert env["JAX_PLATFORMS"] == "cpu" and env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.5"
    assert local.REPO_ROOT in env["PYTHONPATH"].split(os.pathsep)
    untouched = local.run_environment(base={"XLA_FLAGS": "--xla_dump_to=/tmp/x"})
    assert untouched["XLA_FLAGS"] == "--xla_dump_to=/tmp/x" and "JAX_PLATFORMS" not in untouched


def test_dry_run_prints_the_command_and_a_missing_run_is_a_usage_error(tmp_path, capsys):
    assert (
        local.main(
            ["--dry_run", "--", "--config=experiments/synthetic_motion.py", f"--workdir={tmp_path}"]
        )
        == 0
    )
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith(
            f"-m video_s3d.main --config=experiments/synthetic_motion.py --workdir={tmp_path}"
        )
    )
    with pytest.raises(SystemExit):
        local.main(["--cpu_devices=2"])
    assert "pass the run after --" in capsys.readouterr().err


@pytest.mark.slow
def test_a_short_run_logs_to_the_workdir_and_failures_keep_their_exit_status(tmp_path):
    workdir = tmp_path / "run"
    done = _local(
        "--cpu_devices=2",
        "--",
        "--config=experiments/synthetic_motion.py:in_memory,runlocal",
        f"--workdir={workdir}",
        f"--config.model.name={SMALL_MODEL}",
        "--config.num_train_steps=2",
        "--config.log_every_steps=1",
        "--config.data.num_frames=4",
        "--config.data.crop_size=16",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    log = (workdir / "log.txt").read_text()
    assert "2 devices" in log and "step      2/2" in log and "wrote" in log
    assert (workdir / "result.json").exists()

    failed = _local(
        "--",
        "--config=experiments/synthetic_motion.py",
        f"--workdir={workdir}",
        "--config.batch_size=3",
        "--config.model.name=tiny_i2d",
    )
    assert failed.returncode == 1
    assert "config.batch_size=3 is the global batch" in failed.stdout  # the run's own sentence
    assert "exited with status 1" in failed.stderr
