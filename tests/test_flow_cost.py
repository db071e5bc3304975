"""video_s3d.flow.cost: TV-L1's flops per frame pair, each loop body counted by XLA times its
bound."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest

from video_s3d import cost
from video_s3d.flow import TVL1Params, pyramid_shapes, tvl1_flow
from video_s3d.flow import cost as flow_cost

# Small settings keep the lowering quick; the structure (pyramid, warps, median, inner loop)
# is the full one.
SMALL = TVL1Params(nscales=3, warps=2, outer_iterations=4)


def _whole_program_flops(height, width, params):
    pair = jax.ShapeDtypeStruct((1, height, width), jnp.float32)
    return cost.xla_flops(lambda a, b: tvl1_flow(a, b, params), pair, pair)


@pytest.mark.parametrize(
    "params", [SMALL, dataclasses.replace(SMALL, median_filtering=1, nscales=1)]
)
def test_every_body_counted_once_is_xlas_count_of_the_whole_program(params):
    """XLA counts each loop body once: the sum of our pieces, each once, must be that count
    (up to the loop conditions, a few flops a level), or a part of the program is missing."""
    height, width = 32, 40
    pair = flow_cost.pair_cost(height, width, params)
    levels = len(pyramid_shapes(height, width, params))
    whole = _whole_program_flops(height, width, params)
    assert abs(whole - pair.bodies_once_flops) <= 20 * levels, (whole, pair.bodies_once_flops)
    # Counted at the bounds, the iterations dominate.
    assert pair.worst_case_flops > 10 * pair.bodies_once_flops
    assert 0.5 < pair.inner_flops / pair.worst_case_flops < 1.0


def test_the_worst_case_grows_with_each_iteration_bound():
    base = flow_cost.pair_cost(32, 32, SMALL)
    more_inner = flow_cost.pair_cost(32, 32, dataclasses.replace(SMALL, inner_iterations=60))
    # Twice the inner bound: twice the inner steps, nothing else changes.
    assert more_inner.inner_flops == pytest.approx(2 * base.inner_flops, rel=1e-9)
    assert more_inner.worst_case_flops - base.worst_case_flops == pytest.approx(
        base.inner_flops, rel=1e-9
    )
    more_warps = flow_cost.pair_cost(32, 32, dataclasses.replace(SMALL, warps=4))
    assert more_warps.worst_case_flops > 1.9 * base.worst_case_flops
    more_outer = flow_cost.pair_cost(32, 32, dataclasses.replace(SMALL, outer_iterations=8))
    assert more_outer.worst_case_flops > 1.9 * base.worst_case_flops


def test_the_cost_is_per_pixel_and_per_flow_field():
    one_level = dataclasses.replace(SMALL, nscales=1)
    small, large = (flow_cost.pair_gmacs(s, s, one_level) for s in (32, 64))
    assert large == pytest.approx(4 * small, rel=0.05)  # per pixel, up to the borders
    assert flow_cost.clip_gmacs(8, 32, one_level) == pytest.approx(8 * small)
    assert (
        flow_cost.pair_gmacs(32, 32, one_level)
        == flow_cost.pair_cost(32, 32, one_level).worst_case_flops / 2e9
    )
