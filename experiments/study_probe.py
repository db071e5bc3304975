r"""Short in-memory training probes for the paper study's recipe and tasks (no TFDS build).

  python -m experiments.study_probe --synthetic_task=appearance --models=tiny_s3dg --seeds=0,1,2
  python -m experiments.study_probe --synthetic_task=order --models=tiny_i2d,tiny_top_heavy_i3d_6,tiny_s3d \
      --steps=600 --train_clips=1500

Renders `--train_clips` / `--eval_clips` clips of a synthetic_motion task with the dataset's own
renderer (video_s3d/data/builders/synthetic_render.py, the dataset's clip length at `--crop_size`
pixels, seeds disjoint from the built dataset's), keeps the study's clip for the task
(`--num_frames` frames `--stride` apart, a random window per training clip, the centre window
for evaluation: the pipeline's rule) and
trains with the study's recipe (experiments/paper_study.py RUN_SETTINGS, the real train step
of video_s3d/train.py), printing the training loss and accuracy every `--log_every` steps and,
at the end, validation top-1 with precise BatchNorm statistics (as the study evaluates, and
over PRECISE_BN_CHECK batches: the estimate's noise), with the running averages and with each
evaluation batch's own statistics. No crop augmentation: the frames are rendered at the crop
size. `--init_seed` / `--data_seed` override the seed for initialisation / data order
separately (default: both the run's seed), which tells initialisation from data order as a
source of seed-to-seed spread. Findings: experiments/results/STUDY_HISTORY.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import numpy as np

from video_s3d import arguments
from video_s3d.data.builders import synthetic_render

PROBE_DATA_SEED = 1_000_003  # distinct from the built dataset's seed 0
# Training batches of a second precise-BN estimate, beside the config's (8 in the study).
PRECISE_BN_CHECK = 64


def clip_length(task: str) -> int:
    """The built dataset's clip length for `task` (its SyntheticMotionConfig's)."""
    from video_s3d.data.builders import synthetic_motion

    return synthetic_motion.SyntheticMotion.builder_configs[task].num_frames


def render_split(
    task: str, num_clips: int, split: int, *, size: int, frames: int, stride: int, train: bool
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, frames, size, size, 3] windows and int32 labels (classes cycle)."""
    num_classes = len(synthetic_render.class_names(task))
    span = (frames - 1) * stride + 1
    render_frames = clip_length(task)
    last_start = max(render_frames - span, 0)
    clips = np.empty((num_clips, frames, size, size, 3), np.uint8)
    labels = np.arange(num_clips, dtype=np.int32) % num_classes
    for i in range(num_clips):
        start = (
            np.random.default_rng((PROBE_DATA_SEED, split, i, 7)).integers(last_start + 1)
            if train
            else int(round(0.5 * last_start))
        )
        rng = np.random.default_rng((PROBE_DATA_SEED, split, i))
        frames_kept = np.arange(start, start + span, stride)
        if task in synthetic_render.SCENE_TASKS:
            scene = synthetic_render.SCENE_TASKS[task](int(labels[i]), rng, render_frames, size)
            clips[i] = synthetic_render.render_scene(scene, size, frames_kept)
        else:
            params = synthetic_render.make_params(task, int(labels[i]), rng, size)
            clips[i] = synthetic_render.render(params, render_frames, size, frames_kept)
    return clips, labels


def probe_config(model: str, task: str, args):
    from experiments import paper_study, synthetic_motion
    from video_s3d import train_state

    config = synthetic_motion.get_config(f"model={model},config={task}")
    for key, value in paper_study.RUN_SETTINGS.items():
        _set(config, key, value)
    config.data.num_frames, config.data.stride, config.data.crop_size = (
        args.num_frames,
        args.stride,
        args.crop_size,
    )
    config.num_train_steps = args.steps
    # The study's warm-up and off-centre hold (fractions of the run); before session 17 probes
    # warmed up for a tenth of the steps, shorter than the study's runs.
    for key, value in paper_study.schedule_settings(args.steps).items():
        _set(config, key, value)
    config.cpu_fast_compile = train_state.fast_compile_pays_off(args.steps)
    for override in args.set or ():
        key, _, value = override.partition("=")
        _set(config, key, _parse_like(_get(config, key), value))
    return config


