"""`python -m video_s3d.features` (npz content, labels from folders, plot) and the 2D projections."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests import inference_testing
from video_s3d import errors, features, inference, normalization, projection, train_state
from video_s3d.compile_policy import CompilePolicy


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return inference_testing.trained_workdir(str(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("class_folders"))
    paths = inference_testing.write_videos(
        folder, {"left": ["mp4", "webm", "mkv"], "right": ["avi", "mp4", "mp4"]}
    )
    corrupt = inference_testing.write_corrupt(os.path.join(folder, "right", "broken.mkv"))
    return folder, paths, corrupt


def test_features_npz_holds_pooled_endpoint_features_labels_and_predictions(
    workdir, videos, tmp_path, capsys
):
    folder, paths, corrupt = videos
    out, png = str(tmp_path / "features.npz"), str(tmp_path / "features.png")
    assert (
        features.main(
            [
                f"--workdir={workdir}",
                f"--video={folder}",
                "--endpoint=Mixed_4f",
                f"--out={out}",
                f"--plot={png}",
            ]
        )
        == 0
    )
    printed = capsys.readouterr()
    assert "wrote" in printed.out and "6 video(s)" in printed.out and "1 unreadable" in printed.out
    assert "t-SNE" in printed.out and "[7/7]" in printed.err

    saved = np.load(out)
    run = inference.load_run(workdir)
    assert sorted(saved["videos"].tolist()) == sorted(paths)
    assert saved["failed"].tolist() == [corrupt]
    assert [os.path.basename(os.path.dirname(p)) for p in saved["videos"]] == saved[
        "labels"
    ].tolist()
    assert str(saved["endpoint"]) == "Mixed_4f" and int(saved["step"]) == 4
    assert saved["class_names"].tolist() == run.class_names
    assert saved["logits"].shape == (6, 10)
    np.testing.assert_array_equal(saved["predictions"], saved["logits"].argmax(1))
    assert saved["predicted_labels"].tolist() == [run.class_names[i] for i in saved["predictions"]]

    # Independently for one video: the endpoint's activation, mean over T, H, W, then over views.
    views = run.views(run.read(str(saved["videos"][0])))
    forward = CompilePolicy.from_config(run.config).jit(
        lambda v, x: run.model.apply(v, x, train=False, return_endpoints=True)
    )
    # Views are uint8; the model sees them normalised as the run records.
    video = normalization.from_config(run.config.data)(jnp.asarray(views))
    logits, endpoints = forward(run.variables, video)
    expected = np.asarray(endpoints["Mixed_4f"]).mean(axis=(1, 2, 3)).mean(0)
    assert (
        saved["features"].shape == (6, expected.shape[0]) and saved["features"].dtype == np.float32
    )
    np.testing.assert_allclose(saved["features"][0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(saved["logits"][0], np.asarray(logits).mean(0), rtol=1e-5, atol=1e-6)
    assert np.ptp(saved["features"], axis=0).max() > 0  # different videos, different features

    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(png) > 10_000


def test_glob_pre_logits_pca_and_labels_only_when_folders_differ(workdir, videos, tmp_path, capsys):
    folder, _, _ = videos
    out, png = str(tmp_path / "pre.npz"), str(tmp_path / "pre.png")
    assert (
        features.main(
            [
                f"--workdir={workdir}",
                f"--video={folder}/left/*.m*",
                "--endpoint=PreLogits",
                f"--out={out}",
                f"--plot={png}",
                "--projection=pca",
            ]
        )
        == 0
    )
    assert "PCA" in capsys.readouterr().out
    saved = np.load(out)
    assert len(saved["videos"]) == 2 and "labels" not in saved  # one folder: no labels
    run = inference.load_run(workdir)
    head_channels = run.variables["params"]["head"]["Logits"]["kernel"].shape[-2]
    assert saved["features"].shape == (2, head_channels)
    assert os.path.getsize(png) > 5_000


def test_unknown_endpoint_lists_the_valid_names_and_writes_nothing(
    workdir, videos, tmp_path, capsys
):
    folder, _, corrupt = videos
    out = str(tmp_path / "x.npz")
    assert (
        features.main(
            [f"--workdir={workdir}", f"--video={folder}", "--endpoint=Mixed_9z", f"--out={out}"]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: --endpoint=Mixed_9z is not an endpoint of tiny_i2d; use one of ")
    for name in ("Conv_1a", "Mixed_3b", "Mixed_5c", "PreLogits"):
        assert name in err
    assert features.main([f"--workdir={workdir}", f"--video={corrupt}", f"--out={out}"]) == 1
    assert "none of the 1 video(s) could be read" in capsys.readouterr().err
    assert not os.path.exists(out)
    with pytest.raises(SystemExit):
        features.parse_args(["--workdir=x", "--video=y", "--out=features.txt"])


# ------------------------------------------------------------------------- projections
def _clusters(n_per=40, dims=64, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (4, dims))
    labels = np.repeat(np.arange(4), n_per)
    return centres[labels] + rng.normal(0, 1, (len(labels), dims)), labels


def test_tsne_keeps_clusters_apart():
    x, labels = _clusters()
    points, kl = projection.tsne(x)
    assert points.shape == (len(x), 2) and np.isfinite(points).all() and 0 <= kl < 2.0
    d = ((points[:, None] - points[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(1)] == labels).mean() == 1.0  # every nearest neighbour same cluster
    # Tiny sets get a perplexity below their size (scikit-learn refuses otherwise).
    small, _ = projection.tsne(x[:7])
    assert small.shape == (7, 2) and projection.effective_perplexity(7) == 2.0


def test_pca_finds_the_directions_of_largest_variance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) * [5.0, 2.0, 0.1]
    points, explained = projection.pca(x)
    assert points.shape == (200, 2) and explained[0] > explained[1] > 0.1
    np.testing.assert_allclose(np.abs(np.corrcoef(points[:, 0], x[:, 0])[0, 1]), 1, atol=1e-3)
    points, _ = projection.project_2d(x[:3], "tsne")  # too few for t-SNE: PCA
    assert points.shape == (3, 2)
    with pytest.raises(errors.UserError, match="Unknown projection"):
        projection.project_2d(x, "umap")
