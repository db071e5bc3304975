"""Sweeps as data: every sweep file loads, every run's config and overrides resolve, and the
local runner starts the runs in order, skips finished ones and stops at a failure."""

import json
import os
import shutil
import stat
import sys

import pytest

from experiments import runs as runs_lib
from launch import sweep
from video_s3d import config_cli
from video_s3d.errors import UserError
from video_s3d.models import zoo

# Sweep files and the arguments they require (paths need not exist to resolve a config).
SWEEPS = {
    "experiments/sweeps/kinetics400.py": "seeds=2",
    "experiments/sweeps/heavy.py": "data_dir=/data/mini_k200_tfds,step=3",
    "experiments/sweeps/something_something_v2.py": "batch=64",
    "experiments/sweeps/something_something_v1.py": "",
    "experiments/sweeps/transfer.py": "init_from=/runs/k400/s3dg-s0",
    "experiments/sweeps/synthetic.py": "",
    "experiments/paper_study.py": "steps=7",
}


def test_every_sweep_file_is_listed_here():
    listed = {os.path.basename(p) for p in SWEEPS}
    on_disk = {
        f
        for f in os.listdir(os.path.join(runs_lib.REPO_ROOT, "experiments", "sweeps"))
        if f.endswith(".py") and f != "__init__.py"
    }
    assert on_disk <= listed


@pytest.mark.parametrize("path", sorted(SWEEPS))
def test_every_run_of_every_sweep_resolves(path, monkeypatch):
    monkeypatch.chdir(runs_lib.REPO_ROOT)  # configs are named relative to the repo root
    runs = runs_lib.load_sweep(f"{path}:{SWEEPS[path]}" if SWEEPS[path] else path)
    assert runs and len({r.name for r in runs}) == len(runs)
    for run in runs:
        argv = ["main", *run.main_args("/tmp/sweep")]
        assert config_cli.override_error(argv) is None, argv  # every --config.<key> exists
        config = config_cli.load_config_file(run.config_argument())
        zoo.get_spec(config.model.name)  # raises for an unknown model


def test_sweep_arguments_reach_the_runs():
    heavy = runs_lib.load_sweep(
        "experiments/sweeps/heavy.py:data_dir=/d,step=3,family=s3d,runlocal"
    )
    assert [r.name for r in heavy] == [
        "i2d-s0",
        "s3d-s0",
        "bottom_heavy_s3d_3-s0",
        "bottom_heavy_s3d_6-s0",
        "bottom_heavy_s3d_9-s0",
        "top_heavy_s3d_3-s0",
        "top_heavy_s3d_6-s0",
        "top_heavy_s3d_9-s0",
    ]
    assert (
        heavy[2].config_argument()
        == "experiments/mini_kinetics_heavy.py:model=bottom_heavy_s3d_3,data_dir=/d,runlocal"
    )
    study = runs_lib.load_sweep("experiments/paper_study.py:steps=7,seeds=2")
    # (4 models x 3 tasks + 4 heavy on each of the 2 ordered tasks) x 2 seeds
    assert len(study) == (4 * 3 + 4 * 2) * 2
    assert [run.seed for run in study] == [0] * 20 + [1] * 20  # seed by seed
    heavy_tasks = {run.name.split("-")[1] for run in study if "heavy" in run.name}
    assert heavy_tasks == {"order", "flash_order"}
    assert "--config.num_train_steps=7" in study[0].main_args("/r")
    # A 7-step run compiles fast; the default 2000-step runs compile for fast steps.
    assert "--config.cpu_fast_compile=True" in study[0].main_args("/r")
    assert "--config.cpu_fast_compile=False" in runs_lib.load_sweep("experiments/paper_study.py")[
        0
    ].main_args("/r")
    # `make table`'s quick version is a subset of the study: same names, same commands, so the
    # full study reuses its runs.
    full = {
        run.name: run.main_args("/r") for run in runs_lib.load_sweep("experiments/paper_study.py")
    }
    quick = runs_lib.load_sweep("experiments/paper_study.py:seeds=1,quick")
    # I2D, I3D, S3D, S3D-G on order; I2D and S3D on appearance.
    assert sorted(run.name for run in quick) == [
        f"tiny_{model}-{task}-s0"
        for model, task in (
            ("i2d", "appearance"),
            ("i2d", "order"),
            ("i3d", "order"),
            ("s3d", "appearance"),
            ("s3d", "order"),
            ("s3dg", "order"),
        )
    ]
    assert all(full[run.name] == run.main_args("/r") for run in quick)


@pytest.mark.parametrize(
    "spec, error, message",
    [
        ("experiments/sweeps/missing.py", FileNotFoundError, "does not exist"),
        ("experiments/sweeps/heavy.py", ValueError, "Pass data_dir="),
        (
            "experiments/sweeps/heavy.py:data_dir=/d,family=r2plus1d",
            ValueError,
            "family=r2plus1d is unknown",
        ),
        (
            "experiments/sweeps/kinetics400.py:seeed=2",
            ValueError,
            "Unknown config argument 'seeed'",
        ),
        ("experiments/runs.py", ValueError, "has no get_sweep"),
    ],
)
def test_bad_sweeps_say_what_to_do(spec, error, message):
    with pytest.raises(error, match=message):
        runs_lib.load_sweep(spec)


