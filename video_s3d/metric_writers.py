"""Where a run's numbers go: stdout progress lines, TensorBoard events, metrics.jsonl.

Only process 0 writes (every process computes the same replicated metrics); the other
processes get a writer whose methods do nothing, so callers never branch on the rank.

Events are written as raw `Summary` protos (scalar `simple_value`, PNG `image`), which
TensorBoard reads as usual but which need no `tensorboard` package at write time
(tf.summary.scalar/image do, and tensorflow-cpu does not install it).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

import numpy as np


class MetricWriter:
    """Scalars and images to TensorBoard and `metrics.jsonl` in `workdir` (process 0 only)."""

    def __init__(self, workdir: str, enabled: bool = True, start_step: int | None = None):
        """`start_step`: the step a run starts (or resumes) from. Records after it in
        metrics.jsonl came from steps the run repeats (done after the checkpoint it resumed
        from) and are dropped, so each step appears once."""
        self.enabled = enabled
        self._tb = None
        self._jsonl = None
        if not enabled:
            return
        os.makedirs(workdir, exist_ok=True)
        import tensorflow as tf  # imported lazily: only the writing process pays for it
        from tensorflow.core.framework import summary_pb2

        self._tf = tf
        self._summary_pb2 = summary_pb2
        self._tb = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))
        path = os.path.join(workdir, "metrics.jsonl")
        if start_step is not None and os.path.exists(path):
            _drop_records_after(path, start_step)
        self._jsonl = open(path, "a", encoding="utf-8")

    def write_scalars(self, step: int, scalars: dict[str, Any], prefix: str = "") -> None:
        if not self.enabled:
            return
        values = {f"{prefix}{k}": float(v) for k, v in scalars.items()}
        summary = self._summary_pb2.Summary(
            value=[
                self._summary_pb2.Summary.Value(tag=name, simple_value=value)
                for name, value in values.items()
            ]
        )
        self._write(step, summary)
        record = {
            "step": int(step),
            **{k: (v if math.isfinite(v) else str(v)) for k, v in values.items()},
        }
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()

    def write_image(self, step: int, name: str, image: np.ndarray) -> None:
        """One HxWx3 (or 4) uint8 image, e.g. a rendered confusion matrix."""
        if not self.enabled:
            return
        image = np.asarray(image, np.uint8)
        png = self._tf.io.encode_png(image).numpy()
        summary = self._summary_pb2.Summary(
            value=[
                self._summary_pb2.Summary.Value(
                    tag=name,
                    image=self._summary_pb2.Summary.Image(
                        height=image.shape[0],
                        width=image.shape[1],
                        colorspace=image.shape[2],
                        encoded_image_string=png,
                    ),
                )
            ]
        )
        self._write(step, summary)

    def _write(self, step: int, summary) -> None:
        with self._tb.as_default():
            self._tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)

    def flush(self) -> None:
        if self.enabled:
            self._tb.flush()
            self._jsonl.flush()

    def close(self) -> None:
        if self.enabled:
            self._tb.close()
            self._jsonl.close()
            self.enabled = False


def _drop_records_after(path: str, step: int) -> None:
    """Rewrites metrics.jsonl (atomically) without the records of steps after `step`."""
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()

    def keep(line: str) -> bool:
        try:
            return int(json.loads(line)["step"]) <= step
        except (ValueError, KeyError, TypeError):
            return False  # a line cut short by a killed run

    kept = [line for line in lines if keep(line)]
    if len(kept) == len(lines):
        return
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(kept)
    os.replace(tmp, path)


class Progress:
    """Throughput and ETA between log points; prints one line per log step (process 0)."""

    def __init__(self, total_steps: int, first_step: int, enabled: bool = True):
        self.total_steps = total_steps
        self.enabled = enabled
        self._start_step = first_step
        self._start_time = time.perf_counter()
        self._last_step = first_step
        self._last_time = self._start_time
        self._paused_at: float | None = None

    def measure(self, step: int, clips_per_step: int) -> dict[str, float]:
        """Clips/s and steps/s since the previous call, and the ETA from the overall rate."""
        now = time.perf_counter()
        steps = step - self._last_step
        elapsed = max(now - self._last_time, 1e-9)
        overall = (step - self._start_step) / max(now - self._start_time, 1e-9)
        eta = (self.total_steps - step) / overall if overall > 0 else float("inf")
        self._last_step, self._last_time = step, now
        if steps <= 0:  # nothing timed yet (the first, compiling step is left out)
            return {"clips_per_sec": float("nan"), "sec_per_step": float("nan"), "eta_sec": eta}
        return {
            "clips_per_sec": steps * clips_per_step / elapsed,
            "sec_per_step": elapsed / steps,
            "eta_sec": eta,
        }

    def restart(self, step: int) -> None:
        """Time from now and `step` on (called after the first step, which compiles)."""
        self._start_step = self._last_step = step
        self._start_time = self._last_time = time.perf_counter()
        self._paused_at = None

    def pause(self) -> None:
        """Stop the clock (evaluation, checkpointing) until `resume`."""
        self._paused_at = time.perf_counter()

    def resume(self) -> None:
        if self._paused_at is not None:
            self.exclude(time.perf_counter() - self._paused_at)
            self._paused_at = None

    def average_rate(self, step: int, clips_per_step: int) -> float | None:
        """Clips/s over every step timed so far, pauses left out; None before any."""
        end = self._paused_at if self._paused_at is not None else time.perf_counter()
        steps, seconds = step - self._start_step, end - self._start_time
        return steps * clips_per_step / seconds if steps > 0 and seconds > 0 else None

    def exclude(self, seconds: float) -> None:
        """Leave out time spent on something else (evaluation, checkpointing)."""
        self._start_time += seconds
        self._last_time += seconds

    def print_line(self, step: int, metrics: dict[str, float], rates: dict[str, float]) -> None:
        if not self.enabled:
            return
        # Detection has no accuracy to show (its loss terms are in metrics.jsonl).
        accuracy = f"acc {metrics['accuracy']:.3f}  " if "accuracy" in metrics else ""
        print(
            f"step {step:>6d}/{self.total_steps}  loss {metrics['loss']:.4f}  "
            f"{accuracy}lr {metrics['learning_rate']:.3g}  "
            f"{_rate(rates['clips_per_sec'])} clips/s  ETA {format_duration(rates['eta_sec'])}",
            flush=True,
        )


def _rate(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "?"


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def log(message: str, enabled: bool = True) -> None:
    """A one-line status message on stdout (process 0 only)."""
    if enabled:
        print(message, file=sys.stdout, flush=True)
