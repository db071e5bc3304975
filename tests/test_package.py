"""`pip install .` into a fresh virtual environment, then the console scripts work from anywhere.

To stay fast and offline, the fresh venv reuses the dependencies of the environment running
the tests (a .pth file adds that environment's site-packages) and installs this package alone
(`--no-deps --no-build-isolation`, setuptools from that environment). The package is built
from a copy of the source tree, so the checkout gets no build/ or *.egg-info.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from tests import inference_testing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ("video_s3d", "experiments", "launch", "pyproject.toml", "README.md", "LICENSE")
SCRIPTS = (
    "video-s3d-train",
    "video-s3d-predict",
    "video-s3d-features",
    "video-s3d-export",
    "video-s3d-import-weights",
    "video-s3d-cost",
    "video-s3d-zoo",
)

pytestmark = pytest.mark.slow


def _run(args, cwd, env, timeout=600):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    base = tmp_path_factory.mktemp("package")
    source = base / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        path = os.path.join(REPO, name)
        if os.path.isdir(path):
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy(path, source / name)
    env_dir = base / "venv"
    _run([sys.executable, "-m", "venv", str(env_dir)], cwd=base, env=dict(os.environ))
    python = str(env_dir / "bin" / "python")
    fresh_site = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=base,
        env=dict(os.environ),
    ).stdout.strip()
    # The dependencies: this test's own environment (found from the running interpreter).
    with open(os.path.join(fresh_site, "reuse_test_environment.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            str(source),
        ],
        cwd=base,
        env=env,
    )
    return env_dir, env, base


def test_installed_package_imports_from_the_venv_not_the_checkout(venv):
    env_dir, env, base = venv
    where = _run(
        [
            str(env_dir / "bin" / "python"),
            "-c",
            "import video_s3d, experiments; print(video_s3d.__file__); "
            "print(experiments.__file__); print(video_s3d.models.names()[:2])",
        ],
        cwd=base,
        env=env,
    ).stdout.splitlines()
    assert where[0].startswith(str(env_dir)) and where[1].startswith(str(env_dir))
    assert where[2] == "['i2d', 'i3d']"
    for script in SCRIPTS:
        assert os.access(env_dir / "bin" / script, os.X_OK), script


def test_console_scripts_help_and_predict_an_encoded_video(venv, tmp_path_factory, tmp_path):
    env_dir, env, base = venv
    bin_dir = env_dir / "bin"
    for script, flag in (("video-s3d-predict", "--workdir"), ("video-s3d-zoo", "--tiny")):
        out = _run([str(bin_dir / script), "--help"], cwd=tmp_path, env=env).stdout
        assert out.startswith("usage: ") and flag in out, out
    # absl's --help exits with status 1; it must still show this entry point's flags and doc.
    result = subprocess.run(
        [str(bin_dir / "video-s3d-train"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "--workdir" in result.stdout and "--step" in result.stdout, result.stdout
    assert "Any config field can be overridden" in result.stdout
    workdir = inference_testing.trained_workdir(str(tmp_path_factory.getbasetemp()))
    video = inference_testing.write_videos(str(tmp_path / "videos"), {"a": ["mp4"]})[0]
    result = _run(
        [
            str(bin_dir / "video-s3d-predict"),
            f"--workdir={workdir}",
            f"--video={video}",
            "--top_k=2",
            "--json",
        ],
        cwd=tmp_path,
        env=env,
    )
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["video"] == video and len(line["top_k"]) == 2
    assert abs(sum(p["probability"] for p in line["top_k"])) <= 1.0 + 1e-6