def test_duplicate_run_names_are_refused():
    twice = runs_lib.grid("experiments/kinetics400.py", models=["i3d", "i3d"])
    with pytest.raises(ValueError, match="appears twice"):
        runs_lib.check_unique_names(twice, "the test")


def _fake_python(tmp_path, fail_on: str = "", slow_s: float = 0.0, stop_on: str = "") -> str:
    """Stands in for `python -m video_s3d.main`: logs the workdir, writes result.json after
    `slow_s` seconds, fails at once for a workdir containing `fail_on`, and for one containing
    `stop_on` exits with status 0 but no result, as a run stopped by SIGINT does."""
    script = tmp_path / "python"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "workdir = next(a.split('=', 1)[1] for a in sys.argv if a.startswith('--workdir='))\n"
        f"open({str(tmp_path / 'calls.log')!r}, 'a').write(workdir + '\\n')\n"
        f"if {fail_on!r} and {fail_on!r} in workdir: sys.exit(3)\n"
        f"if {stop_on!r} and {stop_on!r} in workdir: sys.exit(0)\n"
        f"__import__('time').sleep({slow_s})\n"
        "os.makedirs(workdir, exist_ok=True)\n"
        "json.dump({'argv': sys.argv[1:]}, open(os.path.join(workdir, 'result.json'), 'w'))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_local_runner_runs_in_order_and_skips_finished_runs(tmp_path):
    runs = runs_lib.load_sweep("experiments/sweeps/kinetics400.py:runlocal")
    python, root, lines = _fake_python(tmp_path), str(tmp_path / "runs"), []
    started = sweep.run_locally(runs, root, python=python, log=lines.append)
    assert started == ["i3d-s0", "s3d-s0", "s3dg-s0"]
    result = json.loads((tmp_path / "runs" / "s3dg-s0" / "result.json").read_text())
    assert result["argv"] == ["-u", "-m", "video_s3d.main", *runs[2].main_args(root)]
    assert (tmp_path / "runs" / "s3dg-s0" / "log.txt").exists()  # launch.local keeps the output
    assert any(line.startswith("[3/3] s3dg-s0: done") for line in lines)
    assert any(
        line.startswith("[1/3] i3d-s0: done") and "2 left to train" in line for line in lines
    )
    # Started again: everything is finished, nothing runs.
    assert sweep.run_locally(runs, root, python=python, log=lines.append) == []
    assert (tmp_path / "calls.log").read_text().count("\n") == 3
    # One run removed: only it trains, and the estimate counts no skipped run as to go.
    shutil.rmtree(tmp_path / "runs" / "i3d-s0")
    lines.clear()
    assert sweep.run_locally(runs, root, python=python, log=lines.append) == ["i3d-s0"]
    assert any(
        line.startswith("[1/3] i3d-s0: done") and "0 left to train" in line for line in lines
    )


def test_local_runner_stops_at_the_first_failure(tmp_path):
    runs = runs_lib.load_sweep("experiments/sweeps/kinetics400.py:runlocal")
    python = _fake_python(tmp_path, fail_on="s3d-s0")
    with pytest.raises(RuntimeError, match="Run 's3d-s0' failed .exit status 3."):
        sweep.run_locally(runs, str(tmp_path / "runs"), python=python, log=lambda _: None)
    assert (tmp_path / "runs" / "i3d-s0" / "result.json").exists()
    assert not (tmp_path / "runs" / "s3dg-s0").exists()


@pytest.mark.parametrize("parallel", [1, 2])
def test_a_run_stopped_before_its_end_is_not_reported_done(tmp_path, parallel):
    """A run stopped by a signal checkpoints and exits with status 0 but writes no result: the
    sweep says it stopped (not "done in N s"), starts no later run, and records its time as
    unfinished, to be added to the sitting that finishes it."""
    if len(os.sched_getaffinity(0)) < parallel:
        pytest.skip(f"needs {parallel} CPU cores")
    runs = runs_lib.load_sweep("experiments/sweeps/kinetics400.py:runlocal")[:2]
    python, root, lines = _fake_python(tmp_path, stop_on="i3d-s0"), str(tmp_path / "r"), []
    with pytest.raises(RuntimeError, match="Run 'i3d-s0' stopped before finishing"):
        sweep.run_locally(runs, root, python=python, log=lines.append, parallel=parallel)
    assert any("i3d-s0: stopped before finishing" in line for line in lines)
    assert not any("i3d-s0: done" in line for line in lines)
    first = json.loads((tmp_path / "r" / "i3d-s0" / "run_time.json").read_text())
    assert first["finished"] is False and first["wall_s"] >= 0
    if parallel == 1:
        assert not (tmp_path / "r" / "s3d-s0").exists()  # never started
    # Started again, the run finishes: its time is both sittings'.
    (tmp_path / "r" / "i3d-s0" / "run_time.json").write_text(
        json.dumps({**first, "wall_s": 1000.0})
    )
    sweep.run_locally(runs, root, python=_fake_python(tmp_path), log=lines.append)
    total = json.loads((tmp_path / "r" / "i3d-s0" / "run_time.json").read_text())
    assert "finished" not in total and 1000.0 <= total["wall_s"] < 1000.0 + 60


