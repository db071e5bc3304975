"""Every paper-experiment config resolves at full size and, in its `runlocal` form, trains
(two steps), evaluates and writes result.json through the real trainer; the transfer config
fine-tunes from the Kinetics run's checkpoint."""

import importlib
import json
import os

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache

from experiments import runs as runs_lib
from experiments import speed_accuracy
from video_s3d import train
from video_s3d.models import zoo

# Config files -> the argument string that resolves them at full size. (synthetic_motion.py,
# the default config, is tested with the trainer; quickstart.py is not a config.)
FULL_SIZE = {
    "kinetics400": "model=i3d",
    "something_something_v2": "model=i2d,batch=96",
    "something_something_v1": "model=i3d",
    "mini_kinetics_heavy": "model=bottom_heavy_s3d_4,data_dir=/data/mini_k200_tfds",
    "transfer": "dataset=hmdb51,init_from=/runs/k400/s3dg-s0",
}
# Detection configs (their own tests below): the paper's protocol, not its classification recipe.
DETECTION = {"jhmdb": "split=2,init_from=/r", "ucf101_24": "init_from=/r"}
NOT_PAPER_CONFIGS = {
    "__init__",
    "synthetic_motion",
    "synthetic_detection",
    "quickstart",
    "recipes",
    "runs",
    "speed_accuracy",
    "paper_study",
    "study_probe",
    "temporal_reach",
    "order_cues",
    "mini_kinetics",
}


def _get_config(name: str, arg: str):
    return importlib.import_module(f"experiments.{name}").get_config(arg)


def test_every_config_file_is_covered():
    on_disk = {
        f[:-3]
        for f in os.listdir(os.path.join(runs_lib.REPO_ROOT, "experiments"))
        if f.endswith(".py")
    }
    assert on_disk - NOT_PAPER_CONFIGS - set(DETECTION) == set(FULL_SIZE)


@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_full_size_config_follows_the_paper_recipe(name):
    config = _get_config(name, FULL_SIZE[name])
    zoo.get_spec(config.model.name)
    train.validate_config(config)
    assert (config.data.num_frames, config.data.stride, config.data.crop_size) == (64, 1, 224)
    assert config.optim.name == "sgd" and config.optim.momentum == 0.9
    assert config.batch_size % 8 == 0 and config.eval_batch_size % 8 == 0
    assert not config.data.name.startswith("synthetic_motion")


# The paper's recipe, number by number, with where each comes from (REFERENCE.md "Training
# recipe": the paper's implementation paragraph, quoted in github.com/qijiezhao/s3d.pytorch).
PAPER = {
    "batch_size": 336,  # 56 GPUs x batch 6 per GPU
    "num_train_steps": 80_000,  # "train our model for 80k steps"
    "optim.learning_rate": 0.1,  # "initial learning rate of 0.1"
    "optim.step_boundaries": (60_000, 70_000),  # "at step 60k to 0.01, and step 70k to 0.001"
    "optim.step_decay_factor": 0.1,
    "optim.momentum": 0.9,  # "synchronous SGD ... with momentum of 0.9"
    "optim.name": "sgd",
    "optim.nesterov": False,  # "vanilla"
    "optim.warmup_steps": 0,  # none mentioned
    "data.num_frames": 64,  # 64-frame training clips
    "data.crop_size": 224,  # 224 crops of 256-short-side frames
    "data.train_crop": "paper",
}


def _field(config, dotted):
    for part in dotted.split("."):
        config = config[part]
    return config


@pytest.mark.parametrize(
    "model, init, top1, top5",
    [
        ("i3d", "imagenet", 71.1, 89.3),
        ("s3d", "imagenet", 72.2, 90.6),
        ("s3dg", "imagenet", 74.7, 93.4),
        ("i3d", "scratch", 68.4, 88.0),
    ],
)
def test_kinetics_rows_resolve_to_the_paper_recipe(model, init, top1, top5):
    config = _get_config("kinetics400", f"model={model},init={init}")
    for field, value in PAPER.items():
        assert _field(config, field) == pytest.approx(value), field
    assert config.data.eval_protocols[0] == "all_frames"  # all frames, 224 centre crop
    assert f"{top1}/{top5}" in config.recipe.targets
    assert config.recipe.init == init
    assert bool(config.init_from) == (init == "imagenet")
    from video_s3d import recipe_card

    assert all(
        row["status"] in ("same", "not published")
        for row in recipe_card.card_rows(config)
        if row["field"] != "init"
    )


def test_s3d_rows_from_scratch_quote_no_imagenet_target():
    config = _get_config("kinetics400", "model=s3dg,init=scratch")
    assert "74.7" not in config.recipe.targets and "none published" in config.recipe.targets


