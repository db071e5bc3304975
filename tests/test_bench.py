"""`python -m video_s3d.bench`: bad arguments fail in one sentence before any compile; the
all-reduce count gets its simulated devices in a child process."""

import stat
import sys

import pytest

from video_s3d import bench, bench_figures


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


def test_the_torch_comparison_times_each_side_under_each_allocator_best_against_best(tmp_path):
    """Ours runs here and, under the other allocator settings, in a child; a stand-in for
    PyTorch's interpreter reports a time that depends on the environment it was given, so the
    test sees each of TORCH_ALLOCATORS arrive intact (no setting leaking from this process)
    and the fastest one chosen."""
    fake_torch = tmp_path / "python"
    fake_torch.write_text(
        f"#!{sys.executable}\n"
        "import json, os\n"
        "ms = 300.0\n"
        "if 'MALLOC_ARENA_MAX' in os.environ: ms = 100.0\n"
        "if 'GLIBC_TUNABLES' in os.environ: ms = 200.0\n"
        "if 'MALLOC_ARENA_MAX' in os.environ and 'GLIBC_TUNABLES' in os.environ: ms = -1.0\n"
        "print(json.dumps({'train_ms': ms, 'torch': 'fake'}))\n"
    )
    fake_torch.chmod(fake_torch.stat().st_mode | stat.S_IEXEC)
    row = bench_figures.versus_torch(
        str(fake_torch), 1, 8, 32, 1, rounds=1, steps=1, progress=lambda _: None,
        lowerings=("auto",), model="tiny_s3d_torchvision",
    )  # fmt: skip
    assert row["torch_ms_by_allocator"] == {
        "glibc defaults": 300.0,
        "MALLOC_* tuned": 100.0,
        "ours (GLIBC_TUNABLES)": 200.0,
    }
    assert row["torch_best"] == "MALLOC_* tuned" and row["torch_ms"] == 100.0
    programs = row["jax_ms_by_program"]
    assert sorted(programs) == ["auto, glibc defaults", "auto, tuned allocator"]
    assert row["jax_ms"] == min(programs.values()) > 0
    assert row["speed_vs_torch"] == pytest.approx(100.0 / row["jax_ms"])
