"""Imported arrays -> a model's {'params', 'batch_stats'} tree, checked leaf by leaf.

An importer produces {('params' | 'batch_stats', ...path): array}; this module checks that
the arrays fill the model's variables exactly (no leaf missing, none left over, every shape
equal) so that a wrong name mapping fails loudly instead of training from a half-random init.
"""

from __future__ import annotations

from typing import Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np

from video_s3d.errors import UserError


def _first_few(names) -> str:
    names = list(names)
    return f"{', '.join(names[:3])}{', ...' if len(names) > 3 else ''}"


def check_all_used(
    missing, unused, *, noun: str, architecture: str, what_it_is: str, what_to_pass: str
) -> None:
    """Fails in one sentence if a source file lacks entries the mapping needs or has extra ones.

    E.g. "This is not a torchvision S3D state dict: it lacks 2 tensors it needs (a, b) and has
    1 tensors S3D does not (c); pass ...".
    """
    parts = []
    if missing:
        parts.append(f"lacks {len(missing)} {noun} it needs ({_first_few(missing)})")
    if unused:
        parts.append(
            f"has {len(unused)} {noun} {architecture} does not ({_first_few(sorted(unused))})"
        )
    if parts:
        raise UserError(f"This is not {what_it_is}: it {' and '.join(parts)}; {what_to_pass}.")


def abstract_variables(model, frames: int, pixels: int, channels: int = 3) -> dict:
    """Shapes and dtypes of `model`'s variables (no compute: jax.eval_shape) on `channels`-channel
    input (2: a flow network)."""
    x = jax.ShapeDtypeStruct((1, frames, pixels, pixels, channels), jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


def fill(flat: Mapping[tuple[str, ...], np.ndarray], target: Mapping, source_name: str) -> dict:
    """`target`'s tree with every leaf taken from `flat` (a flattened-path dict).

    Fails in one sentence naming the first few missing, extra or mis-shaped leaves.
    """
    wanted = flax.traverse_util.flatten_dict(flax.core.unfreeze(target))
    missing = sorted("/".join(p) for p in set(wanted) - set(flat))
    extra = sorted("/".join(p) for p in set(flat) - set(wanted))
    wrong = sorted(
        f"{'/'.join(p)} {tuple(flat[p].shape)} vs {tuple(wanted[p].shape)}"
        for p in set(flat) & set(wanted)
        if tuple(flat[p].shape) != tuple(wanted[p].shape)
    )
    problems = []
    for label, items in (
        ("missing", missing),
        ("without a place in the model", extra),
        ("with the wrong shape (file vs model)", wrong),
    ):
        if items:
            problems.append(
                f"{len(items)} {label} ({'; '.join(items[:3])}{'; ...' if len(items) > 3 else ''})"
            )
    if problems:
        raise UserError(
            f"The {source_name} weights do not fit the model: {', '.join(problems)}; "
            "check that the file and --model are the same architecture and width."
        )
    return flax.traverse_util.unflatten_dict(
        {p: np.asarray(flat[p], dtype=wanted[p].dtype) for p in wanted}
    )
