"""Decoding video files with PyAV: resample the frame rate and resize the short side on the way.

`read_video` raises `UnreadableVideo` (never anything else) for a file it cannot turn into
frames, so builders can skip it, count it and name it in their summary.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Iterator

import av
import numpy as np


class UnreadableVideo(Exception):
    """A video file that is missing, empty, corrupt or has no decodable frame."""


def output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the short side scaled to `short_side`, aspect kept, sizes even."""
    if not short_side:
        return width, height
    scale = short_side / min(width, height)
    # Even sizes keep chroma-subsampled JPEGs aligned; the short side stays exact.
    new_width = short_side if width <= height else 2 * max(1, round(width * scale / 2))
    new_height = short_side if height < width else 2 * max(1, round(height * scale / 2))
    return new_width, new_height


def to_rgb(frame: av.VideoFrame, short_side: int | None) -> np.ndarray:
    """uint8 [H, W, 3] RGB pixels of a decoded frame, its short side resized to `short_side`
    (area averaging)."""
    width, height = output_size(frame.width, frame.height, short_side)
    return frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")


@contextlib.contextmanager
def open_video(path: str) -> Iterator[tuple[av.container.InputContainer, Any, float]]:
    """(container, first video stream, its frame rate) of `path`, for reading inside the block.

    A missing, empty or stream-less file, or an FFmpeg error while the block reads it, raises
    `UnreadableVideo` naming the problem. A stream without a rate counts as 25 fps.
    """
    if not os.path.isfile(path):
        raise UnreadableVideo("file not found")
    if os.path.getsize(path) == 0:
        raise UnreadableVideo("empty file")
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise UnreadableVideo("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            yield container, stream, float(stream.average_rate or stream.guessed_rate or 0) or 25.0
    except UnreadableVideo:
        raise
    except (av.error.FFmpegError, ValueError, OSError, IndexError) as error:
        raise UnreadableVideo(f"cannot decode ({type(error).__name__}: {error})") from error


def read_video(
    path: str,
    *,
    fps: float | None = None,
    short_side: int | None = 256,
    max_seconds: float | None = None,
) -> tuple[np.ndarray, float]:
    """uint8 [T, H, W, 3] RGB frames and their frame rate.

    fps: resample to this rate by picking the nearest source frame (frames repeat when the
      source is slower); None keeps every frame at the source rate.
    short_side: resize so min(H, W) equals this; None keeps the source size.
    max_seconds: stop after this much video (None: all of it).
    """
    with open_video(path) as (container, stream, source_fps):
        out_fps = float(fps) if fps else source_fps
        frames = []
        next_output = 0  # index of the next output frame to fill
        limit = math.inf if max_seconds is None else max_seconds * out_fps
        for source_index, frame in enumerate(container.decode(stream)):
            # Output frame k shows source frame round(k * source_fps / out_fps).
            repeats = 0
            while next_output < limit and round(next_output * source_fps / out_fps) <= source_index:
                repeats += 1
                next_output += 1
            if repeats:
                frames.extend([to_rgb(frame, short_side)] * repeats)
            if next_output >= limit:
                break
        else:
            # Outputs due after the last source frame but within the video's duration (when
            # upsampling) repeat that frame: N source frames always give round(N * out / source).
            expected = min(round((source_index + 1) * out_fps / source_fps), limit) if frames else 0
            frames.extend(frames[-1:] * int(max(0, expected - len(frames))))
    if not frames:
        raise UnreadableVideo("no decodable frame")
    return np.stack(frames), out_fps


def write_video(
    path: str, frames: np.ndarray, fps: float = 25.0, codec: str | None = None, quality: int = 18
) -> None:
    """Encodes uint8 [T, H, W, 3] RGB frames to a file (mp4 -> H.264, webm -> VP9 by default).

    Used to make small real videos for tests and examples; `quality` is the constant-rate
    factor (lower is better).
    """
    codec = codec or {".webm": "libvpx-vp9", ".mkv": "libx264"}.get(
        os.path.splitext(path)[1].lower(), "libx264"
    )
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=round(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(quality)}
        if codec.startswith("libvpx"):
            stream.options = {
                "crf": str(quality),
                "b": "0",
                "deadline": "realtime",
                "cpu-used": "8",
            }
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
