"""Something-Something v2: 174 fine-grained object interactions, webm at 12 fps.

Left/right is part of many classes, so the pipeline never flips it; REVERSAL_PAIRS lists the
classes whose time reversal is another class (used for the reversed-time study).
"""

from __future__ import annotations

import csv
import json
import os

from video_s3d.data.builders import manual_video
from video_s3d.data.builders.manual_video import VideoConfig, VideoItem
from video_s3d.errors import UserError

_LABELS = "something-something-v2-labels.json"
_SPLIT_FILES = {
    "train": "something-something-v2-train.json",
    "validation": "something-something-v2-validation.json",
    "test": "something-something-v2-test.json",
}
_TEST_ANSWERS = "test-answers.csv"  # released later: "id;label text" per line

# Class pairs that are each other's time reversal (matched by name; absent names are ignored).
REVERSAL_PAIRS = (
    ("Pushing something from left to right", "Pushing something from right to left"),
    ("Moving something up", "Moving something down"),
    ("Moving something towards the camera", "Moving something away from the camera"),
    (
        "Moving something and something closer to each other",
        "Moving something and something away from each other",
    ),
    ("Opening something", "Closing something"),
    ("Folding something", "Unfolding something"),
    ("Putting something into something", "Taking something out of something"),
    ("Approaching something with your camera", "Moving away from something with your camera"),
    (
        "Turning the camera left while filming something",
        "Turning the camera right while filming something",
    ),
    (
        "Turning the camera upwards while filming something",
        "Turning the camera downwards while filming something",
    ),
    ("Zooming in on something", "Zooming out of something"),
    (
        "Lifting something up completely without letting it drop down",
        "Putting something on a surface",
    ),
    ("Plugging something into something", "Pulling something out of something"),
    ("Covering something with something", "Uncovering something"),
    ("Tearing something into two pieces", "Putting something and something together"),
)


def template_to_label(template: str) -> str:
    """'Putting [something] into [something]' -> 'Putting something into something'."""
    return template.replace("[", "").replace("]", "")


class SomethingSomethingV2(manual_video.ManualVideoBuilder):
    """Something-Something v2 (webm videos + JSON labels), stored at the native 12 fps."""

    BUILDER_CONFIGS = manual_video.with_flow_twins(
        [VideoConfig(name="default", fps=None, short_side=256)]
    )
    MANUAL_DIR_SUMMARY = (
        f"{_LABELS}, {_SPLIT_FILES['train']}, {_SPLIT_FILES['validation']} "
        f"(optionally in labels/) and the <id>.webm videos"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Manual dir layout for Something-Something v2 (from the 20BN / Qualcomm release):
    labels/{_LABELS}        {{"Approaching something with your camera": "0", ...}}
    labels/{_SPLIT_FILES["train"]}   [{{"id": "78687", "template": "...[something]...", ...}}]
    labels/{_SPLIT_FILES["validation"]}
    labels/{_TEST_ANSWERS}     (optional: the test split is built only with its answers)
    **/<id>.webm   (e.g. 20bn-something-something-v2/78687.webm)
  """

    def list_videos(self, manual_dir):
        def find(name, required=True):
            return manual_video.find_file(
                manual_dir,
                [os.path.join("labels", name), name],
                f"Something-Something v2 file {name}",
                required,
            )

        with open(find(_LABELS)) as f:
            label_of = {name: int(index) for name, index in json.load(f).items()}
        class_names = sorted(label_of, key=label_of.get)
        videos = manual_video.index_videos(manual_dir)
        splits = {}
        for split in ("train", "validation"):
            with open(find(_SPLIT_FILES[split])) as f:
                entries = json.load(f)
            splits[split] = [
                VideoItem(
                    str(e["id"]),
                    videos.get(str(e["id"])),
                    _label(label_of, template_to_label(e["template"]), split),
                )
                for e in entries
            ]
        answers = find(_TEST_ANSWERS, required=False)
        if answers:
            with open(answers, newline="") as f:
                rows = [row for row in csv.reader(f, delimiter=";") if row]
            splits["test"] = [
                VideoItem(video_id, videos.get(video_id), _label(label_of, text, "test"))
                for video_id, text in rows
            ]
        return class_names, splits


def _label(label_of: dict[str, int], text: str, split: str) -> int:
    if text not in label_of:
        raise UserError(
            f"Label {text!r} of a {split} video is not in {_LABELS}: use the label "
            f"files of one release."
        )
    return label_of[text]
