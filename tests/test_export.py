"""`python -m video_s3d.export`: the SavedModel reloads in TensorFlow and gives the JAX model's logits."""

import os

import jax
import numpy as np
import pytest
import tensorflow as tf

from tests import inference_testing
from video_s3d import export, inference, train_state
from video_s3d.compile_policy import CompilePolicy


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return inference_testing.trained_workdir(str(tmp_path_factory.getbasetemp()))


def _jax_logits(run, frames):
    video = frames.astype(np.float32) * (2.0 / 255.0) - 1.0
    forward = CompilePolicy.from_config(run.config).jit(
        lambda v, x: run.model.apply(v, x, train=False)
    )
    return np.asarray(forward(run.variables, video))


def _random_variables(run, seed):
    """Freshly initialised weights with noisy BN statistics: logits that vary with the input
    (four training steps barely move them from the bias)."""
    fresh = jax.tree.map(np.asarray, run.variables)
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda v: (v + rng.normal(0, 0.2, v.shape)).astype(v.dtype), fresh)


def test_saved_model_serves_uint8_frames_with_the_jax_models_logits(workdir, tmp_path, capsys):
    out = str(tmp_path / "saved_model")
    assert export.main([f"--workdir={workdir}", f"--out={out}"]) == 0
    assert "serving_default(frames: uint8 [batch, 8, 32, 32, 3])" in capsys.readouterr().out

    loaded = tf.saved_model.load(out)
    serve = loaded.signatures["serving_default"]
    spec = serve.structured_input_signature[1]["frames"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 8, 32, 32, 3]
    run = inference.load_run(workdir)
    assert [n.decode() for n in loaded.class_names.numpy()] == run.class_names
    assert loaded.input_shape.numpy().tolist() == [8, 32, 32, 3]

    rng = np.random.default_rng(0)
    for batch in (1, 3):  # the batch dimension is polymorphic: one program serves both
        frames = rng.integers(0, 256, (batch, 8, 32, 32, 3), dtype=np.uint8)
        result = serve(frames=tf.constant(frames))
        expected = _jax_logits(run, frames)
        assert result["logits"].shape == (batch, 10)
        np.testing.assert_allclose(result["logits"].numpy(), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            result["probabilities"].numpy(), tf.nn.softmax(expected).numpy(), rtol=1e-5, atol=1e-7
        )
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        serve(frames=tf.zeros([1, 8, 32, 33, 3], tf.uint8))  # fixed T, H, W


def test_accelerator_exports_keep_the_function_on_cpu(workdir, tmp_path):
    """cpu+cuda: native XLA conv/pool ops instead of the CPU lowerings, same logits on CPU;
    weights that make the logits depend on the input."""
    run = inference.load_run(workdir)
    run.variables = _random_variables(run, seed=1)
    out = export.export(run, str(tmp_path / "multi"), platforms=("cpu", "cuda"))
    serve = tf.saved_model.load(out).signatures["serving_default"]
    frames = np.random.default_rng(1).integers(0, 256, (4, 8, 32, 32, 3), dtype=np.uint8)
    logits = serve(frames=tf.constant(frames))["logits"].numpy()
    expected = _jax_logits(run, frames)
    assert np.ptp(expected, axis=0).max() > 0.1 * np.abs(expected).max()  # input-dependent
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_bad_arguments_are_refused_before_any_work(workdir, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "file").write_text("x")
    with pytest.raises(SystemExit):
        export.parse_args([f"--workdir={workdir}", f"--out={taken}"])
    assert "already exists and is not empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export.parse_args(
            [f"--workdir={workdir}", f"--out={tmp_path / 'new'}", "--platforms=cpu,gpu"]
        )
    assert "unknown platforms ['gpu']" in capsys.readouterr().err
    assert export.main([f"--workdir={tmp_path}", f"--out={tmp_path / 'new'}"]) == 2
    assert "point --workdir at a training" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "new")
