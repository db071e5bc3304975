"""Input pipeline benchmark: decoded training frames per second per CPU core.

    python -m video_s3d.data.bench [--num_frames=32] [--crop_size=224] [--seconds=8]

Writes DMVR shards of 256-short-side JPEG clips to a temp dir, then runs the full train
pipeline (sample -> decode+crop -> resize -> flip -> normalise -> batch) on ONE thread (tf.data
and TF ops limited to one), with the fused `decode_and_crop_jpeg` and with whole-frame decoding
then cropping (the DMVR way), in alternating rounds, timed in CPU seconds of this process so
other jobs on a shared machine do not skew it. Prints frames/s per core for the default random
crop area and for DMVR's fixed 224x224 crop, the fused/baseline ratio, clips/s at 64 frames,
and how many such cores would feed one accelerator training S3D-G at --accelerator_clips_per_s.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np
from absl import app, flags


def _make_jpegs(height: int, width: int, count: int = 16) -> list[bytes]:
  """Distinct photo-like frames: a textured moving object on a textured background + noise."""
  from video_s3d.data.builders import common, synthetic_render
  size = max(height, width)
  clip = synthetic_render.make_clip("appearance", 3, (1,), count, size)[:, :height, :width]
  noise = np.random.default_rng(0).normal(0, 3, clip.shape)  # camera-like grain
  frames = np.clip(clip + noise, 0, 255).astype(np.uint8)
  return common.encode_jpeg(frames)


def write_clips(directory: str, *, num_videos: int = 12, frames_per_video: int = 96,
                height: int = 256, width: int = 340) -> str:
  """DMVR shards of JPEG clips; returns the dataset name for the pipeline."""
  from video_s3d.data import dmvr
  jpegs = _make_jpegs(height, width)
  records = [dmvr.make_example([jpegs[(v + i) % len(jpegs)] for i in range(frames_per_video)],
                               label=v % 4) for v in range(num_videos)]
  dmvr.write_shards(records, directory, "train", num_shards=2)
  return f"dmvr:{directory}/train-*?num_classes=4"


def _one_core(dataset):
  import tensorflow as tf
  options = tf.data.Options()
  options.threading.private_threadpool_size = 1
  options.threading.max_intra_op_parallelism = 1
  return dataset.with_options(options)


def measure(name: str, *, fused: bool, num_frames: int, crop_size: int, batch_size: int,
            seconds: float, crop_area_range=None) -> float:
  """Frames per CPU-second of the train pipeline run on one thread, after a warm-up batch.

  CPU time of this process, not wall time, so other jobs on a shared machine do not count.
  """
  from video_s3d.data import pipeline
  ds = _one_core(pipeline.train_dataset(
      name, batch_size=batch_size, num_frames=num_frames, crop_size=crop_size, seed=0,
      process_index=0, process_count=1, shuffle_buffer=8, fused_decode=fused,
      crop_area_range=crop_area_range))
  iterator = iter(ds)
  next(iterator)
  clips, started = 0, time.process_time()
  while time.process_time() - started < seconds:
    next(iterator)
    clips += batch_size
  rate = clips * num_frames / (time.process_time() - started)
  del iterator  # stops its threads before the next measurement
  return rate


def decode_only(jpegs: list[bytes], *, fused: bool, seconds: float, crop_area_range) -> float:
  """Frames per CPU-second of the decode step alone, on the same random windows as training."""
  import tensorflow as tf
  from video_s3d.data import video_ops
  frames = tf.constant(jpegs)
  decode = video_ops.decode_and_crop if fused else video_ops.decode_then_crop

  @tf.function
  def step(seed):
    window = video_ops.random_crop_window(video_ops.frame_shape(frames[0]), seed,
                                          area_range=crop_area_range)
    return tf.shape(decode(frames, window))[0]

  step(tf.constant([0, 0], tf.int64))
  count, started = 0, time.process_time()
  while time.process_time() - started < seconds:
    step(tf.constant([count, 1], tf.int64))
    count += 1
  return count * len(jpegs) / (time.process_time() - started)


def compare(name: str, *, rounds: int, **settings) -> tuple[float, float]:
  """Median frames/CPU-s of (fused, baseline), measured in alternating rounds."""
  fused, baseline = [], []
  for _ in range(rounds):
    fused.append(measure(name, fused=True, **settings))
    baseline.append(measure(name, fused=False, **settings))
  return float(np.median(fused)), float(np.median(baseline))


def _pixel_difference(name: str, crop_size: int) -> int:
  """Largest difference in grey levels between the two decode paths on the same crops."""
  from video_s3d.data import pipeline
  batches = [next(iter(pipeline.train_dataset(
      name, batch_size=2, num_frames=4, crop_size=crop_size, seed=5, process_index=0,
      process_count=1, shuffle_buffer=4, fused_decode=fused)))["video"].numpy()
             for fused in (True, False)]
  return int(np.round(np.abs(batches[0] - batches[1]).max() * 127.5))


def run(*, num_frames: int, crop_size: int, batch_size: int, height: int, width: int,
        seconds: float, rounds: int, accelerator_clips_per_s: float) -> str:
  import tensorflow as tf
  try:  # one thread for TF ops too; impossible once TF has run an op (then tf.data's
    # one-thread options still bound the pipeline, but ops outside it may use more)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
  except RuntimeError:
    pass
  fixed_area = crop_size * crop_size / (height * width)
  rows = [("decode path, crop area", "frames/s/core", "clips/s/core", "fused/base")]
  with tempfile.TemporaryDirectory() as directory:
    name = write_clips(directory, height=height, width=width)
    print(f"Clips: DMVR shards of {height}x{width} JPEG frames (q90); {rounds} alternating "
          f"rounds of {seconds:.0f} CPU-s per path, one thread...", flush=True)
    difference = _pixel_difference(name, crop_size)
    settings = dict(num_frames=num_frames, crop_size=crop_size, batch_size=batch_size,
                    seconds=seconds)
    jpegs = _make_jpegs(height, width)
    for label, area in ((f"random 40-100% (train default)", None),
                        (f"fixed {fixed_area:.0%} ({crop_size}x{crop_size}, as DMVR)",
                         (fixed_area, fixed_area))):
      decode_rates = [np.median([decode_only(jpegs, fused=fused, seconds=seconds / 2,
                                             crop_area_range=area or (0.4, 1.0))
                                 for _ in range(rounds)]) for fused in (True, False)]
      rows.append((f"decode step only: fused, {label}", f"{decode_rates[0]:.0f}", "",
                   f"{decode_rates[0] / decode_rates[1]:.2f}x"))
      rows.append((f"decode step only: whole frame, {label}", f"{decode_rates[1]:.0f}", "", ""))
      fused, baseline = compare(name, rounds=rounds, crop_area_range=area, **settings)
      rows.append((f"full pipeline: fused, {label}", f"{fused:.0f}", f"{fused / num_frames:.2f}",
                   f"{fused / baseline:.2f}x"))
      rows.append((f"full pipeline: decode then crop, {label}", f"{baseline:.0f}",
                   f"{baseline / num_frames:.2f}", ""))
      print(f"  {label}: fused {fused:.0f}, baseline {baseline:.0f} frames/s", flush=True)
    frames_64 = measure(name, fused=True, **{**settings, "num_frames": 64,
                                             "batch_size": max(1, batch_size // 2)})
  clips_64 = frames_64 / 64
  rows.append(("full pipeline: fused, 64-frame clips, random 40-100%", f"{frames_64:.0f}", f"{clips_64:.2f}",
               ""))
  widths = [max(len(row[i]) for row in rows) for i in range(4)]
  lines = [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:>{widths[2]}}  {d:>{widths[3]}}"
           for a, b, c, d in rows]
  lines.insert(1, "-" * len(lines[0]))
  lines += [
      f"{num_frames}-frame clips, {crop_size}x{crop_size} crops of {height}x{width} frames; "
      f"fused vs baseline pixels: max difference {difference} grey levels",
      f"cores to feed one accelerator training S3D-G at {accelerator_clips_per_s:.0f} clips/s "
      f"(64x224x224, an assumption: see --help): {accelerator_clips_per_s / clips_64:.0f}",
  ]
  return "\n".join(lines)


def _define_flags():
  """Flags exist only when run as a program, so the module imports next to other tools."""
  global _NUM_FRAMES, _CROP_SIZE, _BATCH_SIZE, _HEIGHT, _WIDTH, _SECONDS, _ROUNDS, _ACCELERATOR_CLIPS
  _NUM_FRAMES = flags.DEFINE_integer("num_frames", 32, "Frames per training clip.")
  _CROP_SIZE = flags.DEFINE_integer("crop_size", 224, "Training crop side.")
  _BATCH_SIZE = flags.DEFINE_integer("batch_size", 4, "Clips per batch.")
  _HEIGHT = flags.DEFINE_integer("height", 256, "Stored frame height (the short side).")
  _WIDTH = flags.DEFINE_integer("width", 340, "Stored frame width.")
  _SECONDS = flags.DEFINE_float("seconds", 3.0, "CPU seconds per measuring round.")
  _ROUNDS = flags.DEFINE_integer("rounds", 3, "Alternating rounds per path (median reported).")
  _ACCELERATOR_CLIPS = flags.DEFINE_float(
      "accelerator_clips_per_s", 40.0,
      "Assumed S3D-G training throughput of one accelerator, in 64x224x224 clips/s (forward + "
      "backward). The default is an assumption, not a measurement: S3D-G costs ~71 G multiply-"
      "adds per clip forward (~430 GFLOP per training step per clip); 40 clips/s means ~17 "
      "TFLOP/s sustained, what 3D-conv nets typically reach on one current GPU or TPU core.")


def main(argv):
  del argv
  print(run(num_frames=_NUM_FRAMES.value, crop_size=_CROP_SIZE.value,
            batch_size=_BATCH_SIZE.value, height=_HEIGHT.value, width=_WIDTH.value,
            seconds=_SECONDS.value, rounds=_ROUNDS.value, accelerator_clips_per_s=_ACCELERATOR_CLIPS.value))


if __name__ == "__main__":
  _define_flags()
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  app.run(main)
