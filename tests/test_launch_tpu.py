"""launch/tpu_pod.py: the dry run prints a whole sweep's commands; a run drives gcloud in order."""

import os
import shlex
import stat
import tempfile

import pytest

from experiments import runs as runs_lib
from launch import sweep, tpu_pod

POD = [
    "--tpu=s3d-pod",
    "--zone=us-central2-b",
    "--accelerator_type=v4-32",
    "--data_dir=gs://bucket/tfds",
]
SWEEP = ["--sweep=experiments/sweeps/kinetics400.py:seeds=2", "--workdir=gs://bucket/runs/k400"]


def _dry_run_lines(capsys, argv):
    tpu_pod.main([*argv, "--dry_run"])
    return [
        line for line in capsys.readouterr().out.splitlines() if line and not line.startswith("#")
    ]


def _remote_command(gcloud_line: str) -> list[str]:
    argv = shlex.split(gcloud_line)
    command = [a for a in argv if a.startswith("--command=")]
    assert len(command) == 1, gcloud_line
    return shlex.split(command[0][len("--command=") :])


def test_dry_run_prints_every_command_of_a_sweep(capsys):
    lines = _dry_run_lines(capsys, POD + SWEEP)
    expected_runs = runs_lib.load_sweep("experiments/sweeps/kinetics400.py:seeds=2")
    assert len(expected_runs) == 6  # i3d, s3d, s3dg x 2 seeds
    # describe, create, pack, scp, setup, then one ssh per run
    assert len(lines) == 5 + len(expected_runs)
    describe, create, scp = (shlex.split(lines[i]) for i in (0, 1, 3))
    assert describe[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "describe", "s3d-pod"]
    assert "--zone=us-central2-b" in describe
    assert create[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "create", "s3d-pod"]
    assert "--accelerator-type=v4-32" in create and "--version=tpu-ubuntu2204-base" in create
    assert "git ls-files -co --exclude-standard | tar -czf" in lines[2]
    assert scp[4] == "scp" and "--worker=all" in scp and scp[6] == "s3d-pod:video_s3d-code.tar.gz"
    setup_command = " ".join(_remote_command(lines[4]))
    assert "tar -xzf" in setup_command and "jax[tpu]==" in setup_command

    for run, line in zip(expected_runs, lines[5:]):
        argv = shlex.split(line)
        assert argv[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "s3d-pod"]
        assert "--worker=all" in argv and "--zone=us-central2-b" in argv
        remote = _remote_command(line)
        assert remote[:3] == ["cd", "~/video_s3d", "&&"]
        assert "TFDS_DATA_DIR=gs://bucket/tfds" in remote
        main = remote[remote.index("-m") - 1 :]
        assert main[:3] == ["~/video_s3d_venv/bin/python", "-m", "video_s3d.main"]
        assert main[3:] == [*run.main_args("gs://bucket/runs/k400"), "--config.distributed=True"]
        assert f"--workdir=gs://bucket/runs/k400/{run.name}" in main


def test_sweep_launcher_hands_the_sweep_to_the_pod_launcher(capsys):
    sweep.main(["--launcher=tpu_pod", *POD, *SWEEP, "--only=s3dg-s1", "--dry_run"])
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("gcloud")]
    run_lines = [l for l in lines if "video_s3d.main" in l]
    assert (
        len(run_lines) == 1 and "model=s3dg" in run_lines[0] and "--config.seed=1" in run_lines[0]
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            POD + ["--config=experiments/kinetics400.py", "--workdir=runs/local"],
            "must be a gs:// path",
        ),
        (["--tpu=p", "--zone=z", "--accelerator_type=v9000"] + SWEEP, "not a known TPU slice type"),
        (POD + ["--sweep=experiments/sweeps/nope.py", "--workdir=gs://b/r"], "does not exist"),
        (POD + SWEEP + ["--only=no_such_run"], "No run name matches"),
    ],
)
def test_bad_arguments_are_one_sentence(argv, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        tpu_pod.main([*argv, "--dry_run"])


def _fake_gcloud(tmp_path, describe_status: int) -> str:
    """A gcloud that logs its arguments; `describe` answers with `describe_status`."""
    log = tmp_path / "gcloud.log"
    script = tmp_path / "bin" / "gcloud"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/bash\n"
        f"printf '%s\\0' \"$@\" >> {log}; echo >> {log}\n"
        f'if [ "$4" = describe ]; then echo READY; exit {describe_status}; fi\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(log)


def _logged_calls(log_path):
    with open(log_path) as f:
        return [line.strip("\n").strip("\0").split("\0") for line in f if line.strip()]


@pytest.mark.parametrize("slice_exists", [False, True])
def test_launch_runs_gcloud_in_order(tmp_path, monkeypatch, capsys, slice_exists):
    log = _fake_gcloud(tmp_path, describe_status=0 if slice_exists else 1)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    tpu_pod.main(
        [
            *POD,
            "--config=experiments/kinetics400.py:model=i3d",
            "--workdir=gs://bucket/runs/k400_i3d",
        ]
    )
    calls = _logged_calls(log)
    verbs = [call[3] for call in calls]
    assert verbs == ["describe"] + ([] if slice_exists else ["create"]) + ["scp", "ssh", "ssh"]
    archive = tmp_path / tpu_pod.CODE_ARCHIVE
    assert archive.exists() and archive.stat().st_size > 0  # the pack step really ran
    assert calls[-1][-1].endswith("--workdir=gs://bucket/runs/k400_i3d --config.distributed=True")
    assert ("reusing it" if slice_exists else "creating it") in capsys.readouterr().out


def test_launch_without_gcloud_says_what_to_do(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(FileNotFoundError, match="gcloud is not installed"):
        tpu_pod.main([*POD, *SWEEP])
