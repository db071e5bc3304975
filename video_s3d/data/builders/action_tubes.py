"""What the action-detection builders (jhmdb, ucf101_24) share: the tube features, frame folders,
box conversion, and the base builder over a manual dir.

Each example has the feature dict of `synthetic_detection`, so the detector reads all three
alike: `video` (one JPEG per frame), `video_id`, `fps`, and `tubes`, one per annotated actor:
`label`, `tube_id`, `boxes` [T, 4] float32 (ymin, xmin, ymax, xmax) as fractions of the frame
(pixel edges: a box covering pixel columns 0..9 of a 320-wide frame has xmax 10/320), and
`visible` [T] (the frames the actor is annotated in; its box is zero elsewhere). Unlike the
synthetic set, T is the video's own length, so `boxes` and `visible` are stored zlib-compressed
(TFDS cannot store a sequence of tensors with two unknown dimensions otherwise); they decode to
the same dense [A, T, 4] and [A, T] tensors.

Frames are kept one for one with the annotations (no frame-rate resampling): a frame folder's
images are frames 1..N in name order, a video file's decoded frames are frames 1..N.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import tensorflow_datasets as tfds

from video_s3d.data.builders import common, manual_video, video_files
from video_s3d.errors import UserFileError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


@dataclasses.dataclass(frozen=True)
class Tube:
    """One actor's annotated frames: 0-based frame indices [n] and pixel boxes [n, 4]
    (x1, y1, x2, y2) in the annotation's pixel grid, `size` (width, height); None: the source
    frames' size."""

    label: int
    frames: np.ndarray
    boxes: np.ndarray
    size: tuple[int, int] | None = None


@dataclasses.dataclass(frozen=True)
class TubeItem:
    """One video to store: its frames (a video file or a folder of images; None when missing),
    its class, and what the builder's `read_tubes` turns into Tubes."""

    video_id: str
    path: str | None
    label: int
    annotation: Any


# ---------------------------------------------------------------- boxes


