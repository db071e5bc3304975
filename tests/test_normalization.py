"""One normalisation for every path: [-1, 1] by default, a run's own mean/std when it has one."""

import ml_collections
import numpy as np
import pytest

from video_s3d import normalization
from video_s3d.data import video_ops


def test_default_is_minus_one_to_one_and_matches_the_tf_pipeline():
    frames = np.arange(256, dtype=np.uint8).reshape(1, 4, 64, 1).repeat(3, -1)
    norm = normalization.from_config(ml_collections.ConfigDict({"name": "x"}))
    assert norm.is_minus_one_to_one
    np.testing.assert_allclose(
        np.asarray(norm(frames)), video_ops.normalise(frames).numpy(), atol=1e-6
    )
    np.testing.assert_allclose(norm.numpy(frames), video_ops.normalise(frames).numpy(), atol=1e-6)


def test_mean_std_follow_the_torchvision_formula():
    mean, std = (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)
    norm = normalization.from_config({"input_mean": mean, "input_std": std})
    frames = np.random.default_rng(0).integers(0, 256, (2, 3, 5, 5, 3)).astype(np.uint8)
    expected = (frames / 255.0 - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(np.asarray(norm(frames)), expected, rtol=1e-5, atol=1e-5)
    assert not norm.is_minus_one_to_one
    assert normalization.from_config(norm.to_config()) == norm


@pytest.mark.parametrize(
    "data",
    [
        {"input_mean": (0.5,) * 3},
        {"input_mean": (0.5,) * 3, "input_std": (0.5,) * 2},
        {"input_mean": (0.5,) * 3, "input_std": (0.5, 0.0, 0.5)},
    ],
)
def test_incomplete_or_invalid_statistics_are_refused_in_one_sentence(data):
    with pytest.raises(ValueError, match="input_"):
        normalization.from_config(data)
