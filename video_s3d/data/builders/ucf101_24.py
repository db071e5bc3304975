"""UCF101-24 for action detection: the 24 UCF101 classes with actor boxes, split 1, with the
corrected annotations of Singh et al. (gurkirt/corrected-UCF101-Annots), which most later
papers use.

Annotation files (either; the first found wins):
  UCF101v2-GT.pkl  (ACT, Kalogeiton et al. ICCV 2017, as MOC / mmaction2 ship it with
    UCF101_v2.tar.gz): a dict with `labels` [24 class names], `train_videos` / `test_videos`
    (one list of video ids per split; UCF101-24 has split 1 only), `nframes` {video: N},
    `resolution` {video: (h, w)}, `gttubes` {video: {label index: [tube [n, 5]]}}, a tube's rows
    being <frame number, 1-based> <x1> <y1> <x2> <y2> in pixels (format: MOC-Detector
    src/datasets/dataset/base_dataset.py and ACT's Dataset.py docstrings; ACT.py frameAP reads
    tube[:, 0] as the frame and tube[:, 1:5] as the box).
  pyannot.pkl + trainlist01.txt / testlist01.txt  (Singh's own release and his
    realtime-action-detection splitfiles): {video: {'label': class index, 'numf': N,
    'annotations': [{'label', 'sf', 'ef', 'boxes' [ef - sf, 4]}]}}, a tube covering the 0-based
    frames sf .. ef - 1 with boxes (x, y, w, h) in pixels (format: realtime-action-detection
    data/ucf24.py, `make_lists`, which adds w and h to get x2 and y2); list lines are
    "<Class>/<video>".
Pixel boxes are divided by the annotation's frame size (ACT's `resolution`; for pyannot.pkl,
which has none, the frames' own size) as they are: neither file documents whether x2 / y2 is
the last pixel or the edge after it (one pixel, 0.3-0.4% of a 320x240 frame).
Both were written by Python 2 pickle with numpy arrays inside; they are read here with a
restricted unpickler that builds dicts, lists, numbers, strings and numpy arrays only (no other
code can run), decoding Python 2 strings as latin-1 as MOC does.

Frames: rgb-images/<Class>/<video>/00001.jpg (from UCF101_v2.tar.gz) when present, else the
video UCF-101/<Class>/<video>.avi decoded with PyAV, every frame kept so frame k of the video is
annotation frame k. Frame rate of the JPEG folders: 25 fps, UCF101's (our choice; the folders
carry none).
"""

from __future__ import annotations

import os
import pickle

import numpy as np

from video_s3d.data.builders import action_tubes, manual_video
from video_s3d.data.builders.action_tubes import Tube, TubeConfig, TubeItem
from video_s3d.errors import UserError

CLASSES = (
    "Basketball",
    "BasketballDunk",
    "Biking",
    "CliffDiving",
    "CricketBowling",
    "Diving",
    "Fencing",
    "FloorGymnastics",
    "GolfSwing",
    "HorseRiding",
    "IceDancing",
    "LongJump",
    "PoleVault",
    "RopeClimbing",
    "SalsaSpin",
    "SkateBoarding",
    "Skiing",
    "Skijet",
    "SoccerJuggling",
    "Surfing",
    "TennisSwing",
    "TrampolineJumping",
    "VolleyballSpiking",
    "WalkingWithDog",
)
FPS = 25.0
ACT_FILE = "UCF101v2-GT.pkl"
SINGH_FILE = "pyannot.pkl"

