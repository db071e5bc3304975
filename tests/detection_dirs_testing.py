"""Tiny official-layout JHMDB manual dirs (frame folders, puppet masks, split lists), for the
builder tests and the end-to-end detection run."""

import os

import numpy as np
import scipy.io
from PIL import Image

from video_s3d.data.builders import jhmdb, synthetic_render

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
