"""experiments.order_cues: which cues a trained run uses to order a clip and its reversal."""

import inference_testing
import numpy as np
import pytest

from experiments import order_cues
from video_s3d.data.builders import synthetic_render


def test_still_clips_play_the_same_forwards_and_backwards_around_each_flash():
    """Held still, a far_flash_order clip's flashes are its only change over time, each one
    time-symmetric: frames mirrored about a flash's centre are equal."""
    scene = synthetic_render.make_far_flash_order_scene(0, np.random.default_rng(3), 69, 24)
    as_drawn = synthetic_render.render_scene(scene, 24)
    clip = synthetic_render.render_scene(order_cues.still(scene), 24)
    centre = int(np.argmax(scene.objects[-1][1][:, 4]))  # the second flash's first full frame
    centre += 1  # its middle (three full frames)
    np.testing.assert_array_equal(clip[centre - 5 : centre], clip[centre + 5 : centre : -1])
    # Not vacuous: the clip as drawn drifts, so the same frames differ there.
    assert as_drawn[centre - 5 : centre].tobytes() != as_drawn[centre + 5 : centre : -1].tobytes()
    no_bar = order_cues.without_bar(scene)
    bar = synthetic_render.SHAPES.index(synthetic_render.ORDER_DISTRACTOR)
    assert all(look.shape != bar for look, _ in no_bar.objects)


def test_scoring_a_pair_and_a_model_blind_to_time_direction():
    """A pair counts 1 when the clip scores its class over its partner and the reversal the
    opposite, 0 when either is wrong, 0.5 for a tie; logits that are the same for a clip and
    its reversal score one half in every variant."""
    forward, backward = np.zeros(10), np.zeros(10)
    forward[4], backward[5] = 1.0, 1.0
    assert order_cues.ordered_correctly(forward, backward, 4) == 1.0
    assert order_cues.ordered_correctly(backward, forward, 4) == 0.0
    assert order_cues.ordered_correctly(forward, forward, 4) == 0.0
    assert order_cues.ordered_correctly(forward, np.zeros(10), 4) == 0.5

    def blind(clip):
        frames = clip.astype(np.float64)
        return np.full(10, (frames + frames[::-1]).mean())

    table = order_cues.cue_table(blind, "far_flash_order", 10, 69, 16)
    assert table == {name: 0.5 for name in order_cues.VARIANTS}
    with pytest.raises(KeyError):  # no scenes, no reversal pairs to render
        order_cues.cue_table(blind, "motion", 2, 16, 16)


def test_the_command_line_refuses_a_run_of_an_unordered_task_and_reports_the_others(
    tmp_path_factory, capsys
):
    workdir = inference_testing.trained_workdir(str(tmp_path_factory.getbasetemp()))
    assert order_cues.main([f"--workdir={workdir}", "--fresh_clips=2"]) == 2
    assert "give a run of an ordered synthetic_motion task" in capsys.readouterr().err
    argv = [f"--workdir={workdir}", "--fresh_clips=2", "--synthetic_task=flash_order"]
    assert order_cues.main(argv) == 0
    printed = capsys.readouterr().out
    for name in order_cues.VARIANTS:
        share = float(printed.split(f"| {name} | ")[1].split("%")[0])
        assert 0.0 <= share <= 100.0


def test_bottom_heavy_tells_a_clip_from_its_reversal_only_through_its_3d_kernels():
    """With every 3D kernel of bottom-heavy I3D cut 3 made time-symmetric, the network gives a
    69-frame clip and its reversal the same logits: the 2D layers above Mixed_3c (and the
    strided pools, at T = 5 mod 8) treat both directions alike, so whatever orders the flashes
    is the direction its 3D features tag, carried across the clip by the 2D layers."""
    import jax
    import jax.numpy as jnp

    from video_s3d import models

    net = models.create("tiny_bottom_heavy_i3d_3", 10, kernel_init="he")
    clip = jax.random.normal(jax.random.key(0), (2, 69, 16, 16, 3))
    variables = net.init({"params": jax.random.key(1), "dropout": jax.random.key(2)}, clip)

    def symmetric(kernel):  # conv kernels are [t, h, w, in, out]
        return (kernel + kernel[::-1]) / 2 if kernel.ndim == 5 and kernel.shape[0] > 1 else kernel

    forward = jax.jit(lambda v, x: net.apply(v, x, train=False))
    logits, reversed_logits = forward(variables, clip), forward(variables, clip[:, ::-1])
    scale = float(jnp.abs(logits).max())
    assert float(jnp.abs(logits - reversed_logits).max()) > 1e-3 * scale  # direction-aware
    held = dict(variables, params=jax.tree.map(symmetric, variables["params"]))
    logits, reversed_logits = forward(held, clip), forward(held, clip[:, ::-1])
    scale = float(jnp.abs(logits).max())
    assert float(jnp.abs(logits - reversed_logits).max()) < 1e-5 * scale
