"""Detection through the one framework: `video_s3d.main` trains, checkpoints, resumes and writes
result.json for `config.task = "detection"`; the train step is the same on one and two devices;
`init_from` loads a classification run's trunk; `predict --task=detection` draws its boxes."""

import json
import os
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest
from PIL import Image

from experiments import synthetic_detection as detection_configs
from launch import local
from video_s3d import checkpointing, errors, normalization, optim, parallel, train_state
from video_s3d.compile_policy import CompilePolicy
from video_s3d.detection import data, draw, predict, trainer, training

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _main(*args, cache_dir):
    env = local.run_environment(cpu_devices=2)
    # The resumed run compiles the same programs: reuse them (tens of seconds on 2 cores).
    env.update(CUDA_VISIBLE_DEVICES="", JAX_COMPILATION_CACHE_DIR=cache_dir)
    command = [sys.executable, "-m", "video_s3d.main", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def detection_run(tmp_path_factory):
    """A runlocal detection run on two devices trained to step 4, then resumed to step 6."""
    root = tmp_path_factory.mktemp("detection")
    workdir, data_dir, cache = (str(root / name) for name in ("run", "tfds", "xla_cache"))
    common = [
        "--config=experiments/synthetic_detection.py:runlocal",
        f"--workdir={workdir}",
        f"--config.data.data_dir={data_dir}",
    ]
    first = _main(*common, cache_dir=cache)
    assert first.returncode == 0, first.stderr[-3000:]
    with open(os.path.join(workdir, "result.json")) as f:
        first_result = json.load(f)
    second = _main(*common, "--config.num_train_steps=6", cache_dir=cache)
    assert second.returncode == 0, second.stderr[-3000:]
    with open(os.path.join(workdir, "result.json")) as f:
        trained = json.load(f)
    evaluated = _main(*common, "--mode=eval", "--step=latest", cache_dir=cache)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    return workdir, first, first_result, second, trained


@pytest.mark.slow
def test_main_trains_checkpoints_resumes_and_writes_result(detection_run):
    workdir, first, first_result, second, trained = detection_run
    assert "2 device(s)" in first.stdout and "step      4/4" in first.stdout
    assert first_result["task"] == "detection" and first_result["step"] == 4
    metrics = first_result["metrics"]
    for key in ("frame_map@0.5", "video_map@0.2", "video_map@0.5"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["num_videos"] == 2
    assert set(first_result["per_class_frame_ap@0.5"]) == set(_class_names())

    assert f"resumed from {workdir}/checkpoints at step 4" in second.stdout
    assert "steps 4->6" in second.stdout
    assert trained["step"] == 6
    # --mode=eval of the last checkpoint gives the numbers training reported for it: the
    # checkpoint holds the precise BatchNorm statistics that evaluation used.
    with open(os.path.join(workdir, "result.json")) as f:
        reevaluated = json.load(f)
    assert reevaluated["step"] == 6
    for key in ("frame_map@0.5", "video_map@0.2", "video_map@0.5"):
        assert reevaluated["metrics"][key] == pytest.approx(trained["metrics"][key], abs=1e-6)
    assert reevaluated["train_clips_per_sec"] == trained["train_clips_per_sec"]
    assert sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))) == [4, 6]
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records if "train/loss" in r] == [2, 4, 6]
    assert all(np.isfinite(r["train/head_class"]) for r in records if "train/loss" in r)
    assert [r["step"] for r in records if "eval/frame_map@0.5" in r] == [4, 6]
    # The best step is ranked by frame-mAP, which each evaluated checkpoint records.
    ckpt = checkpointing.Checkpoints(workdir, read_only=True)
    try:
        assert ckpt.best_step() in (4, 6)
    finally:
        ckpt.close()
    assert Image.open(os.path.join(workdir, "detections.png")).size[0] > 0


def _class_names():
    from video_s3d.data.builders import synthetic_detection

    return synthetic_detection.DETECTION_CLASSES


def _tiny_config():
    config = detection_configs.get_config("runlocal")
    # Every anchor becomes a proposal (no NMS, no top-k cut), so the regions do not depend on
    # the order of near-tied scores, which differs with the per-device batch.
    config.detector.update(proposal_nms_iou=1.0, pre_nms_proposals=48, num_proposals=48)
    config.optim.update(name="sgd", learning_rate=0.1, momentum=0.0)
    return config


