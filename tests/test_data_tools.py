"""The data command-line tools: build (with skipped-video summary), show (contact sheet), bench."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from video_s3d.data import bench, build, show
from video_s3d.data.builders import synthetic_render, video_files


def test_build_prints_splits_and_names_skipped_videos(tmp_path):
    manual = tmp_path / "ucf"
    (manual / "lists").mkdir(parents=True)
    (manual / "lists" / "classInd.txt").write_text("1 Archery\n")
    (manual / "lists" / "trainlist01.txt").write_text(
        "Archery/v_Archery_g01_c01.avi 1\nArchery/v_Archery_g02_c01.avi 1\n"
    )
    (manual / "lists" / "testlist01.txt").write_text("Archery/v_Archery_g01_c01.avi\n")
    (manual / "Archery").mkdir()
    clip = synthetic_render.make_clip("motion", 0, (0,), 6, 64)
    video_files.write_video(str(manual / "Archery" / "v_Archery_g01_c01.mp4"), clip)
    (manual / "Archery" / "v_Archery_g02_c01.avi").write_bytes(b"\x00" * 100)
    data_dir = str(tmp_path / "tfds")
    summary = build.build("ucf101/split1", data_dir=data_dir, manual_dir=str(manual))
    assert "train: 1 videos" in summary and "test: 1 videos" in summary
    assert "1 videos skipped" in summary and "train/v_Archery_g02_c01: cannot decode" in summary
    report = summary.splitlines()[-1].split("list written to ")[1].rstrip(")")
    assert json.load(open(report))[0]["video_id"] == "v_Archery_g02_c01"
    assert "already built" in build.build("ucf101/split1", data_dir=data_dir)


def test_build_cli_reports_bad_input_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "video_s3d.data.build", "--dataset=kinetics999"],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: Unknown dataset 'kinetics999'")


def test_build_without_beam_installed_says_so_in_one_line(tmp_path, capsys):
    if importlib.util.find_spec("apache_beam") is not None:
        pytest.skip("Apache Beam is installed here")
    (tmp_path / "manual").mkdir()
    argv = [
        "--dataset=ucf101/split1",
        f"--data_dir={tmp_path / 'tfds'}",
        f"--manual_dir={tmp_path / 'manual'}",
        "--beam_pipeline_options=runner=DirectRunner",
    ]
    assert build.main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "error: --beam_pipeline_options needs Apache Beam, which is not installed here: "
        "pip install apache-beam, or leave the option out to build in this process."
    )


def test_show_writes_a_contact_sheet(tmp_path):
    from PIL import Image

    out = str(tmp_path / "sheet.png")
    message = show.show(
        "synthetic_motion/motion_tiny",
        out,
        num_clips=3,
        num_frames=4,
        crop_size=32,
        data_dir=str(tmp_path / "tfds"),
    )
    assert "3 clips x 4 frames" in message
    image = np.asarray(Image.open(out))
    assert image.shape[0] > 200 and image.shape[1] > 300
    assert image[..., :3].std() > 10  # not a blank page


def test_bench_prints_the_table():
    table = bench.run(
        num_frames=4, crop_size=32, batch_size=2, height=48, width=64, seconds=0.2, rounds=1
    )
    lines = table.splitlines()
    # Both crop modes: pipeline and decoder-alone frames/s/core and their ratio, side by side.
    for mode in bench.CROP_MODES:
        row = next(line.split() for line in lines if line.startswith(mode + " "))
        pipeline_rate, decoder_rate, ratio = float(row[1]), float(row[2]), float(row[3].rstrip("x"))
        assert pipeline_rate > 0 and decoder_rate > 0
        assert abs(ratio - pipeline_rate / decoder_rate) < 0.01
    assert "64-frame clips, paper crop" in table
    assert table.count("per-step CPU ms per frame") == 2
    for step in (
        "decode: fused decode_and_crop",
        "decode: whole frame, then crop",
        "16x16 at the bottom-right",
        "flip (uint8 crop)",
        "resize to 32",
        "rest: read",
    ):
        assert table.count(step) == 2, step
    # The cores-per-accelerator figure is an estimate, with where its numbers come from.
    assert "ESTIMATE" in table and "64.2 G multiply-adds" in table and "989.4" in table
    assert len([line for line in lines if "cores like this one" in line]) == 3
