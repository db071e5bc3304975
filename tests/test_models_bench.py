"""The benchmark entry point runs end to end (one tiny model, tiny clips)."""

import json

import pytest

from video_s3d.models import bench


@pytest.mark.slow
def test_bench_times_a_model_and_prints_the_table(capsys):
    argv = [
        "--models=tiny_i2d",
        "--num_frames=4",
        "--crop_size=16",
        "--batch_size=2",
        "--steps=2",
        "--num_classes=3",
        "--json",
        "--fast_compile",
    ]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    record = json.loads(next(line for line in out if line.startswith("{")))
    assert record["model"] == "tiny_i2d" and record["batch"] == 2
    assert record["forward_ms"] > 0 and record["train_ms"] > 0 and record["params"] > 0
    assert record["train_clips_per_s"] == pytest.approx(2 / (record["train_ms"] / 1e3))
    assert any(line.startswith("tiny_i2d ") for line in out)  # the table row


def test_bench_rejects_unknown_models_before_compiling(capsys):
    assert bench.main(["--models=tiny_i2d,i9d"]) == 2
    assert "Unknown model 'i9d'" in capsys.readouterr().err