def _step_on(devices, config, batch):
    mesh = parallel.make_mesh(devices)
    model = trainer.create_model(config, 6)
    tx = optim.make_optimizer(config.optim, 10)
    state = train_state.create_state(model, tx, config, mesh, jax.random.key(0))
    step = trainer.make_train_step(
        model,
        tx,
        optim.make_schedule(config.optim, 10),
        mesh,
        sync_batch_norm=True,
        policy=CompilePolicy.from_config(config),
        norm=normalization.Normalization(),
    )
    state, scalars = step(state, parallel.host_to_global(batch, mesh))
    return parallel.replicated_to_host((state.params, state.batch_stats, scalars))


def test_train_step_is_the_same_on_one_and_two_devices():
    config = _tiny_config()
    rng = np.random.default_rng(0)
    gt_boxes = np.zeros((4, 3, 4), np.float32)
    gt_boxes[:, 0] = [0.2, 0.1, 0.6, 0.5]
    gt_boxes[:, 1] = [0.5, 0.5, 0.9, 0.8]
    batch = {
        "video": rng.integers(0, 256, (4, 4, 32, 32, 3), dtype=np.uint8),
        "gt_boxes": gt_boxes,
        "gt_labels": np.array([[0, 3, 0], [1, 2, 0], [5, 4, 0], [2, 2, 0]], np.int32),
        "gt_valid": np.array([[True, True, False]] * 4),
    }
    one = _step_on(jax.devices()[:1], config, batch)
    two = _step_on(jax.devices()[:2], config, batch)
    assert np.isfinite(one[2]["loss"]) and one[2]["loss"] > 0
    np.testing.assert_allclose(one[2]["loss"], two[2]["loss"], rtol=1e-4)
    for a, b in zip(jax.tree.leaves(one[:2]), jax.tree.leaves(two[:2])):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_init_from_loads_a_classification_runs_trunk(tmp_path):
    config = detection_configs.get_config("runlocal")
    mesh = parallel.make_mesh(jax.devices()[:1])
    classifier = train_state.create_model(config, 10)
    tx = optim.make_optimizer(config.optim, 10)
    source = train_state.create_state(classifier, tx, config, mesh, jax.random.key(1))
    ckpt = checkpointing.Checkpoints(str(tmp_path / "cls"), async_save=False)
    ckpt.save(3, source, {"model": config.model.name, "num_classes": 10, "dataset": "x"})
    ckpt.close()

    config.init_from = str(tmp_path / "cls")
    model = trainer.create_model(config, 6)
    state = train_state.create_state(model, tx, config, mesh, jax.random.key(0))
    loaded = trainer.trunk_from_classification_run(state, config, model, mesh, False)
    theirs = parallel.replicated_to_host(source.params["backbone"])
    mine = parallel.replicated_to_host(loaded.params["backbone"])
    before = parallel.replicated_to_host(state.params["backbone"])
    assert set(mine) < set(theirs)  # the detector keeps the layers up to its feature layer
    for name in mine:
        for a, b in zip(jax.tree.leaves(mine[name]), jax.tree.leaves(theirs[name])):
            np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(mine))
    )
    np.testing.assert_array_equal(  # the detection layers stay as initialised
        parallel.replicated_to_host(loaded.params["head_logits"]["kernel"]),
        parallel.replicated_to_host(state.params["head_logits"]["kernel"]),
    )


