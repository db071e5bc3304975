"""Runs that must not be lost: workdir lock, resume checks, save before the final evaluation,
Ctrl-C, stray checkpoint folders, process-count changes, metrics.jsonl after a resume."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.training_testing import SMALL_MODEL, small_config
from video_s3d import (
    checkpointing,
    errors,
    evaluate,
    inference,
    metric_writers,
    train,
    train_state,
    workdirs,
)
from video_s3d.data import dmvr
from video_s3d.data.builders import common

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _main(*args, timeout=600, **popen):
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        CUDA_VISIBLE_DEVICES="",
        PYTHONUNBUFFERED="1",
        XLA_FLAGS="--xla_force_host_platform_device_count=8",
    )
    command = [
        sys.executable,
        "-u",
        "-m",
        "video_s3d.main",
        "--config=experiments/synthetic_motion.py:in_memory,runlocal",
        f"--config.model.name={SMALL_MODEL}",
        "--config.model.dropout_rate=0.0",
        "--config.data.num_frames=4",
        "--config.data.crop_size=16",
        "--config.batch_size=16",
        "--config.eval_batch_size=16",
        "--config.data.num_eval_videos=16",
        "--config.reverse_time_eval=false",
        *args,
    ]
    if popen:
        return subprocess.Popen(command, cwd=REPO, env=env, text=True, **popen)
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def _sleeper():
    """A live process that is not this one: it stands for a run holding a workdir."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def _lock_of(pid, host=None, started="same"):
    return {
        "pid": pid,
        "host": host or socket.gethostname(),
        "since": "2026-12-01 04:00:00 UTC",
        "started": workdirs._process_start_time(pid) if started == "same" else started,
    }


# --------------------------------------------------------------------------- the lock
def test_a_locked_workdir_stops_a_second_run_at_once_and_a_stale_lock_does_not(tmp_path):
    sleeper = _sleeper()
    try:
        (tmp_path / "lock.json").write_text(json.dumps(_lock_of(sleeper.pid)))
        started = time.perf_counter()
        with pytest.raises(errors.UserError) as error:
            train.train_and_evaluate(small_config(), str(tmp_path))
        assert time.perf_counter() - started < 5
        assert str(error.value) == (
            f"{tmp_path} is in use by another run (pid {sleeper.pid} on {socket.gethostname()}, "
            f"since 2026-12-01 04:00:00 UTC); wait for it to end or use another --workdir (if "
            f"that run no longer exists, delete {tmp_path / 'lock.json'})."
        )
        assert sorted(os.listdir(tmp_path)) == ["lock.json"]  # nothing else touched
        # The same from the command line: one line, no traceback, well before any compile.
        done = _main(f"--workdir={tmp_path}", timeout=120)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith(f"Error: {tmp_path} is in use")
    finally:
        sleeper.kill()
        sleeper.wait()
    # The holder was killed: its lock no longer blocks, and a finished run leaves none.
    state = train.train_and_evaluate(small_config(num_train_steps=2), str(tmp_path))
    assert int(state.step) == 2 and not (tmp_path / "lock.json").exists()


def test_lock_staleness_checks_the_pid_its_start_time_and_the_host(tmp_path):
    sleeper = _sleeper()
    path = tmp_path / "lock.json"
    try:
        cases = [
            (_lock_of(sleeper.pid), True),
            (_lock_of(sleeper.pid, started="1"), False),  # pid reused by another process
            (_lock_of(sleeper.pid, host="another-host"), True),  # cannot check: respected
            (_lock_of(os.getpid()), False),
        ]  # left by this very process
        for holder, blocks in cases:
            path.write_text(json.dumps(holder))
            lock = workdirs.WorkdirLock(str(tmp_path))
            if blocks:
                with pytest.raises(errors.UserError, match="is in use by another run"):
                    lock.acquire()
            else:
                with lock:
                    assert json.loads(path.read_text())["pid"] == os.getpid()
                assert not path.exists()
        path.write_text("")  # killed while writing the lock: stale once it is not brand new
        os.utime(path, (time.time() - 60, time.time() - 60))
        with workdirs.WorkdirLock(str(tmp_path)):
            assert path.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_workdir_that_is_a_file_is_one_sentence(tmp_path):
    (tmp_path / "run").write_text("")
    with pytest.raises(errors.UserError, match=r"--workdir=.*/run is a file, not a folder"):
        train.train_and_evaluate(small_config(), str(tmp_path / "run"))


