"""The flow configs' storage: TV-L1 flow of the decoded RGB frames as grayscale JPEG pairs.

A flow config stores, for a clip of T RGB frames, the T - 1 flow fields between consecutive
frames (`video_s3d.flow.clip_flow`: grayscale, TV-L1, clipped to [-20, 20] px, rescaled to
[-1, 1]) as two grayscale JPEGs per field, x and y, as the I3D release stores its flow
(deepmind/kinetics-i3d README). A value f in [-1, 1] is stored as the grey level
round((f + 1) * 127.5), so 0..255 maps back to [-1, 1] with the default [-1, 1] input
normalisation (`video_s3d.normalization`), one level being 2/255 of the range (0.157 px).

Format error (measured on OpenCV TV-L1 flow of synthetic_motion clips, 150 fields at 64x64,
levels of the stored uint8 values; the tests check the bounds below on our own flow):
  grayscale JPEG quality 95 (ours):      mean 0.095, 99th percentile 1, max 8 levels, 1.0 kB
  grayscale JPEG quality 100:            mean 0.043, 99th percentile 1, max 2 levels, 1.6 kB
  3-channel (x, y, 0) 4:4:4 quality 95:  mean 0.31, 99th percentile 1, max 14 levels, 0.8 kB
(the third is DMVR's `flow/encoded` layout; its colour transform costs 3x the mean error).
Decoded with libjpeg's accurate integer IDCT, as the pipeline decodes flow
(video_ops.decode_flow); TF's default fast IDCT adds error (tiny synthetic flow: 0.27 levels mean
against 0.077).
STATED_MEAN_LEVELS / STATED_P99_LEVELS are the bounds a stored clip meets.
"""

from __future__ import annotations

import io
import logging
import time

import numpy as np
import tensorflow_datasets as tfds

from video_s3d.data.builders import common

QUALITY = 95
# The bounds of the format's error, in grey levels of the stored uint8 values (see above).
STATED_MEAN_LEVELS = 0.25
STATED_P99_LEVELS = 1.0
# Frame pairs per TV-L1 call: a fixed batch (the last one padded) keeps one compiled program
# per frame size, however long the videos are.
PAIRS_PER_CALL = 16
FEATURE_KEYS = ("flow_x", "flow_y", "label", "label_text", "video_id", "fps")


def features(class_names, frame_shape=(None, None, None)):
    """The FeaturesDict of a flow config: `flow_x`, `flow_y` grayscale JPEG videos [T - 1, H, W,
    1] beside the RGB configs' label, label_text, video_id and fps."""
    rgb = common.video_features(class_names)
    flow_video = tfds.features.Video(shape=(*frame_shape, 1), encoding_format="jpeg")
    return tfds.features.FeaturesDict(
        {
            "flow_x": flow_video,
            "flow_y": flow_video,
            **{key: rgb[key] for key in ("label", "label_text", "video_id", "fps")},
        }
    )


def to_levels(flow: np.ndarray) -> np.ndarray:
    """[-1, 1] flow -> uint8 grey levels round((f + 1) * 127.5)."""
    return np.round((np.clip(flow, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def from_levels(levels: np.ndarray) -> np.ndarray:
    """uint8 grey levels -> [-1, 1] flow (what the default normalisation computes on device)."""
    return levels.astype(np.float32) / 127.5 - 1.0


def encode_gray(images: np.ndarray) -> list[bytes]:
    """uint8 [N, H, W] -> one grayscale JPEG each."""
    from PIL import Image  # pillow comes with matplotlib

    encoded = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image, mode="L").save(buffer, format="JPEG", quality=QUALITY)
        encoded.append(buffer.getvalue())
    return encoded


def decode_gray(jpegs) -> np.ndarray:
    """The inverse of encode_gray, for tests and tools: uint8 [N, H, W]."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(jpeg)).convert("L")) for jpeg in jpegs])


def compute(frames: np.ndarray, params=None) -> np.ndarray:
    """uint8 RGB [T, H, W, 3] -> float32 [T - 1, H, W, 2] flow in [-1, 1] (clip_flow's), in
    calls of PAIRS_PER_CALL pairs; `params`: a dict of TVL1Params fields (None: OpenCV's
    defaults), kept a dict so builder configs need no JAX import."""
    return compute_pairs(frames[:-1], frames[1:], params)


def compute_pairs(first: np.ndarray, second: np.ndarray, params=None) -> np.ndarray:
    """uint8 RGB [N, H, W, 3] twice -> float32 [N, H, W, 2]: the flow from each frame of
    `first` to the same-numbered frame of `second`, as `compute` does it for consecutive
    frames (the same calls of PAIRS_PER_CALL pairs, so the same compiled program)."""
    import jax.numpy as jnp  # JAX only where flow is built

    from video_s3d import flow

    params = flow.TVL1Params(**(params or {}))
    gray0, gray1 = (np.asarray(flow.rgb_to_gray(jnp.asarray(f))) for f in (first, second))
    pairs = len(gray0)
    out = []
    for start in range(0, pairs, PAIRS_PER_CALL):
        index = np.minimum(np.arange(start, start + PAIRS_PER_CALL), pairs - 1)  # pad: repeat
        field = flow.tvl1_flow(gray0[index], gray1[index], params)
        out.append(np.asarray(flow.rescale(field))[: min(PAIRS_PER_CALL, pairs - start)])
    return np.concatenate(out)


def example_fields(frames: np.ndarray, params=None) -> dict[str, list[bytes]]:
    """`flow_x`, `flow_y` JPEGs of a clip's flow; UnreadableVideo for a one-frame video."""
    from video_s3d.data.builders import video_files

    if len(frames) < 2:
        raise video_files.UnreadableVideo("a single frame has no flow")
    levels = to_levels(compute(frames, params))
    return {"flow_x": encode_gray(levels[..., 0]), "flow_y": encode_gray(levels[..., 1])}


def frame_fields(
    frames: np.ndarray, *, flow: bool, params=None, encode=common.encode_jpeg
) -> dict[str, list[bytes]]:
    """What an example stores of its frames: their flow (`example_fields`) with `flow`, else
    `video`, the frames as `encode` writes them."""
    return example_fields(frames, params) if flow else {"video": encode(frames)}


class Progress:
    """Logs videos and frame pairs done, the pair rate and an ETA, at most every `every` s:
    flow builds take minutes to hours (TV-L1 per pair), longer than the RGB ones."""

    def __init__(self, label: str, total_videos: int | None, every: float = 30.0):
        self.label, self.total, self.every = label, total_videos, every
        self.videos = self.pairs = 0
        self.first_done = self.last = None

    def update(self, pairs: int) -> None:
        self.videos += 1
        self.pairs += pairs
        now = time.time()
        if self.first_done is None:  # the first video pays TV-L1's compile: rate from the next
            self.first_done = self.last = now
            self.first_pairs = self.pairs
            return
        if now - self.last < self.every and self.videos != self.total:
            return
        self.last = now
        rate = (self.pairs - self.first_pairs) / max(now - self.first_done, 1e-9)
        eta = ""
        if self.total:
            left = (self.total - self.videos) * self.pairs / self.videos / max(rate, 1e-9)
            eta = f", ETA {left / 60:.1f} min"
        of = f"/{self.total}" if self.total else ""
        logging.warning(
            "flow %s: %d%s videos, %d frame pairs, %.1f pairs/s%s",
            self.label,
            self.videos,
            of,
            self.pairs,
            rate,
            eta,
        )
