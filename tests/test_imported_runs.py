"""An imported torchvision S3D is a complete run: predict, features, the Python API, init_from.

The weights are the seeded torchvision-format .pth of test_interop_torchvision (no download);
the clip is 13 frames of 209x209, the smallest torchvision's S3D accepts, to keep CPU time low.
"""

import json
import os

import interop_testing
import numpy as np
import pytest

import video_s3d
from video_s3d import import_weights, inference, models, normalization, parallel, predict, steps
from video_s3d.data.builders import video_files
from video_s3d.interop import torchvision_s3d
from video_s3d.interop import variables as variables_lib

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
pytestmark = pytest.mark.slow  # full-width S3D forwards on CPU: about a minute of compute
FRAMES, CROP = 13, 209


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    with open(os.path.join(FIXTURES, "torchvision_s3d_golden.json")) as f:
        golden = json.load(f)
    base = tmp_path_factory.mktemp("imported")
    pth = str(base / "s3d_seeded.pth")
    interop_testing.write_pth(
        pth,
        interop_testing.seeded_state_dict(golden["entries"], golden["seed"]),
        archive_name="s3d_seeded",
    )
    out = str(base / "run")
    assert (
        import_weights.main(
            [
                "--source=torchvision_s3d",
                f"--path={pth}",
                f"--workdir={out}",
                f"--num_frames={FRAMES}",
                f"--crop_size={CROP}",
            ]
        )
        == 0
    )
    return out


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A real H.264 file: smooth colour gradients that move (the codec keeps them close)."""
    t, h, w = 20, 240, 320
    yy, xx = np.mgrid[0:h, 0:w]
    frames = np.stack(
        [
            np.stack([(xx + 7 * i) % 256, (yy + 3 * i) % 256, (xx + yy + 5 * i) % 256], -1)
            for i in range(t)
        ]
    )
    path = str(tmp_path_factory.mktemp("video") / "clip.mp4")
    video_files.write_video(path, frames.astype(np.uint8))
    return path


def test_the_workdir_records_config_classes_and_torchvisions_normalisation(imported):
    with open(os.path.join(imported, "config.json")) as f:
        config = json.load(f)
    assert config["model"]["name"] == "s3d_torchvision"
    assert config["data"]["num_frames"] == FRAMES and config["data"]["crop_size"] == CROP
    norm = normalization.from_config(config["data"])
    assert norm.mean == torchvision_s3d.INPUT_MEAN and norm.std == torchvision_s3d.INPUT_STD
    run = inference.load_run(imported)
    assert run.step == 0 and run.num_classes == 400
    assert run.class_names[:2] == ["abseiling", "air drumming"] and run.class_names[-1] == "zumba"


def test_predict_gives_the_logits_of_torchvision_normalised_frames(imported, video, capsys):
    run = inference.load_run(imported)
    frames = run.read(video)
    # The same views as uint8 (inference normalises on the device), then torchvision's way:
    # RGB in [0, 1], minus its mean, over its std.
    raw = inference.evaluation_views(
        frames,
        num_frames=FRAMES,
        stride=1,
        crop_size=CROP,
        num_clips=1,
        num_crops=1,
        central_fraction=run.video_format.central_fraction,
    )
    assert raw.dtype == np.uint8
    torchvision_way = (
        (raw.astype(np.float64) / 255.0 - np.array(torchvision_s3d.INPUT_MEAN))
        / np.array(torchvision_s3d.INPUT_STD)
    ).astype(np.float32)
    model = models.create("s3d_torchvision", 400)
    expected = np.asarray(model.apply(run.variables, torchvision_way, train=False))[0]
    assert np.abs(expected).max() > 1.0  # a lively seeded net: logits are not ~0
    # Our [-1, 1] would give other logits: the normalisation matters for this check.
    minus_one = raw / 127.5 - 1.0
    other = np.asarray(model.apply(run.variables, minus_one.astype(np.float32), train=False))[0]
    assert np.abs(other - expected).max() > 0.1 * np.abs(expected).max()

    logits, _ = run.classify(run.views(frames))
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())

    assert predict.main([f"--workdir={imported}", f"--video={video}", "--json", "--top_k=400"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["step"] == 0
    probabilities = {p["index"]: p["probability"] for p in line["top_k"]}
    np.testing.assert_allclose(
        [probabilities[i] for i in range(400)],
        inference.softmax(expected.astype(np.float64)),
        rtol=1e-3,
        atol=1e-6,
    )


def test_python_api_and_init_from_read_the_imported_run(imported, video):
    model = video_s3d.load(imported)
    top = model.classify(video, top_k=3)
    assert len(top) == 3 and top[0]["probability"] >= top[1]["probability"]
    feature = model.features(video, endpoint="PreLogits")
    assert feature.shape == (1024,) and np.isfinite(feature).all()
    # init_from's loader (what train.init_from_checkpoint calls), with each step spelling.
    abstract = variables_lib.abstract_variables(models.create("s3d_torchvision", 400), FRAMES, CROP)
    for source in (
        imported,
        f"{imported}@best",
        f"{imported}@0",
        os.path.join(imported, "checkpoints", "0"),
    ):
        restored, info = steps.load_variables(source, abstract, parallel.make_mesh())
        assert info["step"] == 0 and info["model"] == "s3d_torchvision"
    with pytest.raises(FileNotFoundError, match="no checkpoint at step 5"):
        steps.load_variables(f"{imported}@5", abstract, parallel.make_mesh())
