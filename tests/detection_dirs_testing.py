"""Tiny official-layout JHMDB and UCF101-24 manual dirs (frame folders, puppet masks, videos,
split lists, annotations), for the builder tests and the end-to-end detection runs."""

import os
import pickle

import numpy as np
import scipy.io
from PIL import Image

from video_s3d.data.builders import jhmdb, synthetic_render, ucf101_24, video_files

H, W = 36, 48  # small frames of the datasets' 4:3 shape

# class -> (video, split code in split 1: 1 train, 2 test); clap, golf, jump and kick_ball are
# broken on purpose (a missing frame, no puppet mask, never extracted, a corrupt PNG).
JHMDB_VIDEOS = {
    "brush_hair": ("April_09_brush_hair_u_nm_np1_ba_goo_0", "1"),
    "catch": ("Frisbee_catch_f_cm_np1_ri_med_0", "2"),
    "clap": ("clap_frame_missing_u_cm_np1_fr_med_0", "1"),
    "golf": ("golf_mask_missing_f_cm_np1_fr_med_0", "2"),
    "jump": ("jump_not_extracted_f_cm_np1_ba_med_0", "1"),
    "kick_ball": ("kick_corrupt_png_f_cm_np1_ba_med_0", "1"),
}


def frames(seed, num_frames):
    return synthetic_render.make_clip("motion", seed % 10, (seed,), num_frames, W)[:, :H]


def write_pngs(folder, clip, ext="png"):
    os.makedirs(folder, exist_ok=True)
    for t, frame in enumerate(clip, start=1):
        Image.fromarray(frame).save(os.path.join(folder, f"{t:05d}.{ext}"), quality=95)


def mask_clip(num_frames, empty_frames=()):
    """part_mask [H, W, T] with a blob moving right, and its boxes as (ymin, xmin, ymax, xmax)
    fractions (pixel edges)."""
    masks = np.zeros((H, W, num_frames), np.uint8)
    boxes = np.zeros((num_frames, 4), np.float32)
    for t in range(num_frames):
        if t in empty_frames:
            continue
        r0, r1, c0, c1 = 5 + t, 20 + t, 3 + 2 * t, 17 + 3 * t  # inclusive pixel ranges
        masks[r0 : r1 + 1, c0 : c1 + 1, t] = 1
        masks[r0 + 2, c0 + 2, t] = 0  # holes inside do not change the extent
        boxes[t] = (r0 / H, c0 / W, (r1 + 1) / H, (c1 + 1) / W)
    return masks, boxes


def write_jhmdb_dir(root, num_frames=5):
    """JHMDB's manual dir under `root` (a pathlib.Path): split 1 trains on brush_hair and tests
    on catch (the others are broken); {video_id: (frames, boxes, class name)}. The first video's
    last frame has an empty puppet mask."""
    os.makedirs(root / "splits")
    for name in jhmdb.CLASSES:
        video, code = JHMDB_VIDEOS.get(name, (None, None))
        line = f"{video}.avi {code}\n" if video else ""
        (root / "splits" / f"{name}_test_split1.txt").write_text(line)
        (root / "splits" / f"{name}_test_split2.txt").write_text("")
    truth = {}
    for seed, (name, (video, _)) in enumerate(JHMDB_VIDEOS.items()):
        if name == "jump":
            continue  # listed, never extracted
        clip = frames(seed, num_frames)
        masks, boxes = mask_clip(num_frames, empty_frames=(num_frames - 1,) if seed == 0 else ())
        write_pngs(root / "Rename_Images" / name / video, clip)
        if name != "golf":
            mask_dir = root / "puppet_mask" / name / video
            os.makedirs(mask_dir)
            scipy.io.savemat(mask_dir / "puppet_mask.mat", {"part_mask": masks})
        truth[f"{name}/{video}"] = (clip, boxes, name)
    os.remove(root / "Rename_Images" / "clap" / JHMDB_VIDEOS["clap"][0] / "00002.png")
    (root / "Rename_Images" / "kick_ball" / JHMDB_VIDEOS["kick_ball"][0] / "00003.png").write_bytes(
        b"\x89PNG\r\n\x1a\n truncated"
    )
    return truth


