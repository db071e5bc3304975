"""The train step and loop: NaN guard, precise BatchNorm, bfloat16 (tests/test_parallel.py: 1 vs 8 devices).

The small model and config live in tests/training_testing.py.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.training_testing import one_train_step, random_batch, small_config
from video_s3d import optim, parallel, train, train_state


def test_nan_loss_stops_naming_the_step_and_last_good_checkpoint(tmp_path):
    config = small_config(
        **{
            "optim.learning_rate": 1e30,
            "optim.warmup_steps": 0,
            "checkpoint_every_steps": 1,
            "num_train_steps": 6,
            "log_every_steps": 1,
        }
    )
    with pytest.raises(train.NonFiniteLossError) as error:
        train.train_and_evaluate(config, str(tmp_path))
    message = str(error.value)
    bad_step = int(re.search(r"at step (\d+)", message).group(1))
    saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    # Every step before the bad one was checkpointed (keep_checkpoints=2), none after it.
    assert 2 <= bad_step <= 6 and saved == list(range(max(1, bad_step - 2), bad_step))
    assert f"last good checkpoint is step {bad_step - 1} " in message


def test_precise_batch_norm_recovers_each_batch_statistic_whatever_the_momentum():
    config = small_config(sync_batch_norm=True)
    mesh = parallel.make_mesh(jax.devices()[:8])
    model = train_state.create_model(config, 10)
    state = train_state.create_state(
        model, optim.make_optimizer(config.optim, 4), config, mesh, jax.random.key(0)
    )
    batch = random_batch(config, 16)
    stats_step = train.make_batch_stats_step(model, mesh, sync_batch_norm=True)
    recovered = stats_step(state.variables, parallel.host_to_global(batch["video"], mesh))
    # Reference: one ordinary train-mode update (momentum 0.9) on one device, solved for the batch.
    plain = train_state.create_model(small_config(sync_batch_norm=False), 10)  # no axis name
    _, mutated = plain.apply(
        jax.device_get(state.variables),
        batch["video"],
        train=True,
        mutable=["batch_stats"],
        rngs={"dropout": jax.random.key(0)},
    )
    before = jax.device_get(state.batch_stats)
    for r, a, b in zip(
        jax.tree.leaves(recovered), jax.tree.leaves(mutated["batch_stats"]), jax.tree.leaves(before)
    ):
        np.testing.assert_allclose(
            np.asarray(r), (np.asarray(a) - 0.9 * np.asarray(b)) / 0.1, rtol=2e-4, atol=1e-5
        )


def test_bfloat16_compute_keeps_float32_parameters_and_optimiser_state():
    config = small_config(**{"model.dtype": "bfloat16", "optim.warmup_steps": 0})
    state, metrics = one_train_step(config, jax.devices()[:8], random_batch(config, 16))
    assert {leaf.dtype for leaf in jax.tree.leaves(state.params)} == {jnp.dtype("float32")}
    assert {
        leaf.dtype
        for leaf in jax.tree.leaves(state.opt_state)
        if hasattr(leaf, "dtype") and leaf.ndim
    } == {jnp.dtype("float32")}
    assert np.isfinite(float(metrics["loss"])) and metrics["loss"].dtype == jnp.float32


def test_uint8_batches_are_normalised_inside_the_steps_as_the_float_path_was():
    """Frames leave the host as uint8; the train, batch-statistics and eval programs map them
    with the run's normalisation on the device, giving what the float batches gave."""
    from video_s3d import evaluate, normalization

    config = small_config()
    mesh = parallel.make_mesh(jax.devices()[:1])
    model = train_state.create_model(config, config.data.num_classes)
    tx = optim.make_optimizer(config.optim, config.num_train_steps)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (8, 4, 16, 16, 3), dtype=np.uint8)
    labels = rng.integers(0, config.data.num_classes, 8).astype(np.int32)
    for norm in (
        normalization.Normalization(),  # [-1, 1]; the old host-side float path
        normalization.Normalization((0.43, 0.39, 0.37), (0.23, 0.22, 0.22)),
    ):
        step = train.make_train_step(
            model,
            tx,
            optim.make_schedule(config.optim, config.num_train_steps),
            mesh,
            num_classes=config.data.num_classes,
            label_smoothing=0.0,
            sync_batch_norm=True,
            freeze_batch_norm=False,
            seed=0,
            input_normalization=norm,
        )
        results = []
        for video in (frames, norm.numpy(frames)):  # uint8, and float normalised on the host
            state = train_state.create_state(model, tx, config, mesh, jax.random.key(0))
            batch = parallel.host_to_global({"video": video, "label": labels}, mesh)
            results.append(step(state, batch))
        (uint8_state, uint8_metrics), (float_state, float_metrics) = results
        np.testing.assert_allclose(
            float(uint8_metrics["loss"]), float(float_metrics["loss"]), rtol=1e-5
        )
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
            uint8_state.params,
            float_state.params,
        )
        eval_step = evaluate.make_eval_step(model, mesh, input_normalization=norm)
        stats_step = train.make_batch_stats_step(
            model, mesh, sync_batch_norm=True, input_normalization=norm
        )
        video_u8, video_f32 = (
            parallel.host_to_global(v, mesh) for v in (frames, norm.numpy(frames))
        )
        np.testing.assert_allclose(
            np.asarray(eval_step(uint8_state.variables, video_u8)),
            np.asarray(eval_step(uint8_state.variables, video_f32)),
            rtol=1e-4,
            atol=1e-5,
        )
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
            stats_step(uint8_state.variables, video_u8),
            stats_step(uint8_state.variables, video_f32),
        )


def test_flagged_clips_are_mirrored_inside_the_step_as_the_host_would_have():
    """The pipeline leaves flips to the device: {'video', 'flip'} in the step equals the
    host-mirrored clips, for the train step and the batch-statistics step."""
    from video_s3d import normalization
    from video_s3d.data import pipeline

    config = small_config()
    mesh = parallel.make_mesh(jax.devices()[:1])
    model = train_state.create_model(config, config.data.num_classes)
    tx = optim.make_optimizer(config.optim, config.num_train_steps)
    rng = np.random.default_rng(1)
    batch = {
        "video": rng.integers(0, 256, (8, 4, 16, 16, 3), dtype=np.uint8),
        "label": rng.integers(0, config.data.num_classes, 8).astype(np.int32),
        "flip": np.array([True, False] * 4),
    }
    host = {"video": pipeline.apply_flips(batch), "label": batch["label"]}
    assert not np.array_equal(host["video"], batch["video"])
    step = train.make_train_step(
        model,
        tx,
        optim.make_schedule(config.optim, config.num_train_steps),
        mesh,
        num_classes=config.data.num_classes,
        label_smoothing=0.0,
        sync_batch_norm=True,
        freeze_batch_norm=False,
        seed=0,
        input_normalization=normalization.Normalization(),
    )
    losses = []
    for feed in (batch, host):
        state = train_state.create_state(model, tx, config, mesh, jax.random.key(0))
        state, metrics = step(state, parallel.host_to_global(feed, mesh))  # donates the old one
        losses.append(float(metrics["loss"]))
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    stats_step = train.make_batch_stats_step(model, mesh, sync_batch_norm=True)
    clips = {"video": batch["video"], "flip": batch["flip"]}
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
        stats_step(state.variables, parallel.host_to_global(clips, mesh)),
        stats_step(state.variables, parallel.host_to_global(host["video"], mesh)),
    )
