"""One command-line convention for every entry point (README "Command-line conventions").

Library: argparse, from the standard library, for every command but two. `video_s3d.main`
(training, `--mode=eval`) and `video_s3d.recipe_card` parse an experiment config with
ml_collections' `config_flags` (`--config=experiments/x.py:model=s3dg --config.optim.x=0.1`:
any nested field overridden, typed like its default, tuples and locked configs included). That
parser is an absl flag, and rewriting it on argparse would hand-roll what ml_collections already
does, so those two stay on absl (with `config_cli.parse_flags` for one-sentence errors). argparse
for the rest: no process-wide flag registry (a test or a notebook imports several commands
side by side), `--help` shows only the command's own flags, and `parser.error` gives the usage
line plus one sentence, exit status 2.

Every argparse entry point (a module with `if __name__ == "__main__"`) defines
`build_parser() -> argparse.ArgumentParser`; tests/test_cli.py imports each one and checks it
against the rules below.

Spelling: `--snake_case=value` (`--name value` works too); a yes/no option is a bare switch
(`--json`). A flag name means one thing everywhere: VOCABULARY lists every name that more than
one command uses, with that meaning. RETIRED maps the spellings we replaced to their new
name; a command that used one keeps it as a hidden alias (`alias`) that still works and prints
one line naming the new flag, so old commands, scripts and launchers keep running.

Shared arguments come from here so they read the same everywhere: `add_run` (--workdir,
--step: the run a command reads), `add_video` (--video) and `add_views` (--num_clips,
--num_crops). Add a command-specific flag with `parser.add_argument` as usual.
"""

from __future__ import annotations

import argparse
import sys

# The two commands on absl, for ml_collections' config_flags (see above).
ABSL_COMMANDS = ("video_s3d.main", "video_s3d.recipe_card")

# Every flag name that more than one entry point uses, and its one meaning.
VOCABULARY = {
    "workdir": "a run folder (config.json, checkpoints/) the command reads or writes; for a "
    "command that starts several runs, the folder holding one run folder per run",
    "workdirs": "several run folders to read: comma-separated folders or glob patterns",
    "step": "which checkpoint of --workdir: best, latest or a step number",
    "config": "experiment config file, experiments/<name>.py[:arguments]",
    "out": "a file or folder the command writes that is not a run",
    "video": "video file, folder (searched recursively) or glob pattern to read",
    "dataset": "TFDS dataset name[/config], e.g. synthetic_motion/motion",
    "synthetic_task": "which synthetic_motion task's clips to render in memory, e.g. flash_order",
    "data_dir": "TFDS data folder (default ~/tensorflow_datasets)",
    "model": "one model name (video_s3d.models.names())",
    "models": "comma-separated model names",
    "num_frames": "frames per clip (T)",
    "crop_size": "side of the square crop the model sees (H = W)",
    "short_side": "frame height the video is decoded or rendered at",
    "stride": "frame stride inside a clip",
    "batch_size": "clips (or frame pairs) per step",
    "num_classes": "classifier outputs",
    "num_clips": "clips sampled per video (evaluation views)",
    "num_crops": "crops per clip (evaluation views)",
    "dtype": "compute dtype: float32, bfloat16 or float16",
    "steps": "steps to run: training steps, or timed steps of a benchmark",
    "seed": "random seed",
    "seeds": "comma-separated random seeds, one run each (a count of seeds is --num_seeds)",
    "seconds": "measuring time per measurement, in seconds (a video's length is --video_seconds)",
    "rounds": "alternating measurement rounds (the median is reported)",
    "threads": "CPU threads the computation may use",
    "cpu_devices": "run on the CPU as this many simulated JAX devices",
    "tiny": "use (or also list) the tiny_ models: a CPU smoke run",
    "json": "print one JSON object per line on stdout instead of a table",
    "dry_run": "print the commands instead of running them",
    "sweep": "a sweep file, experiments/sweeps/<name>.py[:arguments]",
    "only": "regular expression: only the runs whose name matches",
    "parallel": "runs trained at once on this machine, each pinned to its own share of the CPU "
    "cores",
    "flow_workdir": "the flow run of a two-stream pair (its RGB run is --workdir or --rgb_workdir)",
    "split": "dataset split to read, e.g. train or validation",
    "fusion": "two-stream fusion: logits (mean of the streams' logits) or softmax (of scores)",
}