# ------------------------------------------------------------------ resuming a workdir
def test_resume_refuses_shape_fields_before_config_json_and_records_other_changes(tmp_path):
    train.train_and_evaluate(small_config(num_train_steps=2), str(tmp_path))
    saved = (tmp_path / "config.json").read_text()
    for field, value in (
        ("data.crop_size", 24),
        ("batch_size", 32),
        ("data.num_frames", 8),
        ("optim.name", "adamw"),
    ):
        with pytest.raises(errors.UserError) as error:
            train.train_and_evaluate(
                small_config(num_train_steps=4, **{field: value}), str(tmp_path)
            )
        assert re.search(
            rf"holds checkpoints \(step 2\) of a run with another config: "
            rf"{re.escape(field)} .* -> {value!r}",
            str(error.value),
        ), error.value
        assert (tmp_path / "config.json").read_text() == saved
    old_lr = json.loads(saved)["optim"]["learning_rate"]
    changed = small_config(
        num_train_steps=4, **{"optim.learning_rate": 0.5 * old_lr, "data.stride": 3}
    )
    state = train.train_and_evaluate(changed, str(tmp_path))
    assert int(state.step) == 4
    records = [
        json.loads(line) for line in (tmp_path / "config_changes.jsonl").read_text().splitlines()
    ]
    assert len(records) == 1 and records[0]["step"] == 2
    assert records[0]["changes"] == {
        "data.stride": {"from": 2, "to": 3}
        if json.loads(saved)["data"]["stride"] == 2
        else {"from": json.loads(saved)["data"]["stride"], "to": 3},
        "num_train_steps": {"from": 2, "to": 4},
        "optim.learning_rate": {"from": old_lr, "to": 0.5 * old_lr},
    }
    now = json.loads((tmp_path / "config.json").read_text())
    assert now["optim"]["learning_rate"] == 0.5 * old_lr and now["data"]["stride"] == 3


def test_malformed_config_json_of_a_resumed_run_names_the_file(tmp_path):
    train.train_and_evaluate(small_config(num_train_steps=2), str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(errors.UserError, match=rf"{tmp_path / 'config.json'} is not readable JSON"):
        train.train_and_evaluate(small_config(num_train_steps=4), str(tmp_path))


def test_stray_step_folders_are_named_by_resume_and_predict(tmp_path):
    train.train_and_evaluate(small_config(num_train_steps=2), str(tmp_path))
    stray = tmp_path / "checkpoints" / "7"
    stray.mkdir()
    for attempt in (
        lambda: train.train_and_evaluate(small_config(num_train_steps=4), str(tmp_path)),
        lambda: inference.load_run(str(tmp_path)),
    ):
        with pytest.raises(
            errors.UserError,
            match=rf"Checkpoint folder {stray} is empty .* "
            rf"delete or move it away",
        ):
            attempt()
    (stray / "optimizer").mkdir()
    with pytest.raises(errors.UserError, match=rf"{stray} has no model/ folder"):
        train.train_and_evaluate(small_config(num_train_steps=4), str(tmp_path))
    shutil.rmtree(stray)
    assert int(train.train_and_evaluate(small_config(num_train_steps=4), str(tmp_path)).step) == 4


def test_resuming_a_two_process_workdir_with_one_process_is_refused(tmp_path):
    train.train_and_evaluate(small_config(num_train_steps=2), str(tmp_path))
    states = tmp_path / "input_state" / "2"
    for path in states.iterdir():  # as if a second process had saved its position too
        shutil.copy(path, states / path.name.replace("process_0", "process_1"))
    saved = (tmp_path / "config.json").read_text()
    with pytest.raises(
        errors.UserError,
        match=r"Checkpoint step 2 in .* was written by 2 "
        r"processes but this run has 1; resume with 2",
    ):
        train.train_and_evaluate(small_config(num_train_steps=4), str(tmp_path))
    assert (tmp_path / "config.json").read_text() == saved


# ------------------------------------------------------- the final save and evaluation
def test_the_final_checkpoint_is_saved_before_the_final_evaluation(tmp_path, monkeypatch):
    config = small_config(num_train_steps=3, checkpoint_every_steps=2, eval_every_steps=2)
    real = evaluate.evaluate_variables
    seen = []

    def failing_at_the_end(config_, model, variables, mesh, info, **kwargs):
        steps = checkpointing.Checkpoints(str(tmp_path), read_only=True).all_steps()
        seen.append(steps)
        if 3 in steps or len(seen) > 1:
            raise RuntimeError("evaluation crashed")
        return real(config_, model, variables, mesh, info, **kwargs)

    monkeypatch.setattr(evaluate, "evaluate_variables", failing_at_the_end)
    with pytest.raises(RuntimeError, match="evaluation crashed"):
        train.train_and_evaluate(config, str(tmp_path))
    assert seen[-1][-1] == 3  # the step-3 checkpoint existed when the final evaluation began
    assert not (tmp_path / "lock.json").exists()
    monkeypatch.setattr(evaluate, "evaluate_variables", real)
    # Rerunning trains nothing: it evaluates the saved final step and records its metrics.
    state = train.train_and_evaluate(config, str(tmp_path))
    assert int(state.step) == 3 and (tmp_path / "result.json").exists()
    ckpt = checkpointing.Checkpoints(str(tmp_path), read_only=True)
    result = json.loads((tmp_path / "result.json").read_text())
    final = ckpt.manager.metrics(3)[checkpointing.BEST_METRIC]
    assert final == pytest.approx(result["metrics"][checkpointing.BEST_METRIC])
    assert ckpt.manager.metrics(2) is not None


def test_the_final_steps_metrics_make_it_a_best_candidate(tmp_path):
    config = small_config(num_train_steps=4, checkpoint_every_steps=2, eval_every_steps=2)
    train.train_and_evaluate(config, str(tmp_path))
    ckpt = checkpointing.Checkpoints(str(tmp_path), read_only=True)
    scores = {step: ckpt.manager.metrics(step) for step in ckpt.all_steps()}
    assert set(scores) == {2, 4} and all(checkpointing.BEST_METRIC in s for s in scores.values())
    assert ckpt.best_step() in (2, 4)


def test_dmvr_label_outside_the_classes_stops_training_before_the_first_step(tmp_path):
    jpegs = common.encode_jpeg(np.zeros((4, 16, 16, 3), np.uint8))
    for split, labels in (("train", [0, 1, 0, 1]), ("validation", [0, 1, 5, 1])):
        dmvr.write_shards(
            [dmvr.make_example(jpegs, label) for label in labels],
            str(tmp_path / "shards"),
            split,
            num_shards=1,
        )
    config = small_config(**{"data.name": f"dmvr:{tmp_path}/shards/{{split}}-*?num_classes=2"})
    with pytest.raises(
        errors.UserError,
        match=r"DMVR record 2 of .*validation-00000-of-00001 "
        r"has label 5, outside 0..1",
    ):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_metrics_jsonl_holds_each_step_once_after_a_resume(tmp_path):
    config = small_config(num_train_steps=4, log_every_steps=1, checkpoint_every_steps=2)
    train.train_and_evaluate(config, str(tmp_path))
    # As if killed after logging step 4 but before its checkpoint: resume from step 2.
    shutil.rmtree(tmp_path / "checkpoints" / "4")
    os.remove(tmp_path / "result.json")
    train.train_and_evaluate(config, str(tmp_path))
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if any(k.startswith("train/") for k in json.loads(line))
    ]
    assert steps == [1, 2, 3, 4]


