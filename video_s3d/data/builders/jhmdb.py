"""JHMDB-21 (Jhuang et al., ICCV 2013) for action detection: 21 classes, 3 official splits, one
actor per video, its box in every frame taken from the official puppet masks.

Boxes: the extent of the nonzero pixels of `part_mask` [H, W, T] in `puppet_mask.mat`, one box
per frame, the usual choice of the detection literature: Peng & Schmid (ECCV 2016) build their
JHMDB ground truth this way (pengxj/action-faster-rcnn, lib/datasets/JHMDB.py, `mask_to_bbox`,
which keeps inclusive last-pixel coordinates; we store pixel edges, one pixel wider, as
synthetic_detection does). Where their loader reuses the last mask for frames past the mask's
length, we mark those frames (and frames with an empty mask) not visible.

Manual-dir layout, as the official archives extract (Rename_Images.tar.gz, puppet_mask.zip,
splits.zip from jhmdb.is.tue.mpg.de; paths as third-party loaders read them, e.g.
ilikepistachio/TCNN_STCNN prepare_jhmdb.sh and dataset code citing
`puppet_mask/<class>/<video>/puppet_mask.mat` with key `part_mask`; the official README itself
was not available to check):
    Rename_Images/<class>/<video>/00001.png ...    320x240 frames
    puppet_mask/<class>/<video>/puppet_mask.mat    part_mask [240, 320, T]
    splits/<class>_test_split<k>.txt               lines "<video>.avi 1" (1 train, 2 test)
Frame rate: not in these files; our choice: 30 fps (HMDB51's source videos are 30 fps), stored
as `fps` only (every frame is kept).
"""

from __future__ import annotations

import os
import re

import numpy as np

from video_s3d.data.builders import action_tubes, manual_video, video_files
from video_s3d.data.builders.action_tubes import TubeConfig, TubeItem
from video_s3d.errors import UserFileError

CLASSES = (
    "brush_hair",
    "catch",
    "clap",
    "climb_stairs",
    "golf",
    "jump",
    "kick_ball",
    "pick",
    "pour",
    "pullup",
    "push",
    "run",
    "shoot_ball",
    "shoot_bow",
    "shoot_gun",
    "sit",
    "stand",
    "swing_baseball",
    "throw",
    "walk",
    "wave",
)
FPS = 30.0
_SPLIT_FILE = re.compile(r"^(?P<label>.+)_test_split(?P<fold>[123])\.txt$")


def tubes_from_puppet_mask(item: TubeItem) -> list[action_tubes.Tube]:
    """The one actor's tube from `item.annotation`, the path of its puppet_mask.mat."""
    import scipy.io

    if not os.path.isfile(item.annotation):
        raise video_files.UnreadableVideo(f"puppet mask not found ({item.annotation})")
    try:
        masks = scipy.io.loadmat(item.annotation)["part_mask"]
    except (ValueError, OSError, KeyError, TypeError, NotImplementedError) as error:
        raise video_files.UnreadableVideo(
            f"cannot read puppet mask ({type(error).__name__}: {error})"
        ) from error
    if masks.ndim == 2:
        masks = masks[:, :, None]  # a one-frame video
    boxes, visible = action_tubes.mask_boxes(masks)
    frames = np.flatnonzero(visible)
    height, width = masks.shape[:2]
    return [action_tubes.Tube(item.label, frames, boxes[frames], size=(width, height))]


class Jhmdb(action_tubes.ManualTubeBuilder):
    """JHMDB-21: 928 trimmed clips of 21 actions, the actor's box in every frame."""

    CLASS_NAMES = CLASSES
    BUILDER_CONFIGS = [
        TubeConfig(name=f"split{fold}", fps=FPS, short_side=None, fold=fold) for fold in (1, 2, 3)
    ]
    MANUAL_DIR_SUMMARY = (
        "Rename_Images/<class>/<video>/00001.png, puppet_mask/<class>/<video>/puppet_mask.mat "
        "and splits/<class>_test_split<1-3>.txt"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Manual dir layout for JHMDB (Rename_Images.tar.gz, puppet_mask.zip and splits.zip from
  http://jhmdb.is.tue.mpg.de extracted):
    Rename_Images/<class>/<video>/00001.png
    puppet_mask/<class>/<video>/puppet_mask.mat
    splits/<class>_test_split1.txt     lines "<video>.avi 1" (1 train, 2 test)
  """
    read_tubes = staticmethod(tubes_from_puppet_mask)

    def list_videos(self, manual_dir):
        fold = self.builder_config.fold
        split_files = manual_video.find_split_files(manual_dir, _SPLIT_FILE, fold)
        missing = [name for name in CLASSES if name not in split_files]
        if missing:
            raise UserFileError(
                f"Missing JHMDB split files in the manual dir {manual_dir}: expected "
                f"splits/<class>_test_split{fold}.txt for every class; none for "
                f"{', '.join(missing)}."
            )
        frames_root = action_tubes.find_folder(
            manual_dir, "Rename_Images", "the frames, <class>/<video>/00001.png"
        )
        masks_root = action_tubes.find_folder(
            manual_dir, "puppet_mask", "the masks, <class>/<video>/puppet_mask.mat"
        )
        splits = {"train": [], "test": []}
        for label, name in enumerate(CLASSES):
            with open(split_files[name]) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) != 2 or parts[1] not in ("1", "2"):
                        continue
                    video = os.path.splitext(parts[0])[0]
                    frames = os.path.join(frames_root, name, video)
                    splits["train" if parts[1] == "1" else "test"].append(
                        TubeItem(
                            video_id=f"{name}/{video}",
                            path=frames if os.path.isdir(frames) else None,
                            label=label,
                            annotation=os.path.join(masks_root, name, video, "puppet_mask.mat"),
                        )
                    )
        return splits
