"""Config files on the command line: argument strings and clear override errors.

`--config=experiments/x.py:model=tiny_i2d,runlocal` passes the text after ':' to
`get_config(arg)`; `parse_arg` turns it into a ConfigDict with typed defaults.
`--config.optim.learning_rate=0.1` overrides a field. ml_collections rejects an unknown
field with a bare AttributeError traceback; `parse_flags` turns that (and a wrongly typed
value) into one sentence listing the valid fields at that level.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

import ml_collections
from absl import flags

from video_s3d.errors import UserError, UserFileError

# The spellings a boolean config argument accepts (anything else is refused, not read as False).
TRUE_WORDS = ("1", "true", "yes", "y", "on")
FALSE_WORDS = ("0", "false", "no", "n", "off")


def parse_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
    """'model=tiny_i2d,runlocal' -> {model: 'tiny_i2d', runlocal: True}, typed like the defaults.

    Unknown keys and unreadable values (`runlocal=ture`) are rejected in one sentence, so a
    typo in the argument string never silently runs the default experiment.
    """
    result = ml_collections.ConfigDict(dict(defaults))
    for item in filter(None, (arg or "").split(",")):
        key, has_value, value = item.partition("=")
        key = key.strip()
        if key not in defaults:
            raise UserError(
                f"Unknown config argument {key!r} in {arg!r}; valid arguments are "
                f"{', '.join(sorted(defaults))}."
            )
        default = defaults[key]
        if not has_value:
            if not isinstance(default, bool):
                raise UserError(f"Config argument {key!r} needs a value ({key}=...).")
            result[key] = True
        elif isinstance(default, bool):
            word = value.strip().lower()
            if word not in TRUE_WORDS + FALSE_WORDS:
                raise UserError(
                    f"Config argument {key}={value!r} in {arg!r} is not a yes/no value; "
                    f"write {key}=true or {key}=false (or just {key})."
                )
            result[key] = word in TRUE_WORDS
        elif isinstance(default, (int, float)):
            try:
                result[key] = type(default)(value)
            except ValueError:
                kind = "an integer" if isinstance(default, int) else "a number"
                raise UserError(
                    f"Config argument {key}={value!r} in {arg!r} is not {kind}; "
                    f"write e.g. {key}={default}."
                ) from None
        else:
            result[key] = value
    return result


def load_config_file(spec: str) -> ml_collections.ConfigDict:
    """Loads 'path.py[:arg]' the way config_flags does (used to explain override errors)."""
    path, _, arg = spec.partition(":")
    if not os.path.exists(path):
        raise UserFileError(
            f"Config file {path!r} does not exist; pass --config=experiments/<name>.py."
        )
    module_spec = importlib.util.spec_from_file_location("_video_s3d_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


def override_error(argv: list[str]) -> str | None:
    """The sentence for the first `--config.<field>` that names no field, else None."""
    spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
    if spec is None:
        return None
    config = load_config_file(spec)
    for arg in argv:
        if not arg.startswith("--config."):
            continue
        dotted = arg[len("--config.") :].split("=", 1)[0]
        node, walked = config, []
        for part in dotted.split("."):
            if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
                where = "config" + "".join("." + w for w in walked)
                valid = (
                    ", ".join(sorted(node.keys()))
                    if isinstance(node, (ml_collections.ConfigDict, dict))
                    else f"none ({where} is a value, not a group)"
                )
                return (
                    f"Unknown config field '{dotted}' in {arg!r}; valid fields of {where} "
                    f"are: {valid}."
                )
            node = node[part]
            walked.append(part)
    return None


def config_file_error(argv: list[str]) -> str | None:
    """The sentence for a `--config=` file that is missing or does not parse, else None.

    ml_collections loads the file lazily, so without this check the mistake surfaces as a
    chained traceback at the first read of the config.
    """
    spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
    if spec is None:
        return None
    path = spec.partition(":")[0]
    if not os.path.isfile(path):
        return (
            f"Config file {path!r} does not exist; pass --config=experiments/<name>.py "
            f"(a path relative to {os.getcwd()})."
        )
    try:
        with open(path, encoding="utf-8") as f:
            compile(f.read(), path, "exec")
    except (SyntaxError, ValueError, UnicodeDecodeError) as e:
        where = f" line {e.lineno}" if getattr(e, "lineno", None) else ""
        return (
            f"Config file {path}{where} is not valid Python ({e.__class__.__name__}: "
            f"{getattr(e, 'msg', e)}); fix the file."
        )
    return None


def parse_flags(argv: list[str]) -> list[str]:
    """absl flags parser for app.run: one clear sentence instead of a traceback."""
    message = config_file_error(argv)
    if message:
        sys.exit(f"Error: {message}")
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        text = str(e)
        if "Traceback (most recent call last)" in text:
            # get_config raised (e.g. a bad argument string): its own sentence, not the traceback.
            last = [line for line in text.splitlines() if line.strip()][-1]
            sys.exit(f"Error: {last.split(': ', 1)[-1]}")
        sys.exit(f"Error: {text}\nPass --helpfull to see the flags.")
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        try:
            message = override_error(argv)
        except Exception:  # noqa: BLE001 -- fall back to the original error below
            message = None
        sys.exit(f"Error: {message or e}")