def _parse_like(current, text: str):
    """`text` as the type of the field's current value (bool('False') would be True)."""
    if isinstance(current, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise SystemExit(f"--set expects true or false for a yes/no field, not {text!r}.")
        return text.lower() in ("true", "1")
    return text if current is None else type(current)(text)


def _get(config, key):
    for part in key.split(".")[:-1]:
        config = config[part]
    return config[key.split(".")[-1]]


def _set(config, key, value):
    for part in key.split(".")[:-1]:
        config = config[part]
    config[key.split(".")[-1]] = value


_PROGRAMS: dict = {}


def dict_without_sync(config):
    """The same config with per-device BN (no mesh axis) and no dropout: the model outside
    shard_map."""
    copy = config.copy_and_resolve_references()
    copy.sync_batch_norm = False
    copy.model.dropout_rate = 0.0
    return copy


def _predictors(model, local_model):
    """Jitted logits with given BN statistics, and with each batch's own statistics (the
    per-device model: train-mode BN outside shard_map)."""
    import jax

    @jax.jit
    def predict(params, batch_stats, video):
        return model.apply({"params": params, "batch_stats": batch_stats}, video, train=False)

    @jax.jit
    def predict_batch_stats(params, batch_stats, video):
        logits, _ = local_model.apply(
            {"params": params, "batch_stats": batch_stats},
            video,
            train=True,
            mutable=["batch_stats"],
            rngs={"dropout": jax.random.key(0)},
        )
        return logits

    return predict, predict_batch_stats


def train_probe(model_name: str, task: str, data, args, init_seed: int, data_seed: int) -> dict:
    import jax
    import jax.numpy as jnp

    from video_s3d import normalization, optim, parallel, train, train_state
    from video_s3d.compile_policy import CompilePolicy

    (train_x, train_y), (eval_x, eval_y) = data
    config = probe_config(model_name, task, args)
    num_classes = len(synthetic_render.class_names(task))
    mesh = parallel.make_mesh(jax.devices()[:1])
    if model_name not in _PROGRAMS:  # one compile per model: every seed reuses the programs
        model = train_state.create_model(config, num_classes)
        tx = optim.make_optimizer(config.optim, config.num_train_steps)
        schedule = optim.make_schedule(config.optim, config.num_train_steps)
        options = CompilePolicy.from_config(config)
        # Dropout's stream is seeded 0 for every probe (the trainer uses the run's seed) so
        # the compiled step is shared; initialisation and data order follow the seeds.
        _PROGRAMS[model_name] = (
            model,
            tx,
            options,
            train.make_train_step(
                model,
                tx,
                schedule,
                mesh,
                num_classes=num_classes,
                label_smoothing=0.0,
                sync_batch_norm=True,
                freeze_batch_norm=False,
                seed=0,
                policy=options,
            ),
            train.make_batch_stats_step(model, mesh, sync_batch_norm=True, policy=options),
            *_predictors(model, train_state.create_model(dict_without_sync(config), num_classes)),
        )
    model, tx, options, step_fn, stats_step, predict, predict_batch_stats = _PROGRAMS[model_name]
    state = train_state.create_state(model, tx, config, mesh, jax.random.key(init_seed))
    normalise = normalization.from_config(config.data).numpy
    rng = np.random.default_rng(data_seed)
    order = np.empty(0, np.int64)
    batch = config.batch_size
    history, window, started = [], [], time.time()
    for step in range(1, config.num_train_steps + 1):
        if len(order) < batch:
            order = np.concatenate([order, rng.permutation(len(train_y))])
        chosen, order = order[:batch], order[batch:]
        feed = {"video": normalise(train_x[chosen]), "label": train_y[chosen]}
        state, metrics = step_fn(state, parallel.host_to_global(feed, mesh))
        window.append({k: float(v) for k, v in metrics.items()})
        if step % args.log_every == 0 or step == config.num_train_steps:
            mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            rate = step / (time.time() - started)
            history.append((step, mean["loss"], mean["accuracy"]))
            print(
                f"  {model_name} init {init_seed} data {data_seed} step {step}: loss "
                f"{mean['loss']:.3f} acc {mean['accuracy']:.3f} grad {mean['grad_norm']:.2f} "
                f"({rate:.1f} steps/s, ETA {(config.num_train_steps - step) / rate:.0f} s)",
                flush=True,
            )
            window = []
    # Precise BN as the study evaluates: the average of config.precise_bn_batches training
    # batches' statistics; and over PRECISE_BN_CHECK batches, to see the estimate's noise.
    precise_batches = int(config.precise_bn_batches) or 8
    totals, total = {}, None
    for i in range(max(precise_batches, PRECISE_BN_CHECK)):
        chosen = np.random.default_rng((data_seed, 99, i)).choice(len(train_y), batch)
        stats = stats_step(
            state.variables, parallel.host_to_global(normalise(train_x[chosen]), mesh)
        )
        total = stats if total is None else jax.tree.map(jnp.add, total, stats)
        if i + 1 in (precise_batches, PRECISE_BN_CHECK):
            totals[i + 1] = jax.tree.map(lambda t, n=i + 1: t / n, total)
    precise = totals[precise_batches]

    correct = {
        "precise BN": 0,
        f"precise BN x{PRECISE_BN_CHECK}": 0,
        "running BN": 0,
        "batch BN": 0,
    }
    reversed_correct = 0
    eval_batch = config.eval_batch_size
    for start in range(0, len(eval_y) - eval_batch + 1, eval_batch):
        video = jnp.asarray(normalise(eval_x[start : start + eval_batch]))
        labels = eval_y[start : start + eval_batch]
        for name, fn, stats in (
            ("precise BN", predict, precise),
            (f"precise BN x{PRECISE_BN_CHECK}", predict, totals[PRECISE_BN_CHECK]),
            ("running BN", predict, state.batch_stats),
            ("batch BN", predict_batch_stats, state.batch_stats),
        ):
            correct[name] += int((np.argmax(fn(state.params, stats, video), -1) == labels).sum())
        reversed_logits = predict(state.params, precise, video[:, ::-1])
        reversed_correct += int((np.argmax(reversed_logits, -1) == labels).sum())
    evaluated = (len(eval_y) // eval_batch) * eval_batch
    result = {name: count / evaluated for name, count in correct.items()}
    result["reversed"] = reversed_correct / evaluated
    result["train_acc_last"] = history[-1][2]
    result["seconds"] = time.time() - started
    print(
        f"RESULT {model_name} {task} init {init_seed} data {data_seed} {args.set or ''}: "
        + ", ".join(f"{k} {v:.3f}" for k, v in result.items()),
        flush=True,
    )
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("experiments.study_probe", __doc__)
    parser.add_argument(
        "--synthetic_task",
        default="appearance",
        choices=synthetic_render.TASKS,
        help="which synthetic_motion task (--task is predict's classification/detection)",
    )
    arguments.alias(parser, "--task", "--synthetic_task")
    parser.add_argument("--models", default="tiny_s3dg")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--init_seed", type=int, default=None)
    parser.add_argument("--data_seed", type=int, default=None)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--num_frames", type=int, default=None, help="default: the study's")
    parser.add_argument("--stride", type=int, default=None, help="default: the study's")
    parser.add_argument("--crop_size", type=int, default=None, help="default: the study's crop")
    parser.add_argument("--train_clips", type=int, default=3000)
    parser.add_argument("--eval_clips", type=int, default=320)
    parser.add_argument("--log_every", type=int, default=200)
    parser.add_argument(
        "--set", action="append", help="config override key=value, e.g. optim.learning_rate=0.001"
    )
    arguments.alias(parser, "--frames", "--num_frames")
    arguments.alias(parser, "--size", "--crop_size")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from experiments import paper_study

    settings = paper_study.run_settings(args.synthetic_task)
    args.num_frames = args.num_frames or settings["data.num_frames"]
    args.stride = args.stride or settings["data.stride"]
    args.crop_size = args.crop_size or settings["data.crop_size"]
    eval_batch = paper_study.RUN_SETTINGS["eval_batch_size"]
    if args.eval_clips < eval_batch:  # whole evaluation batches only
        raise SystemExit(
            f"--eval_clips={args.eval_clips} is less than one evaluation batch; use at least "
            f"{eval_batch}."
        )
    started = time.time()
    shape = dict(size=args.crop_size, frames=args.num_frames, stride=args.stride)
    data = (
        render_split(args.synthetic_task, args.train_clips, 0, train=True, **shape),
        render_split(args.synthetic_task, args.eval_clips, 1, train=False, **shape),
    )
    print(
        f"rendered {args.train_clips} + {args.eval_clips} {args.synthetic_task} clips of "
        f"{args.num_frames}x{args.crop_size}² in {time.time() - started:.0f} s",
        flush=True,
    )
    results = {}
    for model in args.models.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            init_seed = seed if args.init_seed is None else args.init_seed
            data_seed = seed if args.data_seed is None else args.data_seed
            results[model, seed] = train_probe(
                model, args.synthetic_task, data, args, init_seed, data_seed
            )
    for model in args.models.split(","):
        top1 = [results[m, s]["precise BN"] for m, s in results if m == model]
        print(
            f"SUMMARY {model} {args.synthetic_task}: precise-BN top-1 "
            + " / ".join(f"{100 * t:.1f}" for t in top1)
            + f"% (spread {100 * (max(top1) - min(top1)):.1f} points)",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
