"""The recipe card: a run's resolved recipe beside the paper's, every difference flagged.

    python -m video_s3d.recipe_card --config=experiments/kinetics400.py:model=s3dg,batch=256

prints it and trains nothing; `train.train_and_evaluate` prints the same card at the start of
a run. The paper's values and their sources travel in the config itself (`config.recipe`,
written by experiments/recipes.py), so a run's config.json holds both sides.

One scaling rule for a global batch B other than the paper's 336 (not published; our choice,
the linear scaling rule of Goyal et al. 2017): learning rate x B/336, and every step count
(run length, decay boundaries) x 336/B, so the run sees as many examples as the paper's and
decays at the same epochs. The card shows, for those fields, the value the rule gives at this
run's batch: a field that differs from the paper only by the rule is marked `scaled`, any other
difference `DIFFERS`.
"""

from __future__ import annotations

from typing import Any, Sequence

import ml_collections

from video_s3d.errors import UserError

# Fields that change with the global batch under the scaling rule.
BATCH_DEPENDENT = ("batch_size", "optim.learning_rate", "num_train_steps", "optim.step_boundaries")


def scale_to_batch(
    batch_size: int,
    reference_batch: int,
    *,
    learning_rate: float,
    num_train_steps: int,
    step_boundaries: Sequence[int],
) -> dict[str, Any]:
    """The scaling rule: lr linear in the global batch, step counts in examples seen."""
    if batch_size <= 0:
        raise UserError(
            f"batch={batch_size} must be a positive global batch size, e.g. "
            f"batch={reference_batch}."
        )
    ratio = reference_batch / batch_size
    return {
        "batch_size": batch_size,
        "optim.learning_rate": learning_rate * batch_size / reference_batch,
        "num_train_steps": int(round(num_train_steps * ratio)),
        "optim.step_boundaries": tuple(int(round(b * ratio)) for b in step_boundaries),
    }


def _get(config: ml_collections.ConfigDict, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if part not in node:
            return "<unset>"
        node = node[part]
    return node


def _same(ours: Any, paper: Any) -> bool:
    if isinstance(ours, (list, tuple)) and not isinstance(paper, (list, tuple)):
        ours = ours[0] if ours else None  # e.g. eval_protocols: the first is the headline
    if isinstance(ours, (list, tuple)) and isinstance(paper, (list, tuple)):
        return len(ours) == len(paper) and all(_same(a, b) for a, b in zip(ours, paper))
    if isinstance(ours, float) or isinstance(paper, float):
        try:
            return abs(float(ours) - float(paper)) <= 1e-9 * max(1.0, abs(float(paper)))
        except (TypeError, ValueError):
            return False
    return ours == paper


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    return str(value)


def card_rows(config: ml_collections.ConfigDict) -> list[dict[str, Any]]:
    """One dict per recipe field: field, ours, paper, rule (None if batch-independent),
    status ('same' | 'scaled' | 'DIFFERS' | 'not published'), source."""
    recipe = config.recipe
    paper = {field: value for field, value, _ in recipe.rows}
    rule = None
    if all(f in paper for f in BATCH_DEPENDENT):
        rule = scale_to_batch(
            int(config.batch_size),
            int(recipe.reference_batch_size),
            learning_rate=float(paper["optim.learning_rate"]),
            num_train_steps=int(paper["num_train_steps"]),
            step_boundaries=paper["optim.step_boundaries"],
        )
    rows = []
    for field, paper_value, source in recipe.rows:
        ours = _get(config, field)
        by_rule = rule.get(field) if rule and field in BATCH_DEPENDENT else None
        if paper_value is None:
            status = "not published"
        elif _same(ours, paper_value):
            status = "same"
        elif by_rule is not None and _same(ours, by_rule):
            status = "scaled"
        else:
            status = "DIFFERS"
        rows.append(
            {
                "field": field,
                "ours": ours,
                "paper": paper_value,
                "rule": by_rule,
                "status": status,
                "source": source,
            }
        )
    init_status = "same" if recipe.init == recipe.paper_init else "DIFFERS"
    rows.append(
        {
            "field": "init",
            "ours": recipe.init + (f" ({config.init_from})" if config.get("init_from") else ""),
            "paper": recipe.paper_init,
            "rule": None,
            "status": init_status,
            "source": recipe.paper_init_source,
        }
    )
    return rows


def format_card(config: ml_collections.ConfigDict) -> str:
    """The card as text (a note instead when the config carries no paper recipe)."""
    if "recipe" not in config:
        return (
            "recipe card: this config follows no paper recipe (no config.recipe); see "
            "experiments/kinetics400.py for one that does."
        )
    recipe = config.recipe
    rows = card_rows(config)
    batch = int(config.batch_size)
    reference = int(recipe.reference_batch_size)
    rule_header = f"rule @ batch {batch}"
    header = (
        f"{'field':<24} {'this run':<18} {f'paper @ {reference}':<16} "
        f"{rule_header:<18} {'':<8} source"
    )
    lines = [
        f"recipe card: {recipe.name}",
        f"scaling rule (not published; our choice): {recipe.scaling_rule}",
        header,
        "-" * len(header),
    ]
    for row in rows:
        flag = {"same": "", "scaled": "scaled", "DIFFERS": "DIFFERS", "not published": "n/p"}[
            row["status"]
        ]
        rule = _show(row["rule"]) if row["rule"] is not None else ""
        paper = _show(row["paper"]) if row["paper"] is not None else "-"
        lines.append(
            f"{row['field']:<24} {_show(row['ours']):<18} {paper:<16} {rule:<18} "
            f"{flag:<8} {row['source']}"
        )
    scaled = [r["field"] for r in rows if r["status"] == "scaled"]
    differs = [r["field"] for r in rows if r["status"] == "DIFFERS"]
    if batch != reference:
        lines.append(
            f"global batch {batch} is not the paper's {reference}: lr, steps and "
            f"boundaries follow the scaling rule ({len(scaled)} fields scaled)."
        )
    lines.append(f"targets: {recipe.targets or 'none published'}")
    lines += [f"  {abbreviation}: {meaning}" for abbreviation, meaning in recipe.get("legend", ())]
    lines.append(
        f"{len(differs)} difference(s) from the paper beyond the scaling rule"
        + (f": {', '.join(differs)}" if differs else "")
    )
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    del argv
    print(format_card(_CONFIG.value))


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    from video_s3d import config_cli

    _CONFIG = config_flags.DEFINE_config_file(
        "config", None, "Experiment config, e.g. experiments/kinetics400.py:model=s3dg,batch=256."
    )
    flags.mark_flags_as_required(["config"])
    app.run(main, flags_parser=config_cli.parse_flags)
