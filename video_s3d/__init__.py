"""video_s3d: S3D-family video classifiers in JAX/Flax (see README.md).

    import video_s3d
    model = video_s3d.load("runs/s3dg")          # a training or import_weights workdir
    print(model.classify("clip.mp4", top_k=5))
    features = model.features("clip.mp4", endpoint="Mixed_5c")
    video_s3d.models.names()                      # the zoo; video_s3d.models.create(name, ...)

Submodules load on first use, so `import video_s3d` stays cheap for the CLIs.
"""

from __future__ import annotations

import importlib

__all__ = ["load", "models"]


def load(run_or_checkpoint, step="best", **kwargs):
    """`video_s3d.api.load`: a restored run as a `Classifier` (classify, features, logits)."""
    from video_s3d import api

    return api.load(run_or_checkpoint, step, **kwargs)


def __getattr__(name: str):
    if name == "models":
        return importlib.import_module("video_s3d.models")
    raise AttributeError(f"module 'video_s3d' has no attribute {name!r}")
