"""Entry point: `python -m video_s3d.main --config=experiments/x.py[:args] --workdir=DIR [--mode=eval]`.

Any config field can be overridden, e.g. `--config.num_train_steps=3`.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from video_s3d import config_cli, runtime

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    None,
    "Experiment config file, e.g. experiments/synthetic_motion.py:model=tiny_i2d.",
    lock_config=True,
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder: checkpoints, metrics, result.json.")
_MODE = flags.DEFINE_enum(
    "mode",
    "train",
    ["train", "eval"],
    "train (resumes from workdir) or eval (a checkpoint in workdir: --step).",
)
_STEP = flags.DEFINE_string(
    "step",
    "latest",
    "--mode=eval: which checkpoint, best (validation accuracy), latest or "
    "a step number. (To pick init_from's, append @best|@latest|@N to it.)",
)
_MULTIHOST = flags.DEFINE_bool(
    "multihost",
    False,
    "Call jax.distributed.initialize() with cluster auto-detection "
    "(TPU pod, SLURM); same as --config.distributed=true.",
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments {argv[1:]}; flags look like --config.x=value.")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(
            logging.WARNING
        )  # orbax logs every save at INFO; --verbosity=0 shows it
        runtime.quiet_library_notices()
    runtime.hide_accelerators_from_tf()
    runtime.maybe_initialize_distributed(_CONFIG.value, force=_MULTIHOST.value)
    from video_s3d import evaluate, train  # after distributed init: they query devices

    try:
        if _MODE.value == "train":
            train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
        elif _CONFIG.value.get("task", "classification") == "detection":
            from video_s3d.detection import trainer

            trainer.evaluate_checkpoint(_CONFIG.value, _WORKDIR.value, step=_STEP.value)
        else:
            evaluate.evaluate(_CONFIG.value, _WORKDIR.value, step=_STEP.value)
    except train.USER_ERRORS as e:
        # A mistake the user can fix: the sentence, not a traceback (--verbosity=0 adds it).
        logging.info("details", exc_info=True)
        sys.exit(f"Error: {e}")
    except KeyboardInterrupt:
        # Once training runs, Ctrl-C saves and stops like SIGTERM (checkpointing.PreemptionWatcher);
        # this is Ctrl-C before the first step, or a second one: nothing new to save.
        sys.exit("Interrupted; nothing since the last checkpoint was saved.")


def cli() -> None:
    """The console script `video-s3d-train` (pyproject.toml).

    absl's --help lists the flags and docstring of the `__main__` module, which for a console
    script is the generated wrapper: point both at this module's.
    """
    for flag in flags.FLAGS.get_key_flags_for_module(__name__):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    sys.modules["__main__"].__doc__ = __doc__
    app.run(main, flags_parser=config_cli.parse_flags)


if __name__ == "__main__":
    cli()
