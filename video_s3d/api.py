"""The Python API for the everyday job: load a run, classify a video, get its features.

    import video_s3d
    model = video_s3d.load("runs/s3dg")                  # best step by validation accuracy
    model.classify("clip.mp4", top_k=5)                  # [{"label", "index", "probability"}]
    model.features("clip.mp4", endpoint="Mixed_5c")      # float32 [channels]
    video_s3d.models.names(); video_s3d.models.create("s3dg", num_classes=400)

A video is a path (decoded with PyAV at the frame rate and short side the run's dataset
stored, as `predict` does) or uint8 frames [T, H, W, 3] already at that size; either way it
is cut into the run's evaluation views and the outputs are averaged over them.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from video_s3d import inference


class Classifier:
    """A restored run (`inference.Run` in `.run`) with a small, stable surface."""

    def __init__(self, run: inference.Run):
        self.run = run

    @property
    def class_names(self) -> list[str]:
        return self.run.class_names

    def __repr__(self) -> str:
        return f"Classifier({self.run.describe()})"

    def _views(self, video: Any) -> np.ndarray:
        if isinstance(video, (str, os.PathLike)):
            return self.run.views(self.run.read(os.fspath(video)))
        frames = np.asarray(video)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"frames must be uint8 [T, H, W, 3] RGB, got shape {frames.shape}; "
                f"or pass a video file's path."
            )
        if self.run.modality == "flow":  # a flow run's input: the frames' TV-L1 flow
            frames = self.run.flow_levels(frames)
        return self.run.views(frames)

    def logits(self, video: Any) -> np.ndarray:
        """float64 [classes]: logits averaged over the evaluation views."""
        logits, _ = self.run.classify(self._views(video))
        return logits

    def classify(self, video: Any, top_k: int = 5) -> list[dict[str, Any]]:
        """The `top_k` most probable classes, most probable first."""
        if top_k < 1:
            raise ValueError(f"top_k={top_k} must be at least 1.")
        probabilities = inference.softmax(self.logits(video))
        order = np.argsort(-probabilities, kind="stable")[:top_k]
        return [
            {"label": self.class_names[i], "index": int(i), "probability": float(probabilities[i])}
            for i in order
        ]

    def features(self, video: Any, endpoint: str = "PreLogits") -> np.ndarray:
        """float32 [channels]: `endpoint`'s output averaged over time, space and views."""
        names = self.run.endpoint_names()
        if endpoint not in names:
            raise ValueError(f"endpoint={endpoint!r} is not one of {', '.join(names)}.")
        _, feature = self.run.classify(self._views(video), endpoint=endpoint)
        return np.asarray(feature, np.float32)


def load(
    run_or_checkpoint: str | os.PathLike,
    step: str | int = "best",
    *,
    num_clips: int | None = None,
    num_crops: int | None = None,
) -> Classifier:
    """A training (or `import_weights`) workdir, its checkpoints/ folder or checkpoints/<N>.

    step: "best" (best validation accuracy; the latest where no step was evaluated),
    "latest" or a step number. A checkpoints/<N> path picks its own step.
    """
    path = os.fspath(run_or_checkpoint)
    names_a_step = os.path.basename(path.rstrip("/")).isdigit()
    run = inference.load_run(
        path, step=None if names_a_step else step, num_clips=num_clips, num_crops=num_crops
    )
    return Classifier(run)
