"""UCF101 from a manual dir (TFDS's own `ucf101` downloads; this one reads files you have)."""

from __future__ import annotations

import os

from video_s3d.data.builders import manual_video
from video_s3d.data.builders.manual_video import VideoConfig, VideoItem
from video_s3d.errors import UserError


class Ucf101Manual(manual_video.ManualVideoBuilder):
    """UCF101 (UCF-101/<Class>/v_*.avi + ucfTrainTestlist), resampled to 25 fps, short side 256.

    Registered with TFDS as `ucf101_manual` so it does not clash with TFDS's `ucf101`; the
    pipeline calls it `ucf101`.
    """

    BUILDER_CONFIGS = manual_video.with_flow_twins(
        [
            VideoConfig(name=f"split{fold}", fps=25.0, short_side=256, fold=fold)
            for fold in (1, 2, 3)
        ]
    )
    MANUAL_DIR_SUMMARY = (
        "UCF-101/<Class>/v_*.avi and ucfTrainTestlist/ (classInd.txt, "
        "trainlist0N.txt, testlist0N.txt)"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Manual dir layout for UCF101 (UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip
  extracted):
    UCF-101/<Class>/v_<Class>_g08_c01.avi
    ucfTrainTestlist/classInd.txt        lines "1 ApplyEyeMakeup"
    ucfTrainTestlist/trainlist01.txt     lines "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
    ucfTrainTestlist/testlist01.txt      lines "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
  """

    def list_videos(self, manual_dir):
        fold = self.builder_config.fold

        def find(name):
            return manual_video.find_file(
                manual_dir, [os.path.join("ucfTrainTestlist", name), name], f"UCF101 list {name}"
            )

        with open(find("classInd.txt")) as f:
            rows = [line.split() for line in f if line.strip()]
        class_names = [name for _, name in sorted(rows, key=lambda row: int(row[0]))]
        label_of = {name: i for i, name in enumerate(class_names)}
        videos = manual_video.index_videos(manual_dir)
        splits = {}
        for split, list_name in (
            ("train", f"trainlist0{fold}.txt"),
            ("test", f"testlist0{fold}.txt"),
        ):
            items = []
            with open(find(list_name)) as f:
                for line in f:
                    if not line.strip():
                        continue
                    relative = line.split()[0]
                    class_name, file_name = relative.split("/")[-2:]
                    if class_name not in label_of:
                        raise UserError(
                            f"Class {class_name!r} in {list_name} is not in classInd.txt: use "
                            f"the list files of one release."
                        )
                    video_id = os.path.splitext(file_name)[0]
                    items.append(
                        VideoItem(
                            video_id,
                            videos.get(file_name) or videos.get(video_id),
                            label_of[class_name],
                        )
                    )
            splits[split] = items
        return class_names, splits