# What the annotation pickles may build besides plain containers: numpy arrays, dtypes and
# scalars (the module moved from numpy.core to numpy._core in numpy 2), and the bytes that
# protocol-2 pickles written by Python 3 spell as _codecs.encode(text, 'latin1').
_ALLOWED_GLOBALS = {
    (module, name)
    for package in ("numpy.core", "numpy._core")
    for module, name in (
        (f"{package}.multiarray", "_reconstruct"),
        (f"{package}.multiarray", "scalar"),
        (f"{package}.numeric", "_frombuffer"),
    )
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which is not numpy data")
        return super().find_class(module, name)


def load_annotation_pickle(path: str):
    """The annotation pickle's contents; ValueError in one sentence if it is not plain data."""
    try:
        with open(path, "rb") as f:
            return _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise UserError(
            f"Cannot read the UCF101-24 annotations {path} ({error}): use the original "
            f"{ACT_FILE} or {SINGH_FILE}."
        ) from error


def act_tubes(gttubes: dict, resolution=None) -> list[Tube]:
    """ACT's {label: [tube [n, 5]]} -> Tubes with 0-based frames; `resolution` (h, w) is the
    video's entry in the file's `resolution`."""
    size = (int(resolution[1]), int(resolution[0])) if resolution is not None else None
    tubes = []
    for label in sorted(gttubes):
        for tube in gttubes[label]:
            tube = np.asarray(tube, np.float64).reshape(-1, 5)
            tubes.append(Tube(int(label), tube[:, 0].astype(np.int64) - 1, tube[:, 1:5], size))
    return tubes


def singh_tubes(annotations) -> list[Tube]:
    """pyannot's [{'label', 'sf', 'ef', 'boxes' (x, y, w, h)}] -> Tubes with 0-based frames."""
    tubes = []
    for tube in annotations:
        xywh = np.asarray(tube["boxes"], np.float64).reshape(-1, 4)
        start = int(tube["sf"])
        frames = np.arange(start, start + len(xywh))
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        tubes.append(Tube(int(tube["label"]), frames, boxes))
    return tubes


def stored_tubes(item: TubeItem) -> list[Tube]:
    """The tubes read with the annotation file when the videos were listed."""
    return list(item.annotation)


def _read_list(path: str) -> list[str]:
    with open(path) as f:
        return [os.path.splitext(line.split()[0])[0] for line in f if line.strip()]


class Ucf10124(action_tubes.ManualTubeBuilder):
    """UCF101-24: untrimmed videos of 24 actions, every actor's box over its action."""

    name = "ucf101_24"

    CLASS_NAMES = CLASSES
    BUILDER_CONFIGS = [TubeConfig(name="split1", fps=FPS, short_side=None, fold=1)]
    MANUAL_DIR_SUMMARY = (
        f"{ACT_FILE} (or {SINGH_FILE} with trainlist01.txt and testlist01.txt) and the frames, "
        "rgb-images/<Class>/<video>/00001.jpg or UCF-101/<Class>/<video>.avi"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Manual dir layout for UCF101-24 (UCF101_v2.tar.gz of ACT / MOC extracted, or Singh's
  corrected-UCF101-Annots pyannot.pkl with UCF101.rar extracted):
    {ACT_FILE}                                 or {SINGH_FILE} + trainlist01.txt + testlist01.txt
    rgb-images/<Class>/<video>/00001.jpg         or UCF-101/<Class>/<video>.avi
  """
    read_tubes = staticmethod(stored_tubes)

    def list_videos(self, manual_dir):
        act_file = manual_video.find_file(manual_dir, [ACT_FILE], "annotations", required=False)
        if act_file:
            annotations = self._act_videos(act_file)
        else:
            singh_file = manual_video.find_file(
                manual_dir, [ACT_FILE, SINGH_FILE], "UCF101-24 annotations"
            )
            annotations = self._singh_videos(manual_dir, singh_file)
        frames_root = self._frames_root(manual_dir)
        folders = {
            video_id: os.path.join(frames_root, video_id) if frames_root else ""
            for rows in annotations.values()
            for video_id, _, _ in rows
        }
        # Video files only for what has no frame folder (walking every frame is slow).
        videos = (
            manual_video.index_videos(manual_dir)
            if not all(os.path.isdir(folder) for folder in folders.values())
            else {}
        )
        splits = {}
        for split, rows in annotations.items():
            items = []
            for video_id, label, tubes in rows:
                folder = folders[video_id]
                path = folder if os.path.isdir(folder) else videos.get(video_id.split("/")[-1])
                items.append(TubeItem(video_id, path, label, tuple(tubes)))
            splits[split] = items
        return splits

    @staticmethod
    def _frames_root(manual_dir: str) -> str | None:
        try:
            return action_tubes.find_folder(manual_dir, "rgb-images", "frames")
        except FileNotFoundError:
            return None  # videos then

    @staticmethod
    def _act_videos(path: str) -> dict[str, list]:
        data = load_annotation_pickle(path)
        if not isinstance(data, dict) or not {"labels", "gttubes", "train_videos"} <= set(data):
            raise UserError(
                f"{path} is not ACT's {ACT_FILE}: it needs the keys labels, train_videos, "
                f"test_videos and gttubes."
            )
        if tuple(data["labels"]) != CLASSES:
            raise UserError(
                f"The labels in {path} are not the 24 UCF101-24 classes: use the {ACT_FILE} "
                f"of UCF101_v2.tar.gz."
            )
        splits = {}
        for split, key in (("train", "train_videos"), ("test", "test_videos")):
            rows = []
            for video_id in data[key][0]:  # split 1
                tubes = act_tubes(
                    data["gttubes"].get(video_id, {}), data.get("resolution", {}).get(video_id)
                )
                label = tubes[0].label if tubes else _class_of(video_id)
                rows.append((video_id, label, tubes))
            splits[split] = rows
        return splits

    @staticmethod
    def _singh_videos(manual_dir: str, path: str) -> dict[str, list]:
        data = load_annotation_pickle(path)
        if not isinstance(data, dict):
            raise UserError(f"{path} is not Singh's {SINGH_FILE}: it holds no dict of videos.")
        splits = {}
        for split, name in (("train", "trainlist01.txt"), ("test", "testlist01.txt")):
            listed = _read_list(
                manual_video.find_file(
                    manual_dir, [name, os.path.join("splitfiles", name)], f"UCF101-24 {name}"
                )
            )
            rows = []
            for video_id in listed:
                entry = data.get(video_id)
                if entry is None:
                    # Listed without annotation: Singh removed 9 videos he could not re-annotate
                    # (corrected-UCF101-Annots README).
                    continue
                rows.append((video_id, int(entry["label"]), singh_tubes(entry["annotations"])))
            splits[split] = rows
        return splits


def _class_of(video_id: str) -> int:
    name = video_id.split("/")[0]
    if name not in CLASSES:
        raise UserError(f"Video {video_id} is not of a UCF101-24 class: check the annotations.")
    return CLASSES.index(name)
