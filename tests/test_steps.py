"""--step=best|latest|N: which checkpoint predict, the API, --mode=eval and init_from restore."""

import json
import os

import jax
import numpy as np
import pytest

import video_s3d
from tests import inference_testing
from video_s3d import (
    checkpointing,
    evaluate,
    inference,
    optim,
    parallel,
    predict,
    steps,
    train,
    train_state,
)

# Step -> validation video top-1 recorded with the checkpoint (None: not evaluated).
ACCURACY = {2: 0.9, 4: 0.3, 6: None}


def _config(data_dir):
    from experiments import synthetic_motion

    config = synthetic_motion.get_config(f"runlocal,model={inference_testing.MODEL}")
    config.data.name = inference_testing.TINY
    config.data.data_dir = data_dir
    config.data.eval_num_clips = 1
    config.reverse_time_eval = False
    return config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, data_dir):
    """Three checkpoints with distinct weights (seeds 2, 4, 6); step 2 best, step 6 latest."""
    config = _config(data_dir)
    folder = str(tmp_path_factory.mktemp("steps"))
    mesh = parallel.make_mesh(jax.devices()[:1])
    model = train_state.create_model(config, config.data.num_classes)
    tx = optim.make_optimizer(config.optim, config.num_train_steps)
    ckpt = checkpointing.Checkpoints(folder, keep=3, async_save=False)
    for step, accuracy in ACCURACY.items():
        state = train_state.create_state(model, tx, config, mesh, jax.random.key(step))
        metrics = None if accuracy is None else {checkpointing.BEST_METRIC: accuracy}
        ckpt.save(step, state, train.run_info(config, config.data.num_classes), metrics=metrics)
    ckpt.close()
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write(config.to_json_best_effort())
    return folder


def _kernel(variables):
    """Every parameter, flattened into one vector."""
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(variables["params"])])


def test_parse_refuses_what_is_not_a_step():
    assert steps.parse(None) == "best" and steps.parse("LATEST") == "latest"
    assert steps.parse("12") == 12 and steps.parse(3) == 3
    for bad in ("newest", "-1", "1.5"):
        with pytest.raises(ValueError, match="use best, latest or a step number"):
            steps.parse(bad)


def test_best_is_the_default_for_inference_and_each_choice_restores_its_step(workdir):
    loaded = {
        which: inference.load_run(workdir, step=which) for which in (None, "best", "latest", 4, "6")
    }
    assert loaded[None].step == loaded["best"].step == 2  # highest accuracy, not the latest
    assert loaded["latest"].step == 6 and loaded[4].step == 4 and loaded["6"].step == 6
    assert "best validation accuracy" in loaded[None].describe()
    # The restored weights are that step's (each step was saved from another seed).
    kernels = {which: _kernel(run.variables) for which, run in loaded.items()}
    assert np.array_equal(kernels[None], kernels["best"])
    assert not np.array_equal(kernels["best"], kernels["latest"])
    assert not np.array_equal(kernels["best"], kernels[4])
    assert video_s3d.load(workdir).run.step == 2
    assert video_s3d.load(workdir, step="latest").run.step == 6
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at step 5 \(kept steps: 2, 4, 6\)"):
        inference.load_run(workdir, step=5)
    with pytest.raises(ValueError, match="names step 4 but --step=6"):
        inference.load_run(os.path.join(workdir, "checkpoints", "4"), step=6)


def test_predict_step_flag_and_one_sentence_errors(workdir, tmp_path, capsys):
    video = inference_testing.write_videos(str(tmp_path), {"a": ["mp4"]})[0]
    for flag, step in ((None, 2), ("--step=latest", 6), ("--step=4", 4)):
        args = [f"--workdir={workdir}", f"--video={video}", "--json"] + ([flag] if flag else [])
        assert predict.main(args) == 0
        assert json.loads(capsys.readouterr().out)["step"] == step
    assert predict.main([f"--workdir={workdir}", f"--video={video}", "--step=soon"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "Error: --step='soon' is not a step; use best, latest or a step number."


def test_best_without_evaluated_steps_is_the_latest_and_init_from_spellings():
    class NoMetrics:
        def all_steps(self):
            return [1, 3]

        def best_step(self):
            return None

    assert steps.resolve(NoMetrics(), "best", "x") == (3, "latest; no kept step was evaluated")
    assert steps.split_source("runs/a@best") == ("runs/a", "best")
    assert steps.split_source("runs/a/checkpoints/7") == ("runs/a", 7)
    assert steps.split_source("gs://b/runs/a") == ("gs://b/runs/a", "latest")


def test_eval_mode_evaluates_the_chosen_step_showing_rate_and_eta(
    workdir, data_dir, capsys, monkeypatch
):
    config = _config(data_dir)
    config.eval_batch_size = 8
    monkeypatch.setattr(evaluate, "EVAL_PROGRESS_SECONDS", 0.0)  # a line after every batch
    result = evaluate.evaluate(config, workdir, step="best")
    assert result["step"] == 2
    out = capsys.readouterr().out
    assert "at step 2 (best validation accuracy)" in out
    total = result["metrics"]["num_videos"]  # one clip, one crop per video
    assert f"eval: batch 2, 16/{total:.0f} clips, " in out and "clips/s, ETA " in out
    assert (
        evaluate.eval_progress_line(3, 24, 16, 2.0, 40)
        == "eval: batch 3, 24/40 clips, 8.0 clips/s, ETA 0:02"
    )
    result = evaluate.evaluate(config, workdir, step=4)
    assert result["step"] == 4
