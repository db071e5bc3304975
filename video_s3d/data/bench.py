"""Input pipeline benchmark: decoded training frames per second per CPU core.

    python -m video_s3d.data.bench [--num_frames=32] [--crop_size=224] [--width=340] [--seconds=3]

Writes DMVR shards of 256-short-side JPEG clips to a temp dir, then runs the full train
pipeline (sample -> decode+crop -> flip -> resize -> normalise -> batch) on ONE thread (tf.data
and TF ops limited to one), with the fused `decode_and_crop_jpeg` and with whole-frame decoding
then cropping (the DMVR way), in alternating rounds, timed in CPU seconds of this process so
other jobs on a shared machine do not skew it. Prints frames/s per core for the default random
crop area and for DMVR's fixed 224x224 crop, the fused/baseline ratio, each step's CPU time per
frame with the bounds they put on that ratio, clips/s at 64 frames, and how many such cores
would feed one accelerator training S3D-G at --accelerator_clips_per_s.
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
            seconds: float, crop_area_range=None, crop_aspect_range=(3 / 4, 4 / 3)) -> float:
  """Frames per CPU-second of the train pipeline run on one thread, after a warm-up batch.

  CPU time of this process, not wall time, so other jobs on a shared machine do not count.
  """
  from video_s3d.data import pipeline
  ds = _one_core(pipeline.train_dataset(
      name, batch_size=batch_size, num_frames=num_frames, crop_size=crop_size, seed=0,
      process_index=0, process_count=1, shuffle_buffer=8, fused_decode=fused,
      crop_area_range=crop_area_range, crop_aspect_range=crop_aspect_range))
  iterator = iter(ds)
  next(iterator)
  clips, started = 0, time.process_time()
  while time.process_time() - started < seconds:
    next(iterator)
    clips += batch_size
  rate = clips * num_frames / (time.process_time() - started)
  del iterator  # stops its threads before the next measurement
  return rate


def _per_frame_ms(fn, inputs: list, frames_per_call: int, seconds: float) -> float:
  """CPU milliseconds per frame of `fn(*inputs[i])`, cycling through `inputs`, after a warm-up."""
  fn(*inputs[0])
  calls, started = 0, time.process_time()
  while time.process_time() - started < seconds:
    fn(*inputs[calls % len(inputs)])
    calls += 1
  return (time.process_time() - started) * 1000 / (calls * frames_per_call)


def step_profile(jpegs: list[bytes], *, num_frames: int, crop_size: int, seconds: float,
                 rounds: int, crop_area_range=(0.4, 1.0), crop_aspect_range=(3 / 4, 4 / 3),
                 num_windows: int = 4) -> dict[str, float]:
  """Median CPU ms per frame of each per-clip step of the train pipeline, alone on one clip.

  The steps get the inputs they get in the pipeline: `num_frames` JPEGs and the pipeline's
  random crop windows; flip and resize the fused decode's uint8 crops; normalise the resized
  float frames. 'decode: fused, 16x16 at the bottom-right' is the least any crop can cost:
  libjpeg-turbo skips the inverse DCT, upsampling and colour conversion outside the crop, but
  must still Huffman-decode every block of every row down to the crop's last one.
  """
  import tensorflow as tf
  from video_s3d.data import video_ops
  clip = tf.constant([jpegs[i % len(jpegs)] for i in range(num_frames)])
  image_hw = video_ops.frame_shape(clip[0])
  windows = [video_ops.random_crop_window(image_hw, tf.constant([i, 1], tf.int64),
                                          area_range=crop_area_range,
                                          aspect_range=crop_aspect_range)
             for i in range(num_windows)]
  corner = tf.concat([image_hw - 16, [16, 16]], axis=0)
  crops = [video_ops.decode_and_crop(clip, window) for window in windows]
  resized = [video_ops.resize(frames, crop_size) for frames in crops]
  def per_clip(fn, dtype):  # traced for any frame size, as in the pipeline's maps
    return tf.function(fn, input_signature=[tf.TensorSpec([None, None, None, 3], dtype)])

  steps = {
      "decode: whole frame, then crop": (tf.function(video_ops.decode_then_crop),
                                         [(clip, w) for w in windows]),
      "decode: fused decode_and_crop": (tf.function(video_ops.decode_and_crop),
                                        [(clip, w) for w in windows]),
      "decode: fused, 16x16 at the bottom-right": (tf.function(video_ops.decode_and_crop),
                                                   [(clip, corner)]),
      "flip (uint8 crop)": (per_clip(video_ops.mirror, tf.uint8), [(f,) for f in crops]),
      f"resize to {crop_size} (float32)": (
          per_clip(lambda frames: video_ops.resize(frames, crop_size), tf.uint8),
          [(f,) for f in crops]),
      "normalise to [-1, 1]": (per_clip(video_ops.normalise, tf.float32),
                               [(f,) for f in resized]),
  }
  times = {name: [] for name in steps}
  for _ in range(rounds):  # alternating, so load changes on a shared machine hit every step
    for name, (fn, inputs) in steps.items():
      times[name].append(_per_frame_ms(fn, inputs, num_frames, seconds))
  return {name: float(np.median(values)) for name, values in times.items()}


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


def _format(rows: list[tuple[str, ...]]) -> list[str]:
  widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
  lines = ["  ".join([f"{row[0]:<{widths[0]}}"] + [f"{cell:>{width}}" for cell, width
                                                    in zip(row[1:], widths[1:])])
           for row in rows]
  lines.insert(1, "-" * len(lines[0]))
  return lines


def _step_rows(label: str, steps: dict[str, float], fused_rate: float) -> list[tuple[str, str]]:
  """Per-step ms/frame, the rest of the pipeline, and the bounds they put on fused/base."""
  fused = steps["decode: fused decode_and_crop"]
  whole = steps["decode: whole frame, then crop"]
  corner = steps["decode: fused, 16x16 at the bottom-right"]
  others = 1000 / fused_rate - fused  # everything but decoding, measured in the pipeline
  per_clip = [name for name in steps if not name.startswith("decode")]
  accounted = sum(steps[name] * (0.5 if name.startswith("flip") else 1) for name in per_clip)
  rows = [(f"per-step CPU ms per frame, {label}", "ms/frame")]
  rows += [(f"  {name}{' (half the clips)' if name.startswith('flip') else ''}", f"{value:.3f}")
           for name, value in steps.items()]
  rows += [
      ("  rest: read, sample, shuffle, batch, tf.data", f"{others - accounted:.3f}"),
      ("  full pipeline, fused (1000 / frames/s)", f"{1000 / fused_rate:.3f}"),
      ("  fused/base if only decoding took time: whole / fused decode", f"{whole / fused:.2f}x"),
      ("  fused/base bound from the other steps: (whole + rest) / (fused + rest)",
       f"{(whole + others) / (fused + others):.2f}x"),
      ("  best any crop can do: whole / 16x16-at-the-bottom-right decode", f"{whole / corner:.2f}x"),
  ]
  return rows


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
  rows = [("full train pipeline, decode path, crop area", "frames/s/core", "clips/s/core",
           "fused/base")]
  step_rows = []
  with tempfile.TemporaryDirectory() as directory:
    name = write_clips(directory, height=height, width=width)
    print(f"Clips: DMVR shards of {height}x{width} JPEG frames (q90); {rounds} alternating "
          f"rounds of {seconds:g} CPU-s per path, one thread...", flush=True)
    difference = _pixel_difference(name, crop_size)
    settings = dict(num_frames=num_frames, crop_size=crop_size, batch_size=batch_size,
                    seconds=seconds)
    jpegs = _make_jpegs(height, width)
    for label, crop in ((f"random 40-100% (train default)",
                         dict(crop_area_range=(0.4, 1.0), crop_aspect_range=(3 / 4, 4 / 3))),
                        (f"fixed {crop_size}x{crop_size} square (as DMVR)",
                         # A hair of slack: at exactly one area the sampler's rounding may
                         # reject every square and fall back to the whole frame.
                         dict(crop_area_range=(fixed_area * 0.999, fixed_area * 1.001),
                              crop_aspect_range=(1, 1)))):
      print(f"  {label}: per-step profile...", flush=True)
      steps = step_profile(jpegs, num_frames=num_frames, crop_size=crop_size,
                           seconds=seconds / 2, rounds=rounds,
                           **crop)
      print(f"  {label}: full pipeline...", flush=True)
      fused, baseline = compare(name, rounds=rounds, **crop, **settings)
      rows.append((f"fused decode_and_crop, {label}", f"{fused:.0f}",
                   f"{fused / num_frames:.2f}", f"{fused / baseline:.2f}x"))
      rows.append((f"decode whole frame then crop, {label}", f"{baseline:.0f}",
                   f"{baseline / num_frames:.2f}", ""))
      step_rows.append(_step_rows(label, steps, fused))
      print(f"  {label}: fused {fused:.0f}, baseline {baseline:.0f} frames/s", flush=True)
    print("  64-frame clips...", flush=True)
    frames_64 = measure(name, fused=True, **{**settings, "num_frames": 64,
                                             "batch_size": max(1, batch_size // 2)})
  clips_64 = frames_64 / 64
  rows.append(("fused, 64-frame clips, random 40-100%", f"{frames_64:.0f}", f"{clips_64:.2f}", ""))
  lines = _format(rows)
  for profile in step_rows:
    lines += [""] + _format(profile)
  lines += [
      "",
      f"{num_frames}-frame clips, {crop_size}x{crop_size} crops of {height}x{width} frames; "
      f"fused vs baseline pixels: max difference {difference} grey levels",
      _cores_per_accelerator(accelerator_clips_per_s, clips_64),
  ]
  return "\n".join(lines)


def _cores_per_accelerator(accelerator_clips_per_s: float, clips_64_per_core: float) -> str:
  """How many cores like this one feed one accelerator, with where its clip rate comes from."""
  from video_s3d import cost
  gmacs = cost.gmacs("s3dg", 64, 224)
  # A training step is about 3x a forward pass (forward, then gradients w.r.t. activations
  # and weights), and one multiply-add is 2 FLOP.
  tflops = accelerator_clips_per_s * 3 * 2 * gmacs / 1e3
  return (f"cores to feed one accelerator training S3D-G: "
          f"{accelerator_clips_per_s / clips_64_per_core:.1f} (at {accelerator_clips_per_s:g} "
          f"clips/s of 64x224x224, --accelerator_clips_per_s; an assumption, not a measurement: "
          f"S3D-G is {gmacs:.1f} G multiply-adds per clip forward (video_s3d.cost), a training "
          f"step about 3x that, so {accelerator_clips_per_s:g} clips/s = {tflops:.0f} TFLOP/s "
          f"sustained; measure it on the accelerator with python -m video_s3d.models.bench "
          f"--models=s3dg --dtype=bfloat16, column train clips/s)")


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
      "S3D-G training throughput of one accelerator, in 64x224x224 clips/s (forward + "
      "backward). The default is an assumption, not a measurement: at the ~64 G multiply-adds "
      "per clip forward of video_s3d.cost (~390 GFLOP per training step per clip) it means "
      "~15 TFLOP/s sustained, what 3D-conv nets typically reach on one current GPU or TPU core. "
      "Measure it with python -m video_s3d.models.bench --models=s3dg on the accelerator.")


def main(argv):
  del argv
  print(run(num_frames=_NUM_FRAMES.value, crop_size=_CROP_SIZE.value,
            batch_size=_BATCH_SIZE.value, height=_HEIGHT.value, width=_WIDTH.value,
            seconds=_SECONDS.value, rounds=_ROUNDS.value, accelerator_clips_per_s=_ACCELERATOR_CLIPS.value))


if __name__ == "__main__":
  _define_flags()
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  app.run(main)