def test_parallel_runs_each_get_their_own_cores(tmp_path):
    """--parallel: runs train at once, each pinned to a disjoint share of the cores, and each
    finished run records its wall time."""
    runs = runs_lib.load_sweep("experiments/sweeps/kinetics400.py:runlocal")
    cores = sorted(os.sched_getaffinity(0))
    parallel = min(2, len(cores))
    script = _fake_python(tmp_path)
    with open(script, "a") as f:  # also record the cores the run may use
        f.write("json.dump(sorted(os.sched_getaffinity(0)), open(workdir + '/cores', 'w'))\n")
    root, lines = str(tmp_path / "runs"), []
    started = sweep.run_locally(runs, root, python=script, log=lines.append, parallel=parallel)
    assert sorted(started) == ["i3d-s0", "s3d-s0", "s3dg-s0"]
    shares = [json.loads((tmp_path / "runs" / name / "cores").read_text()) for name in started]
    assert all(len(share) == len(cores) // parallel for share in shares)
    assert {core for share in shares for core in share} <= set(cores)
    timing = json.loads((tmp_path / "runs" / "s3d-s0" / "run_time.json").read_text())
    assert timing["wall_s"] >= 0 and timing["cpu_cores"] == len(cores) // parallel
    assert sum("started on CPU core(s)" in line for line in lines) == 3
    with pytest.raises(UserError, match="--parallel=99: this process may use"):
        sweep.run_locally(runs, str(tmp_path / "other"), python=script, parallel=99)


def test_parallel_runner_stops_starting_runs_after_a_failure(tmp_path):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPU cores")
    runs = runs_lib.load_sweep("experiments/sweeps/kinetics400.py:runlocal")
    # i3d-s0 fails at once while s3d-s0, started beside it, takes 4 s (ample under load).
    python, quiet = _fake_python(tmp_path, fail_on="i3d-s0", slow_s=4.0), lambda _: None
    with pytest.raises(RuntimeError, match="Run 'i3d-s0' failed .exit status 3."):
        sweep.run_locally(runs, str(tmp_path / "runs"), python=python, log=quiet, parallel=2)
    assert (tmp_path / "runs" / "s3d-s0" / "result.json").exists()  # let finish, kept
    assert not (tmp_path / "runs" / "s3dg-s0").exists()  # never started


def test_dry_run_prints_commands_and_starts_nothing(tmp_path, capsys):
    sweep.main(
        [
            "--sweep=experiments/sweeps/synthetic.py:runlocal",
            f"--workdir={tmp_path}/r",
            "--only=appearance",
            "--dry_run",
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all("config=appearance,runlocal" in line for line in lines)
    assert not (tmp_path / "r").exists()


def test_a_finished_run_trained_with_other_settings_is_refused_not_reused(tmp_path, capsys):
    """A finished run is skipped; if its config.json records other values for the sweep's
    overrides (an older recipe), the sweep stops before starting anything."""
    runs = runs_lib.grid(
        "experiments/synthetic_motion.py",
        models=["tiny_i2d", "tiny_s3dg"],
        seeds=[0],
        overrides=[{"model.kernel_init": "he", "data.num_frames": 13, "optim.name": "adamw"}],
    )
    python, root = _fake_python(tmp_path), str(tmp_path / "runs")
    for run in runs:  # both finished; the second with the old initialiser
        os.makedirs(run.workdir(root))
        open(os.path.join(run.workdir(root), "result.json"), "w").write("{}")
    config = {"seed": 0, "model": {"kernel_init": "he"}, "data": {"num_frames": 13}}
    config["optim"] = {"name": "adamw"}
    (tmp_path / "runs" / runs[0].name / "config.json").write_text(json.dumps(config))
    assert runs[0].recorded_differences(root) == []
    config["model"]["kernel_init"] = "tf_slim"
    (tmp_path / "runs" / runs[1].name / "config.json").write_text(json.dumps(config))
    assert runs[1].recorded_differences(root) == ["model.kernel_init: tf_slim -> he"]
    with pytest.raises(UserError, match=r"1 finished run\(s\) .* tiny_s3dg-s0: model.kernel_init"):
        sweep.run_locally(runs, root, python=python, log=lambda _: None)
    assert not (tmp_path / "calls.log").exists()  # nothing started
    lines = []  # a dry run only says so
    sweep.run_locally(runs, root, python=python, dry_run=True, log=lines.append)
    assert lines[0].startswith("note: 1 finished run(s)")