def test_batch_argument_follows_the_one_scaling_rule():
    """A batch that 336 does not divide (e.g. 256 on a 32-core slice): lr linear in the
    batch, step counts in examples seen."""
    small = _get_config("kinetics400", "batch=256")
    assert small.optim.learning_rate == pytest.approx(0.1 * 256 / 336)
    assert small.num_train_steps == round(80_000 * 336 / 256) == 105_000
    assert small.optim.step_boundaries == (78_750, 91_875)
    assert small.num_train_steps * 256 == 80_000 * 336  # same examples seen


def test_card_for_another_batch_prints_the_scaled_recipe_and_its_difference(capsys):
    from video_s3d import recipe_card

    config = _get_config("kinetics400", "model=s3d,batch=256")
    config.optim.momentum = 0.8  # a change the scaling rule does not explain
    print(recipe_card.format_card(config))
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "0.0761905" in rows["optim.learning_rate"] and "0.1" in rows["optim.learning_rate"]
    assert "scaled" in rows["optim.learning_rate"]
    assert "(78750, 91875)" in rows["optim.step_boundaries"]
    assert "(60000, 70000)" in rows["optim.step_boundaries"]
    assert "DIFFERS" in rows["optim.momentum"]
    assert "global batch 256 is not the paper's 336" in out
    assert "1 difference(s) from the paper beyond the scaling rule: optim.momentum" in out


def test_recipe_card_command_trains_nothing():
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "video_s3d.recipe_card",
            "--config=experiments/kinetics400.py:model=s3dg,batch=256",
        ],
        cwd=runs_lib.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert out.startswith("recipe card: Kinetics-400 s3dg")
    assert "scaled" in out and "PAPER-IMPL" in out


def test_transfer_runs_every_official_split():
    names = {
        _get_config("transfer", f"dataset=hmdb51,split={s},init_from=/r").data.name
        for s in (1, 2, 3)
    }
    assert names == {"hmdb51/split1", "hmdb51/split2", "hmdb51/split3"}
    from experiments.sweeps import transfer as transfer_sweep

    sweep = transfer_sweep.get_sweep("init_from=/r")
    assert len(sweep) == 6 and len({run.name for run in sweep}) == 6


def test_transfer_average_is_the_mean_over_splits(tmp_path):
    from experiments import transfer

    workdirs = []
    for split, top1 in ((1, 0.9), (2, 0.8), (3, 0.7)):
        workdir = tmp_path / f"ucf101-split{split}"
        workdir.mkdir()
        (workdir / "result.json").write_text(
            json.dumps({"dataset": f"ucf101/split{split}", "metrics": {"video_top1": top1}})
        )
        workdirs.append(str(workdir))
    summary = transfer.average_splits(workdirs)["ucf101"]
    assert summary["mean_video_top1"] == pytest.approx(0.8) and summary["complete"]
    assert not transfer.average_splits(workdirs[:2])["ucf101"]["complete"]


def test_something_something_spreads_short_clips():
    assert _get_config("something_something_v2", "").data.short_clip == "spread"
    assert _get_config("something_something_v1", "").data.short_clip == "spread"
    assert _get_config("something_something_v1", "").data.name == "something_something_v1"
    assert _get_config("kinetics400", "").data.short_clip == "repeat_last"


def test_something_something_never_flips():
    assert _get_config("something_something_v1", "").data.flip is False
    assert _get_config("something_something_v2", "").data.flip is False
    assert _get_config("something_something_v2", "runlocal").data.flip is False


@pytest.mark.parametrize(
    "name, arg, message",
    [
        ("kinetics400", "model=i4d", "Unknown model 'i4d'"),
        ("transfer", "dataset=ucf101", "Pass init_from="),
        ("transfer", "dataset=kinetics400,init_from=/r", "not a transfer target"),
        ("transfer", "split=4,init_from=/r", "not an official split"),
        ("kinetics400", "init=imagenett", "init=imagenett is unknown"),
        ("mini_kinetics_heavy", "", "Pass data_dir="),
        ("kinetics400", "runlocl", "Unknown config argument 'runlocl'"),
    ],
)
def test_bad_arguments_are_one_sentence(name, arg, message):
    with pytest.raises(ValueError, match=message):
        _get_config(name, arg)


@pytest.mark.parametrize("name", sorted(DETECTION))
def test_detection_config_follows_the_published_protocol(name):
    config = _get_config(name, DETECTION[name])
    train.validate_config(config)
    zoo.get_spec(config.model.name)
    assert config.task == "detection" and config.model.name == "s3dg"
    assert config.data.name == {"jhmdb": "jhmdb/split2", "ucf101_24": "ucf101_24"}[name]
    assert (config.data.train_split, config.data.eval_split) == ("train", "test")
    assert config.data.eval_frame_stride == 1 and not config.data.max_eval_videos  # every frame
    assert config.init_from == "/r" and config.batch_size % 8 == 0
    with pytest.raises(ValueError, match="Pass init_from="):
        _get_config(name, "")


