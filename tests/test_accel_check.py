"""The accelerator check's tiny mode runs on CPU and writes every figure it prints."""

import json

import pytest

from video_s3d import accel_check


def test_tiny_mode_times_a_model_and_the_pipeline_and_writes_json(tmp_path, capsys):
    out = tmp_path / "accel.json"
    assert (
        accel_check.main(
            ["--tiny", "--models=tiny_s3dg", "--steps=1", "--pipeline_seconds=1", f"--out={out}"]
        )
        == 0
    )
    report = json.loads(out.read_text())
    (row,) = report["models"]
    assert row["model"] == "tiny_s3dg" and (row["batch"], row["frames"], row["size"]) == (2, 8, 32)
    assert row["step_ms"] > 0 and row["clips_per_s"] == pytest.approx(2e3 / row["step_ms"])
    assert row["gmacs_per_clip"] > 0 and row["peak_memory_bytes"] > 0
    assert row["mfu"] is None  # a CPU has no entry in the peak table
    assert report["pipeline"]["frames_per_s"] > 0 and report["pipeline"]["host_cores"] >= 1
    printed = capsys.readouterr().out
    assert "tiny_s3dg" in printed and "frames/s" in printed and "MFU" in printed


def test_peak_table_matches_device_kinds_most_specific_first():
    assert accel_check.peak_flops("NVIDIA H100 PCIe") == 756.5e12
    assert accel_check.peak_flops("NVIDIA H100 80GB HBM3") == 989.5e12
    assert accel_check.peak_flops("NVIDIA H200") == 989.5e12
    assert accel_check.peak_flops("NVIDIA A100-SXM4-40GB") == 312e12
    assert accel_check.peak_flops("TPU v5 lite") == 197e12
    assert accel_check.peak_flops("TPU v4") == 275e12
    assert accel_check.peak_flops("cpu") is None


def test_unknown_model_is_one_sentence(capsys):
    with pytest.raises(SystemExit):
        accel_check.main(["--models=s3dx"])
    assert "s3dx" in capsys.readouterr().err
