"""video_s3d/train_bench.py: the three feeds per model, timed, and the summary table."""

import json

from tests.conftest import TINY_MOTION as TINY
from tests.training_testing import SMALL_MODEL
from video_s3d import train_bench


def test_bench_times_input_only_in_memory_and_pipeline(data_dir, tmp_path, capsys):
    output = tmp_path / "rows.json"
    assert (
        train_bench.main(
            [
                f"--models={SMALL_MODEL}",
                f"--dataset={TINY}",
                f"--data_dir={data_dir}",
                "--batch_size=16",
                "--num_frames=4",
                "--stride=2",
                "--crop_size=16",
                "--steps=2",
                "--warmup=1",
                f"--out={output}",
            ]
        )
        == 0
    )
    rows = json.loads(output.read_text())
    assert [r["feed"] for r in rows] == ["input only", "in-memory", "pipeline"]
    assert all(r["clips_per_sec"] > 0 and r["step_ms"] > 0 for r in rows)
    assert rows[1]["compile_s"] > 0 and rows[0]["compile_s"] is None
    table = capsys.readouterr().out
    assert "clips/s" in table and "8 device(s), global batch 16, 4 frames at 16x16" in table
    assert any(word in table for word in ("input", "compute"))
