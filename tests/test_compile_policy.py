"""The compile policy: resolved once from the config, baked into each jitted program, so a
program compiled under one policy is never reused under another."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import synthetic_motion
from video_s3d import compile_policy, errors, evaluate, parallel
from video_s3d.compile_policy import CompilePolicy
from video_s3d.models import layers
from video_s3d.normalization import Normalization

THREE_D_CONV = "[b, 0, 1, 2, f]"  # StableHLO's dimension numbers of an NDHWC convolution


def _conv(x, kernel):
    return layers.conv3d(x, kernel, (1, 1, 1), "same")


def _lowered(jitted) -> str:
    x = jnp.zeros((1, 4, 8, 8, 3))
    kernel = jnp.zeros((3, 3, 3, 3, 5))
    return jitted.lower(x, kernel).as_text()


def test_from_config_resolves_the_xla_options_once():
    config = synthetic_motion.get_config("in_memory,runlocal")
    config.cpu_fast_compile = False
    slow = CompilePolicy.from_config(config)
    assert slow == CompilePolicy(fast_cpu_compile=False, window_ops="auto")
    assert slow.compiler_options is None
    assert CompilePolicy.from_config(config, runs_few_times=True).fast_cpu_compile
    config.cpu_fast_compile = True
    fast = CompilePolicy.from_config(config)
    expected = compile_policy.CPU_FAST_COMPILE if jax.default_backend() == "cpu" else None
    assert fast.compiler_options == expected
    assert hash(fast) != hash(slow) and fast != slow  # a cache key that tells them apart
    with layers.window_ops("native"):
        assert CompilePolicy.from_config(config).window_ops == "native"
    with pytest.raises(errors.UserError, match="window-op implementation 'fast'"):
        CompilePolicy(window_ops="fast")


def test_a_jitted_program_keeps_its_own_window_ops_in_any_context():
    native = CompilePolicy(window_ops="native").jit(_conv)
    unrolled = CompilePolicy(window_ops="unrolled").jit(_conv)
    # The caller's context (a ContextVar read at trace time) no longer decides the program.
    with layers.window_ops("unrolled"):
        assert THREE_D_CONV in _lowered(native)
    with layers.window_ops("native"):
        assert THREE_D_CONV not in _lowered(unrolled)
    # Same function either way, and the context is restored after tracing.
    x = np.random.default_rng(0).normal(size=(1, 4, 8, 8, 3)).astype(np.float32)
    kernel = np.random.default_rng(1).normal(size=(3, 3, 3, 3, 5)).astype(np.float32)
    np.testing.assert_allclose(native(x, kernel), unrolled(x, kernel), rtol=1e-4, atol=1e-4)
    assert layers.current_window_ops() == "auto"


def test_eval_steps_are_shared_per_policy_and_never_across_policies():
    from tests.training_testing import small_video_net

    mesh = parallel.make_mesh(jax.devices()[:1])
    policy = CompilePolicy(fast_cpu_compile=True)
    step = evaluate.make_eval_step(small_video_net(3), mesh, policy, Normalization())
    assert evaluate.make_eval_step(small_video_net(3), mesh, policy) is step
    other = CompilePolicy(fast_cpu_compile=True, window_ops="native")
    assert evaluate.make_eval_step(small_video_net(3), mesh, other) is not step