# --------------------------------------------------------------------------- Ctrl-C
@pytest.mark.slow
def test_ctrl_c_saves_and_exits_like_sigterm(tmp_path):
    child = _main(
        f"--workdir={tmp_path}",
        "--config.num_train_steps=100000",
        "--config.log_every_steps=1",
        "--config.checkpoint_every_steps=100000",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = []
    for line in child.stdout:
        output.append(line)
        progress = re.match(r"step\s+(\d+)/", line)
        if progress and int(progress.group(1)) >= 3:
            child.send_signal(signal.SIGINT)
            break
    output.extend(child.stdout)
    text = "".join(output)
    assert child.wait(timeout=300) == 0, text
    stopped = re.search(r"Ctrl-C: saved step (\d+) to", text)
    assert stopped and "Traceback" not in text and "KeyboardInterrupt" not in text, text
    step = int(stopped.group(1))
    ckpt = checkpointing.Checkpoints(str(tmp_path), read_only=True)
    assert ckpt.latest_step() == step >= 3
    assert not (tmp_path / "lock.json").exists()


def test_create_model_passes_every_model_field_through():
    config = small_config(**{"model.name": "tiny_s3dg"})
    config.model.width_multiplier = 0.5
    config.model.temporal_padding = "edge"
    model = train_state.create_model(config, 7)
    assert model.spec.width_multiplier == 0.5 and model.spec.temporal_padding == "edge"
    config.model.widht_multiplier = 0.5
    with pytest.raises(
        errors.UserError, match=r"Unknown model override\(s\) \['widht_multiplier'\]"
    ):
        train_state.create_model(config, 7)


def test_predict_names_a_config_json_that_does_not_match_or_parse(tmp_path):
    train.train_and_evaluate(small_config(num_train_steps=2), str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text())
    config["model"]["name"] = "tiny_s3dg"  # was a 229-line orbax tree diff
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        errors.UserError,
        match=rf"config.json names model 'tiny_s3dg' but "
        rf"checkpoint step 2 holds '{SMALL_MODEL}'",
    ):
        inference.load_run(str(tmp_path))
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(errors.UserError, match=rf"{tmp_path / 'config.json'} is not readable JSON"):
        inference.load_run(str(tmp_path))


def test_progress_times_steps_after_the_compile_and_leaves_pauses_out(monkeypatch):
    clock = iter([0.0, 10.0, 14.0, 20.0, 21.0, 30.0]).__next__
    monkeypatch.setattr(metric_writers.time, "perf_counter", clock)
    progress = metric_writers.Progress(total_steps=10, first_step=0, enabled=False)  # t=0
    progress.restart(1)  # t=10: step 1 compiled
    progress.pause()  # t=14: steps 2..5 done, evaluation starts
    progress.resume()  # t=20: 6 s of evaluation left out
    progress.pause()  # t=21: step 7 done
    assert progress.average_rate(7, clips_per_step=8) == pytest.approx(6 * 8 / 5.0)
    assert progress.average_rate(1, clips_per_step=8) is None
