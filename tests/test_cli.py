"""One command-line convention (video_s3d/arguments.py), checked over every entry point.

Entry points are found, not listed: every module under video_s3d/, experiments/ and launch/
with `if __name__ == "__main__"`. Each argparse one is imported and its `build_parser()` walked;
the absl ones (arguments.ABSL_COMMANDS) are read through their absl flags or --help.
"""

from __future__ import annotations

import argparse
import ast
import collections
import importlib
import json
import pathlib
import re
import subprocess
import sys
import tomllib

import pytest

from video_s3d import arguments

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Runs in a separate interpreter with torch and without video_s3d (video_s3d.bench): its flags
# are read from its source.
SOURCE_ONLY = {"video_s3d.bench_torch"}
FLAG = re.compile(r"--[a-z][a-z0-9_]*")


def entry_points() -> list[str]:
    found = []
    for top in ("video_s3d", "experiments", "launch"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if 'if __name__ == "__main__":' in path.read_text(encoding="utf-8"):
                found.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return found


def argparse_entry_points() -> list[str]:
    return [m for m in entry_points() if m not in arguments.ABSL_COMMANDS and m not in SOURCE_ONLY]


def source_flags(module: str) -> list[str]:
    """The "--name" literals passed to add_argument in a module's source."""
    path = ROOT / (module.replace(".", "/") + ".py")
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            names += [a.value for a in node.args if isinstance(a, ast.Constant)]
    return names


def absl_flags() -> dict[str, list[str]]:
    """The flags of the absl commands: main.py's key flags; recipe_card's defined in __main__."""
    from absl import flags

    from video_s3d import main

    names = {"video_s3d.main": [f"--{f.name}" for f in flags.FLAGS.get_key_flags_for_module(main)]}
    recipe_card = (ROOT / "video_s3d/recipe_card.py").read_text(encoding="utf-8")
    names["video_s3d.recipe_card"] = [
        f"--{n}" for n in re.findall(r'DEFINE_\w+\(\s*"(\w+)"', recipe_card)
    ]
    return names


@pytest.fixture(scope="module")
def parsers() -> dict[str, argparse.ArgumentParser]:
    return {m: importlib.import_module(m).build_parser() for m in argparse_entry_points()}


def test_entry_points_are_found_and_every_console_script_is_one():
    found = set(entry_points())
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert {"video_s3d.predict", "video_s3d.data.build", "launch.local"} <= found
    assert {target.split(":")[0] for target in scripts.values()} <= found
    assert set(arguments.ABSL_COMMANDS) <= found


def test_every_argparse_entry_point_builds_its_parser(parsers):
    for module, parser in parsers.items():
        assert isinstance(parser, argparse.ArgumentParser), module
        visible, _ = arguments.flag_names(parser)
        assert visible, f"{module}: build_parser() defines no flags"


def test_flag_names_follow_one_vocabulary(parsers):
    uses = collections.defaultdict(set)
    for module, parser in parsers.items():
        visible, aliases = arguments.flag_names(parser)
        for name in visible:
            uses[name].add(module)
        for old, new in aliases.items():
            # An alias stands for a flag of the same command; a retired spelling for its
            # vocabulary name.
            assert new in visible, f"{module}: alias {old} -> {new}, which it does not define"
            assert arguments.RETIRED.get(old[2:], new[2:]) == new[2:], (module, old, new)
    for module in SOURCE_ONLY:
        for name in source_flags(module):
            uses[name].add(module)
    for module, names in absl_flags().items():
        assert names, module
        for name in names:
            uses[name].add(module)
    for name, modules in sorted(uses.items()):
        assert FLAG.fullmatch(name), f"{name} ({sorted(modules)}): flags are --snake_case"
        assert name[2:] not in arguments.RETIRED, (
            f"{name} is retired: use --{arguments.RETIRED[name[2:]]} ({sorted(modules)})"
        )
        if len(modules) > 1:
            assert name[2:] in arguments.VOCABULARY, (
                f"{name} is used by {sorted(modules)}: give its one meaning in "
                "video_s3d/arguments.py VOCABULARY (or rename it where it means something else)"
            )
    # The run a command reads or writes is --workdir everywhere, absl's main included.
    assert {"video_s3d.main", "video_s3d.predict", "video_s3d.import_weights"} <= uses["--workdir"]
    assert {"video_s3d.main", "video_s3d.predict", "video_s3d.export"} <= uses["--step"]


def test_every_alias_does_what_its_flag_does_and_says_the_new_name(parsers, capsys):
    checked = 0
    for module, parser in parsers.items():
        by_option = {o: a for a in parser._actions for o in a.option_strings}
        for old, new in arguments.flag_names(parser)[1].items():
            target = by_option[new]
            value = (
                []
                if target.nargs == 0
                else ["12"]
                if target.nargs in ("+", "*")
                else str(target.choices[0] if target.choices else 12)
            )
            via_old, via_new = argparse.Namespace(), argparse.Namespace()
            by_option[old](parser, via_old, value, old)
            assert capsys.readouterr().err.strip().splitlines() == [
                f"note: {old} is now {new} (same meaning); the old name still works."
            ]
            target(parser, via_new, value, new)
            assert vars(via_old) == vars(via_new) != {}, (module, old)
            checked += 1
    assert checked >= 20


def test_old_spellings_parse_like_the_new_ones(capsys):
    from experiments import transfer
    from video_s3d import features, import_weights, predict

    new = predict.parse_args(["--workdir=runs/a", "--video=v.mp4", "--step=best"])
    assert predict.parse_args(["--checkpoint=runs/a", "--video=v.mp4", "--step=best"]) == new
    assert capsys.readouterr().err.count("\n") == 1
    old = features.parse_args(["--checkpoint=r", "--videos=v/", "--out=f.npz"])
    assert (old.workdir, old.video) == ("r", "v/")
    old = import_weights.parse_args(["--source=torchvision_s3d", "--path=p.pth", "--out=runs/i"])
    assert old.workdir == "runs/i"
    old = transfer.build_parser().parse_args(["--average", "a/*", "b/*"])
    assert old.workdirs == ["a/*", "b/*"]


def test_a_required_flag_names_the_new_spelling_when_missing(capsys):
    from video_s3d import predict

    with pytest.raises(SystemExit) as exit_info:
        predict.parse_args(["--video=v.mp4"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: --workdir" in err
    assert "usage: python -m video_s3d.predict [-h] --workdir WORKDIR" in err


HELP_SCRIPT = r"""
import contextlib, importlib, io, json, sys
results = {}
for name, target in json.loads(sys.argv[1]).items():
    module, function = target.split(":")
    sys.argv = [name, "--help"]
    out, code = io.StringIO(), None
    with contextlib.redirect_stdout(out):
        try:
            getattr(importlib.import_module(module), function)()
        except SystemExit as stop:
            code = stop.code
    results[name] = [code, out.getvalue()]
print(json.dumps(results))
"""


def test_every_console_script_help_works(parsers):
    """One interpreter runs each console script's function with --help."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    done = subprocess.run(
        [sys.executable, "-c", HELP_SCRIPT, json.dumps(scripts)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(results) == set(scripts)
    for name, (code, text) in results.items():
        module = scripts[name].split(":")[0]
        if module in arguments.ABSL_COMMANDS:
            # absl's --help exits with status 1 after printing the flags.
            assert code == 1 and "--workdir" in text and "--config" in text, (name, text)
            continue
        assert code == 0 and text.startswith("usage: "), (name, code, text[:500])
        shown = [
            option
            for action in parsers[module]._actions
            if action.help != argparse.SUPPRESS
            for option in action.option_strings
        ]
        for flag in shown:
            assert flag in text, (name, flag)
        usage = text.split("\n\n")[0]
        for action in parsers[module]._actions:
            if action.required:  # shown as required, also when an alias could stand in for it
                assert f"[{action.option_strings[-1]}" not in usage, (name, usage)
        for old in arguments.flag_names(parsers[module])[1]:
            assert old not in re.findall(r"--\w+", text), f"{name} --help shows alias {old}"