def mask_boxes(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """masks [H, W, T] (nonzero: the actor) -> pixel boxes [T, 4] (x1, y1, x2, y2, pixel edges)
    and visible [T] (False where a frame's mask is empty)."""
    masks = np.asarray(masks) != 0
    boxes = np.zeros((masks.shape[2], 4), np.float32)
    rows_any, cols_any = masks.any(axis=1), masks.any(axis=0)  # [H, T], [W, T]
    visible = rows_any.any(axis=0)
    for t in np.flatnonzero(visible):
        rows, cols = np.flatnonzero(rows_any[:, t]), np.flatnonzero(cols_any[:, t])
        boxes[t] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes, visible


def to_fractions(pixel_boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """[..., 4] (x1, y1, x2, y2) pixels -> (ymin, xmin, ymax, xmax) fractions, clipped to the
    frame."""
    x1, y1, x2, y2 = np.moveaxis(np.asarray(pixel_boxes, np.float64), -1, 0)
    boxes = np.stack([y1 / height, x1 / width, y2 / height, x2 / width], axis=-1)
    return np.clip(boxes, 0.0, 1.0).astype(np.float32)


def dense_tubes(tubes: Sequence[Tube], num_frames: int, width: int, height: int):
    """Tubes -> (labels [A], boxes [A, T, 4] fractions, visible [A, T], frames dropped): boxes
    on frames past the video's end are dropped and counted. Pixels are divided by the tube's
    own grid size where it has one, else by the source frames' (width, height)."""
    boxes = np.zeros((len(tubes), num_frames, 4), np.float32)
    visible = np.zeros((len(tubes), num_frames), bool)
    dropped = 0
    for a, tube in enumerate(tubes):
        frames = np.asarray(tube.frames, np.int64)
        inside = (frames >= 0) & (frames < num_frames)
        dropped += int(np.sum(~inside))
        grid = tube.size or (width, height)
        boxes[a, frames[inside]] = to_fractions(np.asarray(tube.boxes)[inside], *grid)
        visible[a, frames[inside]] = True
    labels = np.array([tube.label for tube in tubes], np.int64)
    return labels, boxes, visible, dropped


# ---------------------------------------------------------------- frames


def read_frame_folder(folder: str, short_side: int | None) -> tuple[np.ndarray, int, int]:
    """uint8 [T, H, W, 3] from the images 1..N of a folder (00001.png, ...), and the source
    (width, height); UnreadableVideo naming the first missing or undecodable image."""
    from PIL import Image  # pillow comes with matplotlib

    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise video_files.UnreadableVideo("no frame images in its folder")
    numbers = [int(m.group()) if (m := re.search(r"\d+", n)) else -1 for n in names]
    for expected, (number, name) in enumerate(sorted(zip(numbers, names)), start=1):
        if number != expected:
            raise video_files.UnreadableVideo(
                f"frame {expected} missing (images must be numbered 1..N; found {name})"
            )
    frames, source_size = [], None
    for _, name in sorted(zip(numbers, names)):
        try:
            with Image.open(os.path.join(folder, name)) as image:
                image = image.convert("RGB")
                if source_size is None:
                    source_size = image.size
                elif image.size != source_size:
                    raise video_files.UnreadableVideo(
                        f"frame {name} is {image.size[0]}x{image.size[1]}, the first frame "
                        f"{source_size[0]}x{source_size[1]}"
                    )
                size = video_files.output_size(*source_size, short_side)
                frame = np.asarray(image)
                frames.append(frame if size == image.size else _resize(frame, size))
        except (OSError, ValueError, SyntaxError) as error:
            raise video_files.UnreadableVideo(
                f"cannot decode frame {name} ({type(error).__name__}: {error})"
            ) from error
    return np.stack(frames), source_size[0], source_size[1]


def read_frames(path: str, fps: float, short_side: int | None):
    """(frames [T, H, W, 3], frame rate, source width, source height) of a frame folder (at
    `fps`) or a video file (at its own rate, every frame kept)."""
    if os.path.isdir(path):
        frames, width, height = read_frame_folder(path, short_side)
        return frames, float(fps), width, height
    frames, rate = video_files.read_video(path, fps=None, short_side=None)
    height, width = frames.shape[1:3]
    size = video_files.output_size(width, height, short_side)
    if size != (width, height):
        frames = np.stack([_resize(frame, size) for frame in frames])
    return frames, rate, width, height


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize(size, Image.BOX))  # area averaging


# ---------------------------------------------------------------- builder


class TubeConfig(tfds.core.BuilderConfig):
    """Frame rate of frame folders (video files keep theirs), short side (None: as recorded),
    split fold."""

    def __init__(self, *, fps: float, short_side: int | None = None, fold: int = 1, **kwargs):
        kwargs.setdefault("description", f"split {fold}, short side {short_side or 'as recorded'}")
        super().__init__(**kwargs)
        self.fps = fps
        self.short_side = short_side
        self.fold = fold


class ManualTubeBuilder(manual_video.ManualVideoBuilder, skip_registration=True):
    """Frames + actor-box annotations in a manual dir -> JPEG frames and box tubes.

    A subclass names its classes (`CLASS_NAMES`, fixed, so the features are known before a
    build), lists its videos (`list_videos(manual_dir) -> {split: [TubeItem]}`) and says how an
    item's annotation becomes Tubes (`read_tubes`, a module-level function so Beam workers can
    pickle it).
    """

    CLASS_NAMES: tuple[str, ...] = ()
    read_tubes: Callable[[TubeItem], list[Tube]]

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=common.tube_features(self.CLASS_NAMES), description=self.__doc__
        )

    def _split_generators(self, dl_manager):
        manual_dir = self._checked_manual_dir(dl_manager)
        splits = self.list_videos(manual_dir)
        self.skipped = []
        manual_video.check_found(
            self.name, manual_dir, splits, f"put their frames there ({self.MANUAL_DIR_SUMMARY})"
        )
        return {split: self._generate_examples(split, items) for split, items in splits.items()}

    def _generate_examples(self, split: str, items: Sequence[TubeItem]):
        config = self.builder_config
        make = functools.partial(
            make_tube_examples,
            read_tubes=type(self).read_tubes,
            fps=config.fps,
            short_side=config.short_side,
        )
        if self._use_beam:
            return common.generate(
                items, functools.partial(manual_video._skip_in_beam, make), True, label=split
            )
        return self._generate_locally(split, items, make)


def make_tube_examples(
    item: TubeItem, *, read_tubes, fps: float, short_side: int | None
) -> Iterable[tuple[str, dict]]:
    """Decodes one video and its tubes into one example; UnreadableVideo when it cannot."""
    if item.path is None:
        raise video_files.UnreadableVideo("file not found in the manual dir")
    tubes = read_tubes(item)
    frames, rate, width, height = read_frames(item.path, fps, short_side)
    labels, boxes, visible, dropped = dense_tubes(tubes, len(frames), width, height)
    if not visible.any():
        raise video_files.UnreadableVideo(f"no annotated actor box in its {len(frames)} frames")
    if dropped:
        logging.warning(
            "%s: %d annotated boxes lie past its %d frames; dropped.",
            item.video_id,
            dropped,
            len(frames),
        )
    yield common.tube_example(
        item.video_id, common.encode_jpeg(frames), rate, labels, boxes, visible
    )


def find_folder(root: str, name: str, what: str, max_depth: int = 3) -> str:
    """The shallowest folder called `name` within `max_depth` levels of `root` (level by level,
    so a huge sibling tree of frames is never walked); FileNotFoundError naming what it holds."""
    level = [root]
    for _ in range(max_depth):
        if not level:
            break
        for directory in level:
            if os.path.isdir(os.path.join(directory, name)):
                return os.path.join(directory, name)
        level = [
            entry.path
            for directory in level
            for entry in sorted(os.scandir(directory), key=lambda e: e.name)
            if entry.is_dir()
        ]
    raise UserFileError(f"Missing {name}/ in the manual dir {root}: it should hold {what}.")
