"""`python -m video_s3d.main` end to end, config overrides, and the one-sentence guard rails."""

import glob
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from tests.training_testing import SMALL_MODEL, small_config
from video_s3d import config_cli, errors, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from tests.conftest import TINY_MOTION as TINY


def _main(*args, timeout=600):
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        CUDA_VISIBLE_DEVICES="",
        XLA_FLAGS="--xla_force_host_platform_device_count=8",
    )
    return subprocess.run(
        [sys.executable, "-m", "video_s3d.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _events(workdir):
    tags = set()
    for path in glob.glob(os.path.join(workdir, "tensorboard", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update((v.tag, v.WhichOneof("value")) for v in event.summary.value)
    return tags


@pytest.mark.slow
def test_main_trains_evaluates_and_writes_a_self_describing_workdir(data_dir, tmp_path):
    workdir = str(tmp_path / "run")
    common = [
        "--config=experiments/synthetic_motion.py:runlocal",
        f"--workdir={workdir}",
        f"--config.model.name={SMALL_MODEL}",
        f"--config.data.name={TINY}",
        f"--config.data.data_dir={data_dir}",
        "--config.data.eval_num_clips=2",
    ]
    done = _main(
        *common,
        "--config.num_train_steps=4",
        "--config.log_every_steps=2",
        "--config.optim.step_boundaries=(2,3)",
        "--config.optim.schedule=step",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "step      4/4  loss" in done.stdout and "clips/s  ETA" in done.stdout

    with open(os.path.join(workdir, "config.json")) as f:
        resolved = json.load(f)
    assert resolved["num_train_steps"] == 4 and resolved["optim"]["step_boundaries"] == [2, 3]
    with open(os.path.join(workdir, "result.json")) as f:
        result = json.load(f)
    assert result["model"] == SMALL_MODEL and result["step"] == 4
    assert result["train_clips_per_sec"] > 0 and result["eval_clips_per_sec"] > 0
    assert result["device"] == "8x cpu"  # conftest: 8 simulated CPU devices
    from video_s3d.data.builders import synthetic_motion

    assert result["dataset_version"] == str(synthetic_motion.SyntheticMotion.VERSION)
    metrics = result["metrics"]
    # 40 validation videos x 2 clips; motion classes come in reversal pairs.
    assert metrics["num_videos"] == 40 and metrics["num_clips"] == 80
    for key in (
        "clip_top1",
        "clip_top5",
        "video_top1",
        "video_top5",
        "reversed_video_top1",
        "pairwise_reversal_accuracy",
    ):
        assert 0.0 <= metrics[key] <= 1.0
    assert len(result["per_class_accuracy"]) == 10
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert [r["step"] for r in rows if "train/loss" in r] == [2, 4]
    assert rows[-1]["eval/video_top1"] == metrics["video_top1"]
    tags = _events(workdir)
    assert ("train/loss", "simple_value") in tags and ("eval/video_top1", "simple_value") in tags
    assert ("eval/confusion_matrix", "image") in tags
    assert os.path.getsize(os.path.join(workdir, "confusion_matrix.png")) > 1000

    evaluated = _main(*common, "--mode=eval")
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    assert "evaluating" in evaluated.stdout and "at step 4" in evaluated.stdout
    with open(os.path.join(workdir, "result.json")) as f:
        again = json.load(f)
    assert again["metrics"]["video_top1"] == metrics["video_top1"]  # same checkpoint, same data
    assert again["train_clips_per_sec"] == result["train_clips_per_sec"]  # kept from training


def test_unknown_config_field_is_rejected_listing_the_valid_ones(tmp_path):
    done = _main(
        "--config=experiments/synthetic_motion.py",
        f"--workdir={tmp_path}",
        "--config.optim.lerning_rate=0.1",
        timeout=120,
    )
    assert done.returncode != 0
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: Unknown config field 'optim.lerning_rate'")
    assert "valid fields of config.optim are:" in message and "learning_rate" in message
    assert not os.listdir(tmp_path)


def test_override_helpers_explain_typos_and_bad_argument_strings():
    spec = "--config=experiments/synthetic_motion.py:model=tiny_i2d"
    assert config_cli.override_error([spec, "--config.num_train_steps=3"]) is None
    assert "valid fields of config are:" in config_cli.override_error(
        [spec, "--config.batchsize=3"]
    )
    assert "config.batch_size is a value" in config_cli.override_error(
        [spec, "--config.batch_size.x=1"]
    )
    with pytest.raises(ValueError, match="Unknown config argument 'modle'.*valid arguments are"):
        config_cli.load_config_file("experiments/synthetic_motion.py:modle=tiny_i2d")
    parsed = config_cli.parse_arg("model=tiny_i2d,runlocal", model="s", runlocal=False, steps=3)
    assert parsed.model == "tiny_i2d" and parsed.runlocal is True and parsed.steps == 3
    assert config_cli.parse_arg("runlocal=off", runlocal=True).runlocal is False
    assert config_cli.parse_arg("runlocal=On", runlocal=False).runlocal is True


@pytest.mark.parametrize("word", ["ture", "maybe", ""])
def test_a_misspelt_yes_no_argument_is_refused_not_read_as_false(word):
    # `runlocal=ture` used to start the full experiment.
    with pytest.raises(errors.UserError, match=f"runlocal='{word}' .* is not a yes/no value"):
        config_cli.parse_arg(f"runlocal={word}", runlocal=False)
    with pytest.raises(errors.UserError, match="steps='x' .* is not an integer"):
        config_cli.parse_arg("steps=x", steps=3)


def test_a_missing_or_broken_config_file_is_one_sentence(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def get_config(:\n")
    for path, expected in (
        (tmp_path / "missing.py", "does not exist"),
        (broken, "line 1 is not valid Python (SyntaxError"),
    ):
        done = _main(f"--config={path}", f"--workdir={tmp_path / 'run'}", timeout=120)
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert "Traceback" not in done.stderr and expected in lines[-1], done.stderr


def test_guard_rails_fail_in_one_sentence_before_training(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"config.batch_size=12 is the global batch and must be a "
        r"positive multiple of the 8 devices.*set config.batch_size=8",
    ):
        train.train_and_evaluate(small_config(batch_size=12), str(tmp_path / "a"))
    with pytest.raises(FileNotFoundError, match="Dataset kinetics400 is not prepared"):
        train.train_and_evaluate(
            small_config(**{"data.name": "kinetics400", "data.data_dir": str(tmp_path / "empty")}),
            str(tmp_path / "b"),
        )
    with pytest.raises(FileNotFoundError, match="holds no checkpoint to evaluate; train first"):
        from video_s3d import evaluate

        evaluate.evaluate(small_config(), str(tmp_path / "c"))
    for name in ("a", "b"):
        assert not os.path.exists(tmp_path / name / "checkpoints")
