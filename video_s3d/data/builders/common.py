"""What every video builder shares: the feature spec, JPEG encoding, and Beam-or-not generation.

Every builder stores a clip the DMVR way: one JPEG per frame (so the input pipeline can pick
frames before decoding), the label as index (`label`) and text (`label_text`), the source
`video_id` and the frame rate `fps`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import io
import itertools
import multiprocessing
import os
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

JPEG_QUALITY = 90
FEATURE_KEYS = ("video", "label", "label_text", "video_id", "fps")


def video_features(class_names: Sequence[str] | None, frame_shape=(None, None, None, 3)):
    """The FeaturesDict of every builder; `class_names=None` leaves the names to be set later."""
    label = (
        tfds.features.ClassLabel(names=list(class_names))
        if class_names is not None
        else tfds.features.ClassLabel()
    )
    return tfds.features.FeaturesDict(
        {
            "video": tfds.features.Video(shape=frame_shape, encoding_format="jpeg"),
            "label": label,
            "label_text": tfds.features.Text(),
            "video_id": tfds.features.Text(),
            "fps": tfds.features.Scalar(dtype=np.float32),
        }
    )


def tube_features(
    class_names: Sequence[str], frame_shape=(None, None, None, 3), tube_encoding: str = "zlib"
) -> tfds.features.FeaturesDict:
    """The FeaturesDict of every detection builder: the video, its id and frame rate, and one
    tube per actor (`label`, `tube_id`, `boxes` [T, 4], `visible` [T]) stored with
    `tube_encoding` (a tfds.features.Encoding name)."""
    num_frames = frame_shape[0]
    return tfds.features.FeaturesDict(
        {
            "video": tfds.features.Video(shape=frame_shape, encoding_format="jpeg"),
            "video_id": tfds.features.Text(),
            "fps": tfds.features.Scalar(dtype=np.float32),
            "tubes": tfds.features.Sequence(
                {
                    "label": tfds.features.ClassLabel(names=list(class_names)),
                    "tube_id": tfds.features.Scalar(dtype=np.int32),
                    "boxes": tfds.features.Tensor(
                        shape=(num_frames, 4), dtype=np.float32, encoding=tube_encoding
                    ),
                    "visible": tfds.features.Tensor(
                        shape=(num_frames,), dtype=np.bool_, encoding=tube_encoding
                    ),
                }
            ),
        }
    )


def tube_example(
    video_id: str, video: list[bytes], fps: float, labels, boxes, visible
) -> tuple[str, dict]:
    """(key, example) of a detection builder: tube i is actor i, with its label, boxes and
    per-frame visibility."""
    return video_id, {
        "video": video,
        "video_id": video_id,
        "fps": np.float32(fps),
        "tubes": {
            "label": labels,
            "tube_id": np.arange(len(labels), dtype=np.int32),
            "boxes": boxes,
            "visible": visible,
        },
    }


def classification_example(
    video_id: str, frames: dict, label: int, class_names: Sequence[str], fps: float
) -> tuple[str, dict]:
    """(key, example) of a classification builder: `frames` (`video` JPEGs, or the flow
    fields), the label as index and text, the video id and the frame rate."""
    return video_id, {
        **frames,
        "label": label,
        "label_text": class_names[label],
        "video_id": video_id,
        "fps": np.float32(fps),
    }


def encode_jpeg(
    frames: np.ndarray, quality: int = JPEG_QUALITY, subsample_chroma: bool = True
) -> list[bytes]:
    """uint8 [T, H, W, 3] -> one JPEG per frame.

    PIL is several times faster here than the TF op TFDS would run eagerly per numpy frame.
    `subsample_chroma=False` keeps full-resolution colour (4:4:4), for tiny frames whose small
    coloured details 4:2:0 would smear.
    """
    from PIL import Image  # pillow comes with matplotlib

    encoded = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(
            buffer, format="JPEG", quality=quality, subsampling=2 if subsample_chroma else 0
        )
        encoded.append(buffer.getvalue())
    return encoded


def generate(
    items: Sequence[Any],
    make_examples: Callable[[Any], Iterable[tuple[str, dict]]],
    use_beam: bool,
    label: str = "examples",
):
    """Examples for one split: a Beam PTransform when Beam was asked for, else a generator.

    `make_examples` must be a picklable module-level callable (or a partial of one) so Beam
    workers can run it.
    """
    if use_beam:
        beam = tfds.core.lazy_imports.apache_beam
        return f"Create {label}" >> beam.Create(list(items)) | f"Make {label}" >> beam.FlatMap(
            make_examples
        )
    return _generate_locally(items, make_examples)


# Below this many items a split is made in this process: starting worker processes (each
# imports TensorFlow) costs more than it saves. At most MAX_WORKERS of them (each holds a few
# hundred MB) however many cores a host has.
PARALLEL_MIN_ITEMS = 256
MAX_WORKERS = 8
_CHUNK = 16


def _generate_locally(
    items, make_examples, workers: int | None = None
) -> Iterator[tuple[str, dict]]:
    """The examples of every item, in order: made by a pool of processes (one per CPU core) for
    large splits, since rendering and encoding leave the TFDS writer waiting on one core."""
    if workers is None:
        workers = min(os.cpu_count() or 1, MAX_WORKERS) if len(items) >= PARALLEL_MIN_ITEMS else 1
    workers = min(workers, max(len(items) // _CHUNK, 1))
    if workers <= 1:
        for item in items:
            yield from make_examples(item)
        return
    # spawn, not fork: the parent holds TensorFlow's (and maybe JAX's) threads.
    chunks = (items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK))
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        # A few chunks per worker in flight: workers stay busy, memory stays bounded.
        pending = collections.deque(
            pool.submit(_make_chunk, make_examples, chunk)
            for chunk in itertools.islice(chunks, 4 * workers)
        )
        while pending:
            examples = pending.popleft().result()
            following = next(chunks, None)
            if following is not None:
                pending.append(pool.submit(_make_chunk, make_examples, following))
            yield from examples


def _make_chunk(make_examples, chunk) -> list[tuple[str, dict]]:
    return [example for item in chunk for example in make_examples(item)]


class BeamAwareMixin:
    """Remembers whether `download_and_prepare` was given a Beam runner or Beam options.

    TFDS picks the Beam writer only when `_generate_examples` returns a PTransform; we return one
    exactly when the user asked for Beam (`tfds build --beam_pipeline_options=...`), so a plain
    build needs no apache-beam installed.
    """

    _use_beam = False

    def _generate_splits(self, dl_manager, download_config):
        self._use_beam = (
            download_config.beam_runner is not None or download_config.beam_options is not None
        )
        return super()._generate_splits(dl_manager, download_config)
