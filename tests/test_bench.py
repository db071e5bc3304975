"""`python -m video_s3d.bench`: bad arguments fail in one sentence before any compile; the
all-reduce count gets its simulated devices in a child process."""

import pytest

from video_s3d import bench


def test_unknown_section_and_missing_torch_python_are_one_sentence(capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--sections=quickstart,speed"])
    assert "unknown section(s) ['speed']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(["--torch_python=/nonexistent/python"])
    assert "create a venv with torch and torchvision" in capsys.readouterr().err
    args = bench.parse_args(["--sections=memory", "--memory_shape=64x224"])
    assert args.sections == ["memory"] and bench._shape(args.memory_shape, 2) == [64, 224]


def test_the_all_reduce_count_runs_in_its_own_process_beside_timed_sections():
    # Simulated devices slow the timed steps, so only a child interpreter gets them.
    row = bench._all_reduces_in_child(cpu_devices=2)
    assert row["devices"] == 2
    assert row["gradient_all_reduces"] == 1
