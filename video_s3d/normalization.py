"""What pixel values a run's weights expect, in one place for training, eval, inference and export.

Frames travel as uint8 (0..255) and are normalised on the device, inside the jitted programs:
`x = (frames / 255 - mean) / std`, per channel. This project's own runs (and TF-Slim's
Inception-v1) use [-1, 1], i.e. mean = std = 0.5; torchvision's Kinetics weights expect their
own statistics on [0, 1] (values from torchvision's `VideoClassification` preset, quoted in
`video_s3d/interop/torchvision_s3d.py`).

A run records its normalisation in `config.data.input_mean` / `config.data.input_std`;
`from_config` reads it, and an older config without those fields means [-1, 1].

Flow (`config.data.modality = "flow"`): two channels (x, y) stored as levels (f + 1) * 127.5
(data/builders/flow_frames.py), so the default [-1, 1] map, per channel, returns the flow f
itself; a horizontal flip of a flow clip also negates x, after normalisation (`train_input`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax.numpy as jnp
import numpy as np

from video_s3d.errors import UserError

# [-1, 1]: mean 0.5 and std 0.5 on the [0, 1] scale.
MINUS_ONE_TO_ONE_MEAN = (0.5, 0.5, 0.5)
MINUS_ONE_TO_ONE_STD = (0.5, 0.5, 0.5)
FLOW_CHANNELS = 2  # (x, y)


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Per-channel `(frames / 255 - mean) / std`; channels are the last axis."""

    mean: tuple[float, ...] = MINUS_ONE_TO_ONE_MEAN
    std: tuple[float, ...] = MINUS_ONE_TO_ONE_STD
    flow: bool = False  # frames are (x, y) flow: a flip negates x

    def __post_init__(self):
        if len(self.mean) != len(self.std):
            raise UserError(
                f"input_mean {self.mean} and input_std {self.std} need one value per "
                "channel each; give both the same length."
            )
        if any(s <= 0 for s in self.std):
            raise UserError(f"input_std {self.std} must be positive in every channel.")

    @property
    def is_minus_one_to_one(self) -> bool:
        return np.allclose(self.mean, 0.5) and np.allclose(self.std, 0.5)

    def _scale_and_offset(self, xp):
        # (x / 255 - m) / s  ==  x * (1 / (255 s)) - m / s: one multiply-add per value.
        std = xp.asarray(self.std, xp.float32)
        mean = xp.asarray(self.mean, xp.float32)
        return 1.0 / (255.0 * std), mean / std

    def __call__(self, frames: Any) -> jnp.ndarray:
        """uint8 or float frames in 0..255 -> float32, on the device (traceable under jit)."""
        scale, offset = self._scale_and_offset(jnp)
        return frames.astype(jnp.float32) * scale - offset

    def model_input(self, frames: Any) -> Any:
        """What a jitted program feeds its model: uint8 frames normalised here, on the device;
        floating-point frames are taken as already normalised (clips made by tests and tools)
        and pass unchanged. Decided from the dtype when tracing, so it costs nothing."""
        if jnp.issubdtype(frames.dtype, jnp.integer):
            return self(frames)
        return frames

    def train_input(self, batch: dict[str, Any]) -> Any:
        """`model_input` of a training batch, its clips flagged in 'flip' (if any) mirrored
        left-right first: the pipeline leaves that to the device, where it fuses with this
        map into one pass (data/pipeline.py)."""
        video = batch["video"]
        if "flip" not in batch:
            return self.model_input(video)
        flip = batch["flip"].reshape((-1,) + (1,) * (video.ndim - 1))
        video = self.model_input(jnp.where(flip, jnp.flip(video, axis=-2), video))
        if self.flow:  # mirrored motion: x changes sign (after normalisation, where 0 is 0)
            video = jnp.where(flip, video * jnp.asarray([-1.0, 1.0], video.dtype), video)
        return video

    def numpy(self, frames: np.ndarray) -> np.ndarray:
        """The same map in numpy, for host-side code and tests."""
        scale, offset = self._scale_and_offset(np)
        return (np.asarray(frames, np.float32) * scale - offset).astype(np.float32)

    def to_config(self) -> dict[str, tuple[float, ...]]:
        return {"input_mean": tuple(self.mean), "input_std": tuple(self.std)}


def from_config(data: Any) -> Normalization:
    """The run's normalisation from its `config.data` (ConfigDict or dict); default [-1, 1]."""
    get = data.get if hasattr(data, "get") else (lambda k, d=None: getattr(data, k, d))
    mean: Sequence[float] | None = get("input_mean", None)
    std: Sequence[float] | None = get("input_std", None)
    flow = (get("modality", None) or "rgb") == "flow"
    if mean is None and std is None:
        if flow:
            half = (0.5,) * FLOW_CHANNELS
            return Normalization(half, half, flow=True)
        return Normalization()
    if mean is None or std is None:
        raise UserError("config.data sets only one of input_mean / input_std; set both or neither.")
    if flow and len(mean) != FLOW_CHANNELS:
        raise UserError(
            f"A flow run (config.data.modality='flow') has {FLOW_CHANNELS} input channels, but "
            f"input_mean has {len(mean)} values: give two values (x, y) or none."
        )
    return Normalization(tuple(float(m) for m in mean), tuple(float(s) for s in std), flow=flow)
