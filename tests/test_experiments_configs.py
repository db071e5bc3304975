"""Every paper-experiment config resolves at full size and, in its `runlocal` form, trains
(two steps), evaluates and writes result.json through the real trainer; the transfer config
fine-tunes from the Kinetics run's checkpoint."""
import importlib
import json
import os

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache

from experiments import recipes, speed_accuracy
from experiments import runs as runs_lib
from video_s3d import train
from video_s3d.models import zoo

# Config files -> the argument string that resolves them at full size. (synthetic_motion.py,
# the default config, is tested with the trainer; quickstart.py is not a config.)
FULL_SIZE = {
    "kinetics400": "model=i3d",
    "something_something_v2": "model=i2d,batch=96",
    "mini_kinetics_heavy": "model=bottom_heavy_s3d_4,data_dir=/data/mini_k200_tfds",
    "transfer": "dataset=hmdb51,init_from=/runs/k400/s3dg-s0",
}
NOT_PAPER_CONFIGS = {"__init__", "synthetic_motion", "quickstart", "recipes", "runs",
                     "speed_accuracy", "paper_study", "study_probe", "mini_kinetics"}


def _get_config(name: str, arg: str):
    return importlib.import_module(f"experiments.{name}").get_config(arg)


def test_every_config_file_is_covered():
    on_disk = {f[:-3] for f in os.listdir(os.path.join(runs_lib.REPO_ROOT, "experiments"))
               if f.endswith(".py")}
    assert on_disk - NOT_PAPER_CONFIGS == set(FULL_SIZE)


@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_full_size_config_follows_the_paper_recipe(name):
    config = _get_config(name, FULL_SIZE[name])
    zoo.get_spec(config.model.name)
    train.validate_config(config)
    assert (config.data.num_frames, config.data.stride, config.data.crop_size) == (64, 1, 224)
    assert config.optim.name == "sgd" and config.optim.momentum == 0.9
    assert config.batch_size % 8 == 0 and config.eval_batch_size % 8 == 0
    assert not config.data.name.startswith("synthetic_motion")


def test_batch_argument_scales_the_learning_rate():
    full = _get_config("kinetics400", "")
    small = _get_config("kinetics400", "batch=96")
    assert full.optim.learning_rate == pytest.approx(recipes.PAPER_LEARNING_RATE)
    assert small.optim.learning_rate == pytest.approx(full.optim.learning_rate / 4)
    assert small.optim.step_boundaries == full.optim.step_boundaries


def test_something_something_never_flips():
    assert _get_config("something_something_v2", "").data.flip is False
    assert _get_config("something_something_v2", "runlocal").data.flip is False


@pytest.mark.parametrize("name, arg, message", [
    ("kinetics400", "model=i4d", "Unknown model 'i4d'"),
    ("transfer", "dataset=ucf101", "Pass init_from="),
    ("transfer", "dataset=kinetics400,init_from=/r", "not a transfer target"),
    ("mini_kinetics_heavy", "", "Pass data_dir="),
    ("kinetics400", "runlocl", "Unknown config argument 'runlocl'"),
])
def test_bad_arguments_are_one_sentence(name, arg, message):
    with pytest.raises(ValueError, match=message):
        _get_config(name, arg)


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
RUNLOCAL = {"kinetics400": "runlocal", "something_something_v2": "runlocal",
            "mini_kinetics_heavy": "runlocal,model=s3dg"}


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
    result = _train_runlocal("transfer", f"runlocal,init_from={source}", data_dir,
                             runs_dir / "transfer")
    # Same class count (10 -> 10): every leaf, the classifier included, comes from the source.
    assert f"fine-tuning from {source} (10 classes -> 10); freshly initialised: nothing" \
        in capsys.readouterr().out
    assert result["dataset"] == "synthetic_motion/appearance_tiny"
    assert result["model"] == zoo.TINY_PREFIX + "s3dg"
