"""`python -m video_s3d.predict --task=detection`: boxes and labels of a trained detector drawn
onto video files.

Per video: every frame is resized to the run's crop (square, as training saw it) and detected
from the clip centred on it (`training.detect_videos`); the detections of the frames are linked
into tubes (`linking.link_video`). Written to --out: `<name>_detections.png`, a contact sheet of
evenly spaced frames at their own resolution with the boxes (score above --min_score) and
"class score" labels, and with --annotated_video `<name>_detections.mp4`, every frame so drawn.
Printed: the best tubes (class, score, frames), or with --json one object per video.
"""

from __future__ import annotations

import json
import os
import sys

import jax
import numpy as np
from absl import logging as absl_logging
from PIL import Image

from video_s3d import checkpointing, inference, normalization, parallel, steps, train_state
from video_s3d.data.builders import video_files
from video_s3d.detection import draw, linking, trainer, training
from video_s3d.errors import UserError

TUBES_SHOWN = 3


def run_task(workdir: str) -> str | None:
    """The task the run at `workdir` was trained for (None where that cannot be read: the
    classification path then names the problem)."""
    try:
        workdir, _ = inference._where_is_the_run(workdir)
        return inference.load_config(workdir).get("task", "classification")
    except UserError:
        return None


def load_detector(workdir: str, step: str | None):
    """(config, model, variables, class names, step, how it was chosen) of a detection run."""
    workdir, path_step = inference._where_is_the_run(workdir)
    which = steps.parse(step) if step is not None else path_step
    which = steps.BEST if which is None else which
    config = inference._for_inference(inference.load_config(workdir))
    if config.get("task") != trainer.TASK:
        raise UserError(
            f"{workdir} is a {config.get('task', 'classification')} run; --task=detection needs "
            f"a run trained with config.task='detection'."
        )
    ckpt = checkpointing.Checkpoints(workdir, read_only=True)
    try:
        chosen, how = steps.resolve(ckpt, which, workdir)
        info = ckpt.run_info(chosen) or {}
        model = trainer.create_model(config, int(info["num_classes"]))
        one_device = parallel.make_mesh(jax.local_devices()[:1])
        variables = ckpt.restore_model(
            chosen, train_state.abstract_variables(model, config, one_device)
        )
    finally:
        ckpt.close()
    names = inference.class_names_of(info, config, int(info["num_classes"]))
    return config, model, variables, names, int(chosen), how


def square(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 [T, size, size, 3]: each frame resized (bilinear), aspect not kept, as training."""
    return np.stack(
        [np.asarray(Image.fromarray(f).resize((size, size), Image.BILINEAR)) for f in frames]
    )


def even(frames: np.ndarray) -> np.ndarray:
    """Frames cropped to even sides (H.264 in yuv420p needs them)."""
    return frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]


def main(args) -> int:
    # orbax warns that read-only means read-only; the verbosity is put back afterwards, since
    # absl's is process-wide (left at ERROR, it silenced later warnings of the same process).
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        videos = inference.list_videos(args.video)
        config, model, variables, names, step, how = load_detector(args.workdir, args.step)
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    finally:
        absl_logging.set_verbosity(verbosity)
    os.makedirs(args.out, exist_ok=True)
    detect = training.make_detect(
        model, int(config.max_detections), normalization.from_config(config.data)
    )
    state = training.TrainState(variables["params"], variables["batch_stats"], None)
    clip, stride = int(config.data.num_frames), int(config.data.stride)
    print(
        f"{config.model.name} detector, step {step} ({how}); {len(videos)} video(s) -> {args.out}",
        file=sys.stderr,
        flush=True,
    )
    succeeded = 0
    for index, (path, _) in enumerate(videos):
        counter = f"[{index + 1}/{len(videos)}]"
        try:
            frames, fps = video_files.read_video(path, fps=None, short_side=None)
        except video_files.UnreadableVideo as error:
            message = {"video": path, "error": str(error)}
            print(json.dumps(message) if args.json else f"{counter} {path}: unreadable ({error})")
            continue
        empty = np.zeros((0, len(frames), 4), np.float32)
        video = training.LabelledVideo(
            path,
            square(frames, int(config.data.crop_size)),
            np.zeros(0, int),
            empty,
            empty[..., 0] > 0,
        )
        _, found = training.detect_videos(detect, state, [video], clip, 1, 8, stride)[path]
        times = np.arange(len(frames))
        keep = [draw.kept(found, t, args.min_score) for t in times]
        tubes = linking.link_video(
            path,
            times,
            [found["boxes"][t, k] for t, k in enumerate(keep)],
            [found["labels"][t, k] for t, k in enumerate(keep)],
            [found["scores"][t, k] for t, k in enumerate(keep)],
            len(names),
        )
        tubes = sorted(tubes, key=lambda tube: -tube.score)[:TUBES_SHOWN]
        scale = max(1, 256 // max(frames.shape[1:3]))

        def drawn(t: int) -> np.ndarray:
            k = keep[t]
            boxes, labels, scores = (
                found["boxes"][t, k],
                found["labels"][t, k],
                found["scores"][t, k],
            )
            return draw.annotate(frames[t], boxes, labels, scores, names, scale=scale)

        stem = os.path.join(args.out, os.path.splitext(os.path.basename(path))[0])
        picked = np.unique(np.linspace(0, len(frames) - 1, args.sheet_frames).round().astype(int))
        draw.save_png(draw.grid([drawn(t) for t in picked], 4), stem + "_detections.png")
        written = [stem + "_detections.png"]
        if args.annotated_video:
            annotated = even(np.stack([drawn(t) for t in times]))
            video_files.write_video(stem + "_detections.mp4", annotated, fps=fps)
            written.append(stem + "_detections.mp4")
        succeeded += 1
        described = [
            {
                "label": names[tube.label],
                "score": float(tube.score),
                "first_frame": int(tube.frames[0]),
                "last_frame": int(tube.frames[-1]),
            }
            for tube in tubes
        ]
        if args.json:
            print(json.dumps({"video": path, "step": step, "tubes": described, "files": written}))
        else:
            shown = "  ".join(
                f"{t['label']} {t['score']:.2f} (frames {t['first_frame']}-{t['last_frame']})"
                for t in described
            )
            print(f"{counter} {path}: {shown or 'nothing detected'}; wrote {', '.join(written)}")
        sys.stdout.flush()
    if not succeeded:
        print(f"Error: none of the {len(videos)} video(s) could be read.", file=sys.stderr)
        return 1
    return 0
