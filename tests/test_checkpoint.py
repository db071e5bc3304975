"""Checkpoints: other device counts, keep-last-K plus best, wrong-model workdirs, fine-tuning."""

import json

import jax
import numpy as np
import pytest

from tests.training_testing import small_config
from video_s3d import checkpointing, inputs, optim, parallel, train, train_state


def _state(config, devices, seed=0):
    mesh = parallel.make_mesh(devices)
    model = train_state.create_model(config, config.data.num_classes)
    tx = optim.make_optimizer(config.optim, config.num_train_steps)
    return train_state.create_state(model, tx, config, mesh, jax.random.key(seed)), model, tx, mesh


RUN = {"model": "tests.training_testing:small_video_net", "num_classes": 10}


def test_a_checkpoint_restores_onto_another_device_count_with_its_data_position(tmp_path):
    config = small_config()
    state, model, tx, _ = _state(config, jax.devices()[:8])
    data = inputs.InMemoryIterator(local_batch=4, num_frames=2, crop_size=4, num_classes=10, seed=0)
    for _ in range(3):
        next(data)
    ckpt = checkpointing.Checkpoints(str(tmp_path), keep=2)
    ckpt.save(7, state.replace(step=state.step + 7), RUN, data)
    ckpt.close()

    for devices in (jax.devices()[:2], jax.devices()[:1]):
        mesh = parallel.make_mesh(devices)
        fresh = inputs.InMemoryIterator(
            local_batch=4, num_frames=2, crop_size=4, num_classes=10, seed=0
        )
        reader = checkpointing.Checkpoints(str(tmp_path))
        assert reader.latest_step() == 7 and reader.run_info()["model"] == RUN["model"]
        restored = reader.restore(7, train_state.abstract_state(model, tx, config, mesh), fresh)
        reader.close()
        assert int(restored.step) == 7 and fresh.position == 3
        for saved, loaded in zip(
            jax.tree.leaves(state.replace(step=state.step + 7)), jax.tree.leaves(restored)
        ):
            assert loaded.sharding.mesh.size == len(devices)
            np.testing.assert_array_equal(np.asarray(saved), np.asarray(loaded))


def test_keeps_the_last_k_and_the_best_and_prunes_iterator_states(tmp_path):
    config = small_config()
    state, *_ = _state(config, jax.devices()[:1])
    data = inputs.InMemoryIterator(local_batch=1, num_frames=1, crop_size=2, num_classes=10, seed=0)
    ckpt = checkpointing.Checkpoints(str(tmp_path), keep=2)
    accuracy = {2: 0.3, 4: 0.9, 6: 0.5, 8: 0.4}
    for step in range(1, 9):
        metrics = {checkpointing.BEST_METRIC: accuracy[step]} if step in accuracy else None
        ckpt.save(step, state, RUN, data, metrics=metrics)
    ckpt.wait()
    ckpt.save(9, state, RUN, data)  # one more: pruning runs after each save
    ckpt.close()
    assert checkpointing.Checkpoints(str(tmp_path)).all_steps() == [4, 8, 9]
    # A resumed run still knows which one was best (the metrics are on disk).
    resumed = checkpointing.Checkpoints(str(tmp_path), keep=2)
    assert resumed.best_step() == 4
    resumed.save(10, state, RUN, data)
    resumed.close()
    assert checkpointing.Checkpoints(str(tmp_path)).all_steps() == [4, 9, 10]
    kept_inputs = sorted(int(p.name) for p in (tmp_path / "input_state").iterdir())
    assert set(kept_inputs) >= {4, 9, 10} and min(kept_inputs) >= 4


def test_workdir_holding_another_models_checkpoint_fails_before_training(tmp_path):
    config = small_config()
    state, *_ = _state(config, jax.devices()[:1])
    ckpt = checkpointing.Checkpoints(str(tmp_path))
    ckpt.save(3, state, {"model": "tiny_i2d", "num_classes": 10})
    ckpt.close()
    with pytest.raises(
        ValueError,
        match=r"already holds checkpoints of model 'tiny_i2d' with 10 "
        r"classes.*use a new --workdir",
    ):
        train.train_and_evaluate(config, str(tmp_path))
    assert not (tmp_path / "metrics.jsonl").exists()  # failed before any training


def test_workdir_trained_on_other_classes_fails_before_training(tmp_path):
    """Same model and class count, but a class renamed (a dataset version replaced a pair)."""
    config = small_config()
    state, *_ = _state(config, jax.devices()[:1])
    names = [f"class_{i}" for i in range(config.data.num_classes)]
    old_names = names[:3] + ["rotating clockwise"] + names[4:]
    ckpt = checkpointing.Checkpoints(str(tmp_path))
    ckpt.save(3, state, train.run_info(config, len(names), old_names))
    ckpt.close()
    with pytest.raises(
        ValueError,
        match=r"trained on other classes than 'in_memory' has now "
        r"\('rotating clockwise' -> 'class_3'\).*new --workdir",
    ):
        train.train_and_evaluate(config, str(tmp_path))
    assert not (tmp_path / "metrics.jsonl").exists()


def test_fine_tuning_takes_the_backbone_with_a_new_head_and_can_freeze_batch_norm(tmp_path):
    source_dir, target_dir = tmp_path / "source", tmp_path / "target"
    train.train_and_evaluate(small_config(num_train_steps=2), str(source_dir))
    source = checkpointing.Checkpoints(str(source_dir))
    config = small_config(num_train_steps=2)
    _, source_model, _, mesh = _state(config, jax.devices()[:8])
    source_vars = source.restore_model(
        2, train_state.abstract_variables(source_model, config, mesh)
    )
    source.close()

    config = small_config(
        **{
            "data.num_classes": 5,
            "init_from": str(source_dir),
            "freeze_batch_norm": True,
            "num_train_steps": 2,
        }
    )
    state = train.train_and_evaluate(config, str(target_dir))
    assert state.params["head"]["kernel"].shape == (16, 5)
    # Frozen BN: the statistics are exactly the source's after two steps of training.
    for a, b in zip(
        jax.tree.leaves(source_vars["batch_stats"]), jax.tree.leaves(state.batch_stats)
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The backbone started from the source (it moved by two small steps, not a fresh init).
    src = np.asarray(source_vars["params"]["conv0"]["kernel"])
    new = np.asarray(state.params["conv0"]["kernel"])
    assert np.abs(new - src).max() < 0.1 * np.abs(src).max()
    assert checkpointing.Checkpoints(str(target_dir)).run_info()["num_classes"] == 5


def test_rerunning_a_finished_workdir_trains_nothing_and_restores_a_lost_result(tmp_path, capsys):
    config = small_config(num_train_steps=2)
    train.train_and_evaluate(config, str(tmp_path))
    result = (tmp_path / "result.json").read_text()
    (tmp_path / "result.json").unlink()  # e.g. stopped between the last save and the write
    state = train.train_and_evaluate(config, str(tmp_path))
    assert int(state.step) == 2 and "resumed from" in capsys.readouterr().out
    assert (tmp_path / "result.json").exists()
    assert (
        json.loads((tmp_path / "result.json").read_text())["metrics"]
        == json.loads(result)["metrics"]
    )
    train.train_and_evaluate(config, str(tmp_path))
    assert "was already trained to step 2" in capsys.readouterr().out