@pytest.mark.slow
def test_predict_draws_boxes_and_labels(detection_run, tmp_path):
    from video_s3d import predict as predict_cli
    from video_s3d.data.builders import synthetic_detection, video_files

    workdir = detection_run[0]
    frames, _, _ = synthetic_detection.make_clip((9, 1, 0), 12, 64, 3)
    video_files.write_video(str(tmp_path / "clip.mp4"), frames, fps=25)
    out = tmp_path / "out"
    code = predict_cli.main(
        [
            f"--workdir={workdir}",
            f"--video={tmp_path / 'clip.mp4'}",
            f"--out={out}",
            "--min_score=0",  # an untrained detector's boxes: every valid one is drawn
            "--sheet_frames=4",
            "--annotated_video",
        ]
    )
    assert code == 0
    sheet = np.asarray(Image.open(out / "clip_detections.png").convert("RGB"))
    scale = 256 // 64
    assert sheet.shape == (64 * scale, 4 * 64 * scale, 3)  # 4 frames in one row, enlarged

    # Where the detector's best box of the first frame lies, the sheet shows a red outline.
    config, model, variables, names, _, _ = predict.load_detector(workdir, None)
    read, _ = video_files.read_video(str(tmp_path / "clip.mp4"), fps=None, short_side=None)
    square = predict.square(read, int(config.data.crop_size))
    video = training.LabelledVideo("v", square, np.zeros(0, int), None, None)
    detect = training.make_detect(model, int(config.max_detections))
    state = training.TrainState(variables["params"], variables["batch_stats"], None)
    found = training.detect_videos(detect, state, [video], int(config.data.num_frames), 1, 8)
    found = found["v"][1]
    best = draw.kept(found, 0, 0.0)[0]
    y0, x0 = np.round(found["boxes"][0, best, :2] * 64 * scale).astype(int)
    corner = sheet[max(y0 - 1, 0) : y0 + 2, max(x0 - 1, 0) : x0 + 2].reshape(-1, 3)
    assert any(tuple(pixel) == draw.DETECTION for pixel in corner)
    plain = np.asarray(Image.fromarray(read[0]).resize((256, 256), Image.NEAREST))
    assert np.any(sheet[:, :256] != plain)

    annotated, _ = video_files.read_video(
        str(out / "clip_detections.mp4"), fps=None, short_side=None
    )
    assert annotated.shape == (12, 256, 256, 3)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    config = detection_configs.get_config("runlocal")
    config.data.data_dir = str(tmp_path_factory.mktemp("tfds"))
    data.ensure_ready(config.data)
    return config.data


def test_key_frame_batches_mirror_clips_with_their_boxes_and_resume_exactly(tiny_data, tmp_path):
    def stream(flip):
        data_config = ml_collections.ConfigDict(tiny_data.to_dict())
        data_config.flip = flip
        return data.train_iterator(
            data_config, local_batch=8, seed=3, process_index=0, process_count=1
        )

    plain, mirrored = next(stream(False)), next(stream(True))
    assert plain["video"].shape == (8, 4, 32, 32, 3) and plain["video"].dtype == np.uint8
    assert plain["gt_valid"].any(axis=1).all()  # every key frame shows an actor
    boxes = plain["gt_boxes"][plain["gt_valid"]]
    assert np.all((boxes >= 0) & (boxes <= 1)) and np.all(boxes[:, 2:] > boxes[:, :2])
    flipped = [not np.array_equal(a, b) for a, b in zip(plain["video"], mirrored["video"])]
    assert 0 < sum(flipped) < 8  # the same clips, about half of them mirrored
    for i, was_flipped in enumerate(flipped):
        expected_video = plain["video"][i, :, :, ::-1] if was_flipped else plain["video"][i]
        np.testing.assert_array_equal(mirrored["video"][i], expected_video)
        y0, x0, y1, x1 = plain["gt_boxes"][i].T
        expected = np.stack([y0, 1 - x1, y1, 1 - x0], -1) if was_flipped else plain["gt_boxes"][i]
        valid = plain["gt_valid"][i]
        np.testing.assert_allclose(mirrored["gt_boxes"][i][valid], expected[valid], atol=1e-6)

    first = stream(False)
    next(first)
    first.save(str(tmp_path / "state"))
    expected_next = next(first)
    resumed = stream(False)
    resumed.restore(str(tmp_path / "state"))
    for key, value in next(resumed).items():
        np.testing.assert_array_equal(value, expected_next[key])


def test_dataset_mistakes_are_one_sentence(tiny_data):
    with pytest.raises(errors.UserError, match="is no detection dataset"):
        data.builder("no_such_set/split1")
    with pytest.raises(errors.UserError, match="synthetic_detection/huge"):
        data.builder("synthetic_detection/huge", tiny_data.data_dir)
    wrong_split = ml_collections.ConfigDict(tiny_data.to_dict())
    wrong_split.eval_split = "testing"
    with pytest.raises(errors.UserError, match="has no split 'testing'"):
        data.dataset_info(wrong_split)
