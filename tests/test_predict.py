"""`python -m video_s3d.predict`: real containers, eval-identical clip sampling, labels, exit codes."""

import json
import os
import shutil
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from tests import inference_testing
from video_s3d import (
    checkpointing,
    export,
    features,
    inference,
    predict,
    predict_bench,
    train_state,
)
from video_s3d.compile_policy import CompilePolicy
from video_s3d.data import pipeline, sources
from video_s3d.data.builders import video_files
from video_s3d.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return inference_testing.trained_workdir(str(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("videos"))
    paths = inference_testing.write_videos(folder, {"a": ["mp4", "webm"], "b": ["avi", "mkv"]})
    corrupt = inference_testing.write_corrupt(os.path.join(folder, "b", "broken.mp4"))
    return folder, paths, corrupt


def test_views_are_the_eval_pipelines_views(workdir):
    """Same frames in, same views out as pipeline.eval_dataset (clips, crops, resize, scale)."""
    data_dir = os.path.join(os.path.dirname(workdir), "tfds")
    raw = next(iter(sources.get(inference_testing.TINY, data_dir).read("validation", 0, 1)))
    frames = tf.map_fn(
        lambda j: tf.io.decode_jpeg(j, channels=3), raw["jpegs"], fn_output_signature=tf.uint8
    ).numpy()
    for num_clips, num_crops, fraction in ((3, 1, 1.0), (2, 3, 0.8)):
        settings = dict(
            num_frames=6, stride=2, crop_size=24, num_clips=num_clips, num_crops=num_crops
        )
        expected = next(
            pipeline.eval_batches(
                inference_testing.TINY,
                data_dir=data_dir,
                split="validation",
                batch_size=num_clips * num_crops,
                central_fraction=fraction,
                fused_decode=False,
                process_index=0,
                process_count=1,
                **settings,
            )
        )["video"]
        views = inference.evaluation_views(frames, central_fraction=fraction, **settings)
        # uint8: the model's jitted forward normalises them.
        assert views.shape == (num_clips * num_crops, 6, 24, 24, 3) and views.dtype == np.uint8
        np.testing.assert_array_equal(views, expected)
        assert len({v.tobytes() for v in views}) == len(views)  # 16 frames: clips differ


def test_folder_of_containers_prints_top_k_labels_and_names_the_unreadable_file(
    workdir, videos, capsys
):
    folder, paths, corrupt = videos
    assert predict.main([f"--workdir={workdir}", f"--video={folder}", "--top_k=3"]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    names = checkpointing.Checkpoints(workdir, read_only=True).run_info()["class_names"]
    assert names[:2] == ["moving right", "moving left"]  # stored by train.py with the checkpoint
    assert len(lines) == 5 and "tiny_i2d at step 4" in err
    by_path = {line.split("] ", 1)[1].split(": ", 1)[0]: line for line in lines}
    assert set(by_path) == set(paths) | {corrupt}
    assert "unreadable video (cannot decode" in by_path[corrupt]
    for path in paths:
        shown = by_path[path].split(": ", 1)[1].split("  ")
        assert len(shown) == 3
        for item in shown:
            label, percent = item.rsplit(" ", 1)
            assert label in names and percent.endswith("%") and 0 <= float(percent[:-1]) <= 100
    assert lines[0].startswith("[1/5] ") and lines[-1].startswith("[5/5] ")


def test_json_is_one_object_per_file_with_the_models_averaged_probabilities(
    workdir, videos, capsys
):
    folder, paths, corrupt = videos
    assert predict.main([f"--workdir={workdir}", f"--video={folder}", "--json", "--top_k=4"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert len(rows) == 5 and "[5/5]" in err
    errors = [r for r in rows if "error" in r]
    assert [r["video"] for r in errors] == [corrupt]
    run = inference.load_run(workdir)
    forward = CompilePolicy.from_config(run.config).jit(
        lambda v, x: run.model.apply(v, x, train=False)
    )
    for row in (r for r in rows if "error" not in r):
        assert row["step"] == 4 and row["num_views"] == 2  # config.data.eval_num_clips=2
        assert [p["label"] for p in row["top_k"]] == [
            run.class_names[p["index"]] for p in row["top_k"]
        ]
        probabilities = [p["probability"] for p in row["top_k"]]
        assert len(probabilities) == 4 and probabilities == sorted(probabilities, reverse=True)
        # Independently: the model on each of the two clips, logits averaged, softmax.
        views = run.views(run.read(row["video"]))
        logits = np.asarray(forward(run.variables, views)).mean(0)
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(probabilities, np.sort(expected)[::-1][:4], rtol=1e-5)


def test_checkpoint_may_be_the_checkpoints_folder_or_a_step_and_must_be_a_run(
    workdir, videos, tmp_path, capsys
):
    _, paths, corrupt = videos
    for source in (os.path.join(workdir, "checkpoints"), os.path.join(workdir, "checkpoints", "4")):
        assert predict.main([f"--workdir={source}", f"--video={paths[0]}", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["step"] == 4

    assert predict.main([f"--workdir={tmp_path}", f"--video={paths[0]}"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("Error: ") and "point --workdir at a training (or import_weights) run" in err
    )
    assert len(err.splitlines()) == 1
    copied = tmp_path / "no_config"
    shutil.copytree(os.path.join(workdir, "checkpoints"), copied / "checkpoints")
    assert predict.main([f"--workdir={copied}", f"--video={paths[0]}"]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert predict.main([f"--workdir={workdir}", f"--video={tmp_path / 'missing*.mp4'}"]) == 2
    assert "matches no file" in capsys.readouterr().err

    # Every file unreadable: the only case with a failing exit status.
    assert predict.main([f"--workdir={workdir}", f"--video={corrupt}"]) == 1
    out, err = capsys.readouterr()
    assert "unreadable video" in out and "none of the 1 video(s) could be read" in err


@pytest.mark.parametrize("cli", [predict, features, export])
def test_a_bug_while_loading_the_run_keeps_its_traceback(
    cli, workdir, videos, tmp_path, monkeypatch
):
    """Only a UserError is printed as one line; any other ValueError is ours to fix."""

    def broken(workdir):
        raise ValueError("a bug in our code, not a user mistake")

    monkeypatch.setattr(inference, "load_config", broken)
    argv = {
        predict: [f"--video={videos[1][0]}"],
        features: [f"--video={videos[1][0]}", f"--out={tmp_path / 'f.npz'}"],
        export: [f"--out={tmp_path / 'saved'}"],
    }[cli]
    with pytest.raises(ValueError, match="a bug in our code") as raised:
        cli.main([f"--workdir={workdir}", *argv])
    assert not isinstance(raised.value, UserError)


def test_class_names_fall_back_to_the_dataset_then_to_indices(workdir):
    config = inference.load_config(workdir)
    assert inference.class_names_of({}, config, 10)[:2] == ["moving right", "moving left"]
    config.data.name = "not_a_dataset"
    assert inference.class_names_of({}, config, 3) == ["class_0", "class_1", "class_2"]
    assert inference.class_names_of({"class_names": ["x", "y"]}, config, 2) == ["x", "y"]


def test_entry_point_runs_as_a_module(workdir, videos):
    _, paths, _ = videos
    env = dict(os.environ, JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "video_s3d.predict",
            f"--workdir={workdir}",
            f"--video={paths[1]}",
            "--top_k=2",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"[1/1] {paths[1]}: ") and done.stdout.count("%") == 2


def test_files_are_decoded_as_the_training_dataset_stored_its_videos(tmp_path):
    def fmt(name):
        return inference.video_format_of(
            ml_collections.ConfigDict({"name": name, "data_dir": str(tmp_path)})
        )

    assert fmt("kinetics400") == inference.VideoFormat(25.0, 256, 0.875)
    assert fmt("hmdb51/split2") == inference.VideoFormat(25.0, 256, 0.875)
    # Native fps; short videos spread over the window (the dataset's short_clip default).
    assert fmt("something_something_v2") == inference.VideoFormat(None, 256, 0.875, "spread")
    assert fmt("synthetic_motion/motion") == inference.VideoFormat(25.0, 64, 1.0)
    assert fmt("synthetic_motion/motion_tiny") == inference.VideoFormat(25.0, 32, 1.0)
    assert fmt("in_memory") == inference.VideoFormat(None, None, 1.0)


@pytest.mark.parametrize("extension", ["mp4", "webm"])
def test_only_the_frames_the_views_use_are_decoded_and_they_are_read_videos(tmp_path, extension):
    """The selective decoder returns read_video's frames at every position the views pick."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (47, 24, 40, 3), dtype=np.uint8)  # every frame distinct
    path = str(tmp_path / f"long.{extension}")
    video_files.write_video(path, frames, fps=25)
    for fps, short_side, num_clips in ((None, None, 3), (10, 16, 2), (30, 20, 4), (25, None, 1)):
        settings = dict(num_frames=5, stride=2, num_clips=num_clips)
        full, _ = video_files.read_video(path, fps=fps, short_side=short_side)
        selected = inference.read_frames_for_views(path, fps=fps, short_side=short_side, **settings)
        assert len(selected) == len(full) and selected.shape == full.shape
        assert selected.num_decoded <= num_clips * 5 < len(full)
        views = dict(crop_size=16, num_crops=3, central_fraction=0.875, **settings)
        np.testing.assert_array_equal(
            inference.evaluation_views(selected, **views), inference.evaluation_views(full, **views)
        )


def test_the_selective_decoder_refuses_what_read_video_refuses_in_the_same_words(tmp_path):
    """One probe (video_files.open_video) serves both readers."""
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "garbage.mp4").write_bytes(b"not a video at all " * 64)
    for name in ("missing.mp4", "empty.mp4", "garbage.mp4"):
        path = str(tmp_path / name)
        with pytest.raises(video_files.UnreadableVideo) as whole:
            video_files.read_video(path)
        with pytest.raises(video_files.UnreadableVideo) as selected:
            inference.read_frames_for_views(
                path, fps=None, short_side=None, num_frames=4, stride=1, num_clips=1
            )
        assert str(selected.value) == str(whole.value), name


def test_a_video_shorter_than_one_clip_is_filled_with_a_warning(tmp_path, caplog):
    path = str(tmp_path / "short.mp4")
    video_files.write_video(path, np.full((6, 16, 16, 3), 90, np.uint8), fps=25)
    # The absl logger's own level: absl's verbosity is process-wide, whatever ran before.
    with caplog.at_level("WARNING", logger="absl"):
        selected = inference.read_frames_for_views(
            path, fps=None, short_side=None, num_frames=8, stride=2, num_clips=2
        )
    # repeat_last at stride 2: frames 0, 2, 4, then the last one (5) repeated.
    assert len(selected) == 6 and selected.num_decoded == 4
    assert (
        "has 6 frames, fewer than one clip's 15 (8 at stride 2): the clip is filled without "
        "going back in time (short_clip=repeat_last)" in caplog.text
    )


def test_the_memory_benchmarks_measurement_reads_a_streamed_clip(tmp_path):
    # The table itself runs each measurement in a fresh process (python -m
    # video_s3d.predict_bench); here one measurement runs in this one.
    path = str(tmp_path / "clip.mp4")
    assert predict_bench.write_long_video(path, 1.0, 64, 48) == 25
    settings = dict(short_side=32, num_frames=4, stride=2, num_clips=2, num_crops=1, crop_size=16)
    row = predict_bench.measure("selected", path, settings)
    assert row["frames"] == 25 and row["views"] == [2, 4, 16, 16, 3]
    assert row["peak_above_imports_mib"] >= 0 and row["seconds"] > 0


def test_a_flow_run_decodes_and_computes_only_the_pairs_its_views_use(tmp_path, monkeypatch):
    """Field k of a flow run's input needs frames k and k + 1: only those are decoded, only
    those pairs go through the flow computation, and the views are the ones the whole video's
    flow gives. The flow here is a stand-in that names its pair exactly (frame differences):
    TV-L1 itself on these noise frames would amplify float rounding (tests/test_two_stream.py
    runs the real one through predict)."""
    from video_s3d.data.builders import flow_frames

    computed = []

    def frame_difference(first, second, params=None):
        computed.append(len(first))
        diff = second[..., :2].astype(np.float32) - first[..., :2].astype(np.float32)
        return diff / 255.0

    monkeypatch.setattr(flow_frames, "compute_pairs", frame_difference)
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (31, 24, 40, 3), dtype=np.uint8)
    path = str(tmp_path / "long.mp4")
    video_files.write_video(path, frames, fps=25)
    settings = dict(num_frames=4, stride=2, num_clips=2)
    full, _ = video_files.read_video(path, fps=None, short_side=None)
    whole = flow_frames.to_levels(flow_frames.compute(full))  # every field
    selected = inference.read_frames_for_views(
        path, fps=None, short_side=None, flow_pairs=True, **settings
    )
    assert len(selected) == len(full) and selected.num_decoded <= 2 * 2 * 4 < len(full)
    levels = inference.flow_levels_for_views(selected, None, **settings)
    assert len(levels) == len(whole) and levels.num_decoded <= 2 * 4 < len(whole)
    assert computed == [len(whole), levels.num_decoded]  # the pairs computed: all, then picked
    views = dict(crop_size=16, num_crops=3, central_fraction=0.875, flow=True, **settings)
    np.testing.assert_array_equal(
        inference.evaluation_views(levels, **views), inference.evaluation_views(whole, **views)
    )
    # A single frame has no flow: one sentence, before any flow is computed.
    one = str(tmp_path / "one.mp4")
    video_files.write_video(one, frames[:1], fps=25)
    with pytest.raises(video_files.UnreadableVideo, match="single frame has no flow"):
        inference.read_frames_for_views(one, fps=None, short_side=None, flow_pairs=True, **settings)
