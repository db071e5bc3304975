"""launch/slurm.py: the template renders to a script bash accepts, and the script, run under
stand-ins for SLURM's commands, starts each process with the right jax.distributed identity."""

import os
import shlex
import stat
import subprocess

import pytest

from experiments import runs as runs_lib
from launch import slurm, sweep
from video_s3d import runtime

SWEEP = "experiments/sweeps/kinetics400.py:seeds=2"


def _executable(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_every_script_of_a_sweep_renders_and_passes_bash_n(tmp_path):
    paths = []
    slurm.main(
        [
            f"--sweep={SWEEP}",
            f"--workdir={tmp_path}/runs",
            "--nodes=2",
            "--partition=gpu",
            "--account=vision",
            "--sbatch_option=--constraint=h100",
        ]
    )
    expected = runs_lib.load_sweep(SWEEP)
    for run in expected:
        path = tmp_path / "runs" / run.name / slurm.SCRIPT_NAME
        script = path.read_text()
        assert "{{" not in script
        assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=8" in script
        assert "#SBATCH --partition=gpu" in script and "#SBATCH --account=vision" in script
        assert "#SBATCH --constraint=h100" in script
        assert f"#SBATCH --output={tmp_path}/runs/{run.name}/slurm-%j.out" in script
        assert shlex.join(run.main_args(f"{tmp_path}/runs")) in script
        subprocess.run(["bash", "-n", str(path)], check=True)
        paths.append(path)
    assert len(paths) == len(expected) == 6


@pytest.mark.parametrize("process_per, tasks_per_node", [("gpu", 2), ("node", 1)])
def test_script_gives_each_process_its_distributed_identity(tmp_path, process_per, tasks_per_node):
    """Runs the rendered script with fake scontrol / srun / python: two nodes, srun starting
    every task with its own SLURM_PROCID and SLURM_LOCALID, as SLURM does."""
    bin_dir = tmp_path / "bin"
    _executable(
        bin_dir / "scontrol",
        '#!/bin/bash\n[ "$1 $2 $3" = "show hostnames gpu[07-08]" ] && printf "gpu07\\ngpu08\\n"\n',
    )
    _executable(
        bin_dir / "srun",
        "#!/bin/bash\n"
        # drop srun's own options, then start nodes x tasks_per_node tasks
        'while [[ "$1" == --* ]]; do shift; done\n'
        f"per_node={tasks_per_node}; total=$((2 * per_node))\n"
        "for ((i = 0; i < total; i++)); do\n"
        '  SLURM_NTASKS=$total SLURM_PROCID=$i SLURM_LOCALID=$((i % per_node)) "$@" || exit 1\n'
        "done\n",
    )
    report = tmp_path / "processes.txt"
    # The variables video_s3d.runtime reads to call jax.distributed.initialize.
    identity = " ".join(
        f"${name}"
        for name in (runtime.COORDINATOR_ENV, runtime.NUM_PROCESSES_ENV, runtime.PROCESS_ID_ENV)
    )
    python = _executable(
        tmp_path / "fake python",
        "#!/bin/bash\n"
        f'echo "{identity} gpu=${{CUDA_VISIBLE_DEVICES:-all}} $*" '
        f">> {shlex.quote(str(report))}\n",
    )
    workdir = tmp_path / "runs" / "k400_s3dg"
    slurm.main(
        [
            "--config=experiments/kinetics400.py:model=s3dg,batch=64",
            f"--workdir={workdir}",
            "--nodes=2",
            "--gpus_per_node=2",
            f"--process_per={process_per}",
            f"--python={python}",
            "--data_dir=/data/tfds",
        ]
    )
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_JOB_ID": "1234",
        "SLURM_JOB_NODELIST": "gpu[07-08]",
        "SLURM_NTASKS": str(2 * tasks_per_node),
    }
    env.pop("CUDA_VISIBLE_DEVICES", None)
    done = subprocess.run(
        ["bash", str(workdir / slurm.SCRIPT_NAME)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "coordinator gpu07:21234" in done.stdout
    lines = report.read_text().splitlines()
    assert len(lines) == 2 * tasks_per_node
    for process_id, line in enumerate(lines):
        coordinator, count, pid, gpu, *args = line.split(" ")
        assert (coordinator, count, pid) == (
            "gpu07:21234",
            str(2 * tasks_per_node),
            str(process_id),
        )
        assert gpu == (f"gpu={process_id % 2}" if process_per == "gpu" else "gpu=all")
        assert args == [
            "-m",
            "video_s3d.main",
            "--config=experiments/kinetics400.py:model=s3dg,batch=64",
            f"--workdir={workdir}",
        ]


def test_submit_calls_sbatch_per_run(tmp_path, monkeypatch, capsys):
    log = tmp_path / "sbatch.log"
    _executable(
        tmp_path / "bin" / "sbatch",
        f'#!/bin/bash\necho "$1" >> {log}\necho "Submitted batch job 42"\n',
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    sweep.main(
        [
            "--launcher=slurm",
            f"--sweep={SWEEP}",
            f"--workdir={tmp_path}/runs",
            "--submit",
            "--only=-s0$",
        ]
    )
    submitted = log.read_text().splitlines()
    assert [os.path.basename(os.path.dirname(p)) for p in submitted] == [
        "i3d-s0",
        "s3d-s0",
        "s3dg-s0",
    ]
    assert capsys.readouterr().out.count("Submitted batch job 42") == 3


def test_dry_run_writes_nothing(tmp_path, capsys):
    slurm.main([f"--sweep={SWEEP}", f"--workdir={tmp_path}/runs", "--dry_run", "--only=i3d-s1"])
    out = capsys.readouterr().out
    assert "#!/bin/bash" in out and f"sbatch {tmp_path}/runs/i3d-s1/slurm.sbatch" in out
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--time=two days"], "not a SLURM time"),
        (["--nodes=0"], "at least 1"),
    ],
)
def test_bad_arguments_are_one_sentence(tmp_path, extra, message):
    with pytest.raises(ValueError, match=message):
        slurm.main([f"--sweep={SWEEP}", f"--workdir={tmp_path}", *extra])


def test_gcs_workdir_is_refused():
    with pytest.raises(ValueError, match="shared file system"):
        slurm.main([f"--sweep={SWEEP}", "--workdir=gs://bucket/runs"])
