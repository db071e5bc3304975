"""HMDB51: 51 actions from movies and web videos, with the three official train/test splits."""

from __future__ import annotations

import os
import re

from video_s3d.data.builders import manual_video
from video_s3d.data.builders.manual_video import VideoConfig, VideoItem
from video_s3d.errors import UserFileError

_SPLIT_FILE = re.compile(r"^(?P<label>.+)_test_split(?P<fold>[123])\.txt$")


class Hmdb51(manual_video.ManualVideoBuilder):
    """HMDB51 (extracted .avi videos + split files), resampled to 25 fps, short side 256."""

    BUILDER_CONFIGS = manual_video.with_flow_twins(
        [
            VideoConfig(name=f"split{fold}", fps=25.0, short_side=256, fold=fold)
            for fold in (1, 2, 3)
        ]
    )
    MANUAL_DIR_SUMMARY = (
        "the extracted videos (<class>/<name>.avi) and the split files "
        "(testTrainMulti_7030_splits/<class>_test_split<1-3>.txt)"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Manual dir layout for HMDB51 (hmdb51_org.rar with each class .rar extracted, and
  test_train_splits.rar extracted):
    <class>/<video>.avi                                  e.g. brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi
    testTrainMulti_7030_splits/<class>_test_split1.txt   lines "<video>.avi 1" (1 train, 2 test, 0 unused)
  """

    def list_videos(self, manual_dir):
        fold = self.builder_config.fold
        split_files = manual_video.find_split_files(manual_dir, _SPLIT_FILE, fold)
        if not split_files:
            raise UserFileError(
                f"Missing HMDB51 split files in the manual dir {manual_dir}: expected "
                f"testTrainMulti_7030_splits/<class>_test_split{fold}.txt for every class."
            )
        class_names = sorted(split_files)
        videos = manual_video.index_videos(manual_dir)
        splits = {"train": [], "test": []}
        for label, name in enumerate(class_names):
            with open(split_files[name]) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) != 2 or parts[1] not in ("1", "2"):
                        continue  # 0: not used in this split
                    split = "train" if parts[1] == "1" else "test"
                    video_id = os.path.splitext(parts[0])[0]
                    splits[split].append(
                        VideoItem(video_id, videos.get(parts[0]) or videos.get(video_id), label)
                    )
        return class_names, splits
