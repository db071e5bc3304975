"""experiments/quickstart.py's code path (what `make run` runs) with two steps per model.

The real quickstart (1000 steps of tiny S3D-G and tiny I2D) takes minutes and stays out of
the suite; here the small test model stands in for both, on the tiny synthetic dataset.
"""

import json

import pytest

from experiments import quickstart
from tests.conftest import TINY_MOTION as TINY
from tests.training_testing import SMALL_MODEL
from video_s3d import errors


@pytest.mark.slow
def test_quickstart_trains_both_models_and_prints_the_table(data_dir, tmp_path, capsys):
    argv = [
        f"--workdir={tmp_path}",
        "--steps=2",
        f"--dataset={TINY}",
        f"--data_dir={data_dir}",
        f"--models={SMALL_MODEL},{SMALL_MODEL}",
    ]
    assert quickstart.main(argv) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("model"))
    assert "val top-1" in header and "reversal pairs" in header
    rows = [line for line in out.splitlines() if line.startswith(SMALL_MODEL + " ")]
    assert len(rows) == 2 and all("%" in row for row in rows)
    verdicts = [line for line in out.splitlines() if line.startswith(("ok ", "NOT "))]
    assert len(verdicts) == 2 and "target >= 90%" in verdicts[0] and "chance: 50%" in verdicts[1]
    for index in (0, 1):
        with open(
            tmp_path / quickstart.run_dirname([SMALL_MODEL, SMALL_MODEL], index) / "result.json"
        ) as f:
            assert json.load(f)["step"] == 2

    # A second start reuses the finished runs instead of training again.
    assert quickstart.main(argv) == 0
    assert out.count("training 2 steps") == 2
    assert capsys.readouterr().out.count("finished earlier") == 2


def test_quickstart_arguments_are_checked():
    with pytest.raises(SystemExit):
        quickstart.parse_args(["--models=tiny_s3dg"])
    config = quickstart.quickstart_config("tiny_s3dg", steps=400, dataset=TINY, data_dir=None)
    # T = 5 (mod 8): I2D exactly blind to reversal; the frames span the 32-frame clip;
    # batches split evenly over the 8 test devices.
    assert config.data.num_frames % 8 == 5
    assert 28 <= (config.data.num_frames - 1) * config.data.stride < 32
    assert config.batch_size % 8 == 0 and config.eval_batch_size % 8 == 0
    # --seed reaches the config and gives the runs their own folders (never reused across seeds).
    assert quickstart.parse_args(["--seed=2"]).seed == 2
    assert (
        quickstart.quickstart_config("tiny_s3dg", steps=4, dataset=TINY, data_dir=None, seed=2).seed
        == 2
    )
    models = ["tiny_s3dg", "tiny_i2d"]
    assert [quickstart.run_dirname(models, i) for i in (0, 1)] == models
    assert quickstart.run_dirname(models, 0, seed=2) == "tiny_s3dg_seed2"


def test_a_finished_run_is_reused_only_for_the_same_steps_and_classes(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"step": 10, "per_class_accuracy": {"a": 1.0, "b": 0.5}}))
    assert quickstart._finished(str(path), 10, ["a", "b"])
    assert not quickstart._finished(str(path), 20, ["a", "b"])
    # An older dataset version with a replaced class: trained again (and refused, see
    # test_checkpoint.py), never reported as if it were this dataset's result.
    assert not quickstart._finished(str(path), 10, ["a", "c"])
    assert not quickstart._finished(str(tmp_path / "absent.json"), 10, ["a", "b"])


def test_a_mistake_is_one_sentence_not_a_traceback(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise errors.UserError(
            "runs/quickstart/tiny_s3dg already holds checkpoints trained on other "
            "classes; use a new --workdir."
        )

    monkeypatch.setattr(quickstart, "train_all", refuse)
    assert quickstart.main(["--workdir=unused"]) == 1
    assert capsys.readouterr().err == (
        "Error: runs/quickstart/tiny_s3dg already holds checkpoints "
        "trained on other classes; use a new --workdir.\n"
    )


def test_a_bug_keeps_its_traceback(monkeypatch):
    def bug(*args, **kwargs):
        raise ValueError("an internal error, not the user's")

    monkeypatch.setattr(quickstart, "train_all", bug)
    with pytest.raises(ValueError, match="an internal error"):
        quickstart.main(["--workdir=unused"])