# ---------------------------------------------------------------- UCF101-24

# video id -> (split, source, frames, tubes as (label, 1-based first frame, [n, 4] x1 y1 x2 y2))
UCF_VIDEOS = {
    "Basketball/v_Basketball_g01_c01": ("train", "jpeg", 5),
    "Biking/v_Biking_g01_c01": ("train", "video", 6),
    "Skiing/v_Skiing_g01_c01": ("train", "corrupt", 4),
    "Diving/v_Diving_g01_c01": ("test", "jpeg", 4),
    "Fencing/v_Fencing_g01_c01": ("test", "missing", 4),
}


def ucf_tubes(video_id, num_frames, seed):
    """Per class index: tubes (first frame 1-based, x1 y1 x2 y2 pixel boxes); Basketball has two
    actors, one of them only in frames 2-3."""
    rng = np.random.default_rng(seed)
    label = ucf101_24.CLASSES.index(video_id.split("/")[0])

    def boxes(n):
        x1, y1 = rng.uniform(0, W / 2, n), rng.uniform(0, H / 2, n)
        return np.stack([x1, y1, x1 + rng.uniform(5, W / 2, n), y1 + rng.uniform(5, H / 2, n)], 1)

    tubes = [(1, np.round(boxes(num_frames)))]
    if video_id.startswith("Basketball"):
        tubes.append((2, np.round(boxes(2))))
    return label, tubes


def write_ucf_dir(root):
    """UCF101-24's frames under `root` (a pathlib.Path): rgb-images/ JPEG folders, UCF-101/
    videos, one corrupt and one missing; (truth {video_id: (split, frames, label, tubes)}, the
    ACT-style gttubes, the Singh-style annotations, {split: video ids}) for the annotation
    writers."""
    truth, act, singh = {}, {}, {}
    for seed, (video_id, (split, source, num_frames)) in enumerate(UCF_VIDEOS.items()):
        clip = frames(seed + 10, num_frames)
        label, tubes = ucf_tubes(video_id, num_frames, seed)
        act[video_id] = {
            label: [
                np.concatenate([np.arange(first, first + len(b))[:, None], b], 1).astype(np.float32)
                for first, b in tubes
            ]
        }
        singh[video_id] = {
            "label": label,
            "numf": np.int32(num_frames),
            "annotations": [
                {
                    "label": label,
                    "sf": np.int32(first - 1),
                    "ef": np.int32(first - 1 + len(b)),
                    "boxes": np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1).astype(np.int32),
                }
                for first, b in tubes
            ],
        }
        truth[video_id] = (split, clip, label, tubes)
        if source == "jpeg":
            write_pngs(root / "rgb-images" / video_id, clip, ext="jpg")
        elif source == "video":
            path = root / "UCF-101" / f"{video_id}.mp4"
            path.parent.mkdir(parents=True)
            video_files.write_video(str(path), clip, fps=25)
        elif source == "corrupt":
            path = root / "UCF-101" / f"{video_id}.avi"
            path.parent.mkdir(parents=True)
            path.write_bytes(b"RIFF\0\0\0\0AVI junk")
    split_ids = {s: [v for v, row in truth.items() if row[0] == s] for s in ("train", "test")}
    return truth, act, singh, split_ids


def write_singh(root, singh, split_ids):
    """UCF101-24's annotations as Singh et al. released them (pyannot.pkl, trainlist01.txt,
    testlist01.txt)."""
    with open(root / ucf101_24.SINGH_FILE, "wb") as f:
        pickle.dump(singh, f)
    for split in ("train", "test"):
        (root / f"{split}list01.txt").write_text("\n".join(split_ids[split]) + "\n")