# Spellings replaced by a VOCABULARY name (kept as hidden aliases where they were used).
RETIRED = {
    "checkpoint": "workdir",
    "videos": "video",
    "frames": "num_frames",
    "size": "crop_size",
    "batch": "batch_size",
    "output": "out",
}


class _Alias(argparse.Action):
    """An old spelling: one line on stderr naming the new flag, then does what that flag does."""

    def __init__(self, option_strings, dest, target: argparse.Action, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.target = target

    def __call__(self, parser, namespace, values, option_string=None):
        new = self.target.option_strings[-1]
        print(
            f"note: {option_string} is now {new} (same meaning); the old name still works.",
            file=sys.stderr,
        )
        self.target(parser, namespace, values, new)


class Parser(argparse.ArgumentParser):
    """argparse with `python -m <module>` usage, the docstring kept as written, and aliases."""

    def __init__(self, module: str, description: str | None, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(prog=f"python -m {module}", description=description, **kwargs)
        self.required_flags: list[argparse.Action] = []

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        # argparse would refuse a required flag given by its alias alone: while parsing, such a
        # flag is optional and checked after (so --help and errors still show it required).
        relaxed = [a for a in self.required_flags if self._alias_given(a, args)]
        for action in relaxed:
            action.required = False
        try:
            namespace, rest = super().parse_known_args(args, namespace)
        finally:
            for action in relaxed:
                action.required = True
        missing = [a.option_strings[-1] for a in relaxed if getattr(namespace, a.dest) is None]
        if missing:
            self.error(f"the following arguments are required: {', '.join(missing)}")
        return namespace, rest

    def _alias_given(self, target: argparse.Action, args: list[str]) -> bool:
        old = [
            option
            for action in self._actions
            if isinstance(action, _Alias) and action.target is target
            for option in action.option_strings
        ]
        return any(arg.split("=", 1)[0] in old for arg in args if arg.startswith("--"))


def parser(module: str, description: str | None = None, **kwargs) -> Parser:
    """The parser an entry point starts from (`module`: what follows `python -m`)."""
    return Parser(module, description, **kwargs)


def alias(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Keeps `old` (e.g. "--checkpoint") working as a hidden spelling of the flag `new`."""
    target = next(a for a in parser._actions if new in a.option_strings)
    parser.add_argument(
        old,
        action=_Alias,
        target=target,
        dest=target.dest,
        nargs=target.nargs,
        type=target.type,
        choices=target.choices,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )


def required(parser: Parser, action: argparse.Action) -> argparse.Action:
    """Marks `action` required in a way its alias (added before or after) may stand in for."""
    action.required = True
    parser.required_flags.append(action)
    return action


def add_run(parser: Parser, *, old_name: str | None = "--checkpoint") -> None:
    """--workdir (required) and --step: the run a command reads."""
    required(
        parser,
        parser.add_argument(
            "--workdir",
            default=None,
            help="the run: a training or import_weights workdir, its checkpoints/ folder, "
            "or checkpoints/<step>",
        ),
    )
    parser.add_argument(
        "--step",
        default=None,
        help="best (default: best validation accuracy, else the latest), latest, or a step number",
    )
    if old_name:
        alias(parser, old_name, "--workdir")


def add_video(parser: Parser, *, old_name: str | None = None) -> None:
    """--video (required): the videos a command reads."""
    required(
        parser,
        parser.add_argument(
            "--video", default=None, help="video file, folder (searched recursively) or glob"
        ),
    )
    if old_name:
        alias(parser, old_name, "--video")


def add_views(parser: Parser) -> None:
    """--num_clips, --num_crops: the evaluation views sampled from each video."""
    parser.add_argument(
        "--num_clips",
        type=int,
        default=None,
        help="clips per video (default: the run's config.data.eval_num_clips)",
    )
    parser.add_argument(
        "--num_crops",
        type=int,
        default=None,
        choices=(1, 3),
        help="crops per clip (default: config.data.eval_num_crops)",
    )


def flag_names(parser: argparse.ArgumentParser) -> tuple[dict[str, str], dict[str, str]]:
    """({visible flag: dest}, {alias: the flag it stands for}) of a parser, without -h/--help."""
    visible, aliases = {}, {}
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, _Alias):
            for option in action.option_strings:
                aliases[option] = action.target.option_strings[-1]
        elif action.option_strings:
            for option in action.option_strings:
                visible[option] = action.dest
    return visible, aliases