def test_jhmdb_runs_every_official_split():
    names = {_get_config("jhmdb", f"split={s},init_from=/r").data.name for s in (1, 2, 3)}
    assert names == {"jhmdb/split1", "jhmdb/split2", "jhmdb/split3"}
    with pytest.raises(ValueError, match="not an official JHMDB split"):
        _get_config("jhmdb", "split=4,init_from=/r")


@pytest.fixture(scope="module", autouse=True)
def shared_compilation_cache(tmp_path_factory):
    """The runlocal runs below train the same tiny network, so their compiled programs are
    identical: a persistent compilation cache lets every run after the first reuse them
    (minutes saved on two CPU cores)."""
    previous = jax.config.jax_compilation_cache_dir
    compilation_cache.set_cache_dir(str(tmp_path_factory.mktemp("xla_cache")))
    compilation_cache.reset_cache()  # the cache may have been set up without a folder already
    yield
    compilation_cache.set_cache_dir(previous)
    compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


def _train_runlocal(name: str, arg: str, data_dir: str, workdir) -> dict:
    config = _get_config(name, arg)
    # runlocal swaps the real dataset for the generated one: real data cannot exist in CI.
    assert config.data.name.startswith("synthetic_motion/") and config.data.name.endswith("_tiny")
    assert config.model.name.startswith(zoo.TINY_PREFIX)
    assert (config.data.num_frames, config.data.crop_size) == (8, 32)
    config.data.data_dir = data_dir
    train.train_and_evaluate(config, str(workdir))
    with open(os.path.join(workdir, "result.json")) as f:
        return json.load(f)


# The heavy config's own default model (tiny_top_heavy_i3d_3) is the zoo's to test; here it
# trains tiny_s3dg like the others, so that its run reuses their compiled programs.
RUNLOCAL = {
    "kinetics400": "runlocal",
    "something_something_v2": "runlocal",
    "something_something_v1": "runlocal",
    "mini_kinetics_heavy": "runlocal,model=s3dg",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNLOCAL, key=list(RUNLOCAL).index))
def test_runlocal_config_trains_and_evaluates(name, data_dir, runs_dir):
    result = _train_runlocal(name, RUNLOCAL[name], data_dir, runs_dir / name)
    config = _get_config(name, RUNLOCAL[name])
    assert result["model"] == config.model.name and result["step"] == config.num_train_steps
    assert 0.0 <= result["metrics"]["video_top1"] <= 1.0
    # The table script reads what the trainer wrote.
    row = speed_accuracy.read_run(str(runs_dir / name))
    assert (row.model, row.num_frames, row.crop_size) == (config.model.name, 8, 32)
    assert row.video_top1 == result["metrics"]["video_top1"]
    assert row.reversed_video_top1 == result["metrics"]["reversed_video_top1"]
    assert row.pairwise_reversal is not None  # motion_tiny has reversal partners
    assert row.train_clips_per_sec > 0 and row.eval_clips_per_sec > 0


@pytest.mark.slow
def test_runlocal_transfer_fine_tunes_from_the_kinetics_run(data_dir, runs_dir, capsys):
    source = runs_dir / "kinetics400"
    if not (source / "result.json").exists():  # run alone (-k transfer): make the source first
        _train_runlocal("kinetics400", "runlocal", data_dir, source)
    capsys.readouterr()
    result = _train_runlocal(
        "transfer", f"runlocal,init_from={source}", data_dir, runs_dir / "transfer"
    )
    # Same class count (10 -> 10): every leaf, the classifier included, comes from the source.
    printed = capsys.readouterr().out
    assert f"fine-tuning from {source} at step " in printed
    assert "(10 classes -> 10); freshly initialised: nothing" in printed
    assert result["dataset"] == "synthetic_motion/appearance_tiny"
    assert result["model"] == zoo.TINY_PREFIX + "s3dg"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DETECTION))
def test_runlocal_detection_config_trains_and_evaluates(name, data_dir, runs_dir):
    config = _get_config(name, "runlocal")
    # runlocal swaps the real dataset for the generated one: real data cannot exist in CI.
    assert config.data.name == "synthetic_detection/detection_tiny" and not config.init_from
    config.data.data_dir = data_dir
    train.train_and_evaluate(config, str(runs_dir / name))
    with open(runs_dir / name / "result.json") as f:
        result = json.load(f)
    assert result["task"] == "detection" and result["step"] == config.num_train_steps
    assert 0.0 <= result["metrics"]["frame_map@0.5"] <= 1.0
