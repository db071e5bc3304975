"""Something-Something v1 (the paper's): 174 classes, released as JPEG frames at 12 fps.

The 20BN v1 release ships every video as a folder of frames (`<id>/00001.jpg`, 100 px tall)
and semicolon-separated label files. Frames are stored resized to short side 256 like every
other builder's, so crops and the all-frames test protocol behave the same on both versions.
Left/right is part of many classes (never flipped); REVERSAL_PAIRS is v2's table, matched by
class name (the two releases name their classes alike; absent names are ignored).
"""

from __future__ import annotations

import csv
import functools
import io
import os
from typing import Iterable, Sequence

import numpy as np

from video_s3d.data.builders import common, flow_frames, manual_video, video_files
from video_s3d.data.builders.manual_video import VideoConfig, VideoItem
from video_s3d.data.builders.something_something_v2 import REVERSAL_PAIRS  # noqa: F401
from video_s3d.errors import UserError

_LABELS = "something-something-v1-labels.csv"
_SPLIT_FILES = {
    "train": "something-something-v1-train.csv",
    "validation": "something-something-v1-validation.csv",
}
FRAME_EXTENSIONS = (".jpg", ".jpeg")


class SomethingSomethingV1(manual_video.ManualVideoBuilder):
    """Something-Something v1 (frame folders + CSV labels), 12 fps, short side 256."""

    BUILDER_CONFIGS = manual_video.with_flow_twins(
        [VideoConfig(name="default", fps=None, short_side=256)]
    )
    MANUAL_DIR_SUMMARY = (
        f"{_LABELS}, {_SPLIT_FILES['train']}, {_SPLIT_FILES['validation']} and "
        "the frame folders <id>/00001.jpg ..."
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Manual dir layout for Something-Something v1 (the 20BN release, frames extracted):
    {_LABELS}                  one class name per line
    {_SPLIT_FILES["train"]}    lines "<id>;<class name>"
    {_SPLIT_FILES["validation"]}
    20bn-something-something-v1/<id>/00001.jpg, 00002.jpg, ...   (any folder above <id>)
  """

    def list_videos(self, manual_dir):
        def find(name):
            return manual_video.find_file(manual_dir, [name], f"Something-Something v1 file {name}")

        with open(find(_LABELS), encoding="utf-8") as f:
            class_names = [line.strip() for line in f if line.strip()]
        label_of = {name: i for i, name in enumerate(class_names)}
        folders = index_frame_folders(manual_dir)
        splits = {}
        for split, file_name in _SPLIT_FILES.items():
            with open(find(file_name), newline="", encoding="utf-8") as f:
                rows = [row for row in csv.reader(f, delimiter=";") if row]
            items = []
            for video_id, text in rows:
                if text not in label_of:
                    raise UserError(
                        f"Label {text!r} of {split} video {video_id} is not in {_LABELS}: "
                        "use the label files of one release."
                    )
                items.append(VideoItem(video_id, folders.get(video_id), label_of[text]))
            splits[split] = items
        return class_names, splits

    def _generate_examples(self, split: str, items: Sequence[VideoItem], names: Sequence[str]):
        make = functools.partial(
            make_frame_folder_examples,
            names=tuple(names),
            short_side=self.builder_config.short_side,
            flow=self.builder_config.flow,
        )
        if self._use_beam:
            skip_in_beam = manual_video._skip_in_beam  # pylint: disable=protected-access
            return common.generate(items, functools.partial(skip_in_beam, make), True, label=split)
        return self._generate_locally(split, items, make)


def index_frame_folders(root: str) -> dict[str, str]:
    """Every folder under `root` that holds JPEG frames, by its name (the video id)."""
    found = {}
    for directory, _, files in os.walk(root):
        if any(name.lower().endswith(FRAME_EXTENSIONS) for name in files):
            found.setdefault(os.path.basename(directory), directory)
    return found


def read_frame_folder(folder: str, short_side: int | None) -> np.ndarray:
    """uint8 [T, H, W, 3]: the folder's frames in file-name order, short side resized."""
    from PIL import Image  # pillow comes with matplotlib

    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(FRAME_EXTENSIONS))
    if not names:
        raise video_files.UnreadableVideo("no JPEG frames in the folder")
    frames = []
    for name in names:
        try:
            with open(os.path.join(folder, name), "rb") as f:
                image = Image.open(io.BytesIO(f.read())).convert("RGB")
        except OSError as error:
            raise video_files.UnreadableVideo(f"unreadable frame {name} ({error})") from error
        if short_side:
            scale = short_side / min(image.size)
            image = image.resize(
                (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale))),
                Image.BILINEAR,
            )
        frames.append(np.asarray(image))
    if len({frame.shape for frame in frames}) > 1:
        raise video_files.UnreadableVideo("frames of different sizes")
    return np.stack(frames)


def make_frame_folder_examples(
    item: VideoItem, *, names: Sequence[str], short_side: int | None, flow: bool = False
) -> Iterable[tuple[str, dict]]:
    """One example from a folder of frames (its flow with `flow`); UnreadableVideo when it
    cannot."""
    if item.path is None:
        raise video_files.UnreadableVideo("frame folder not found in the manual dir")
    frames = read_frame_folder(item.path, short_side)
    # 20BN's stated frame rate for v1 (a frame folder does not record it).
    yield common.classification_example(
        item.video_id, flow_frames.frame_fields(frames, flow=flow), item.label, names, 12.0
    )
