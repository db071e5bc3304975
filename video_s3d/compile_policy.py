"""How a run's programs are compiled, decided once from its config.

Two choices change a compiled program without changing its inputs: XLA's compiler options
(`config.cpu_fast_compile`) and how convolutions and max-pools are lowered
(`models.layers.window_ops`). One frozen `CompilePolicy` holds both; every step builder takes
it and bakes it into its jitted function (`CompilePolicy.jit`). The window-op choice is a
ContextVar read while the model is traced, which jit's cache does not see: applied inside the
jitted function, it belongs to that function, so a program traced under one policy is never
reused under another, whatever context it is later called in.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import ml_collections

from video_s3d.models import layers

# On CPU, compiling the tiny_s3dg train step (16 frames) took 114 s with XLA's defaults, 44 s
# at backend optimisation level 0 and 16 s with the new fusion emitters off as well;
# initialisation 140 s -> 32 s. The price is step time: for 5x48x48 clips, batch 32, the step
# ran in 225 ms at level 0 against 96 ms at the default level (which compiled it in 30 s,
# level 0 in 12 s; the fusion-emitter flag alone changes neither). So short runs (tests,
# smoke runs) compile fast, and longer runs set config.cpu_fast_compile = False: ~18 s more
# compiling per program is repaid by ~0.13 s per step after ~150 steps
# (train_state.fast_compile_pays_off).
CPU_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


@dataclasses.dataclass(frozen=True)
class CompilePolicy:
    """XLA options and window-op lowering for every program of a run (hashable: a cache key).

    The default is plain `jax.jit` (XLA's own options, the 'auto' lowering).
    """

    fast_cpu_compile: bool = False  # CPU_FAST_COMPILE on the CPU backend
    window_ops: str = "auto"  # one of layers.WINDOW_OP_IMPLEMENTATIONS

    def __post_init__(self):
        layers.check_window_ops(self.window_ops)

    @classmethod
    def from_config(
        cls, config: ml_collections.ConfigDict | None = None, *, runs_few_times: bool = False
    ) -> CompilePolicy:
        """The run's policy: fast CPU compiles unless config.cpu_fast_compile is False, and
        the window-op lowering in effect now (`layers.window_ops`, 'auto' unless set).

        `runs_few_times` (initialisation, precise-BN statistics) always compiles fast: the
        program runs too few times to repay an optimised compile (initialising took 140 s).
        """
        fast = config.get("cpu_fast_compile", True) if config is not None else True
        return cls(fast_cpu_compile=bool(fast), window_ops=layers.current_window_ops()).with_fast(
            runs_few_times
        )

    def with_fast(self, fast: bool = True) -> CompilePolicy:
        """This policy, compiling fast if `fast` (for programs that run a few times)."""
        return dataclasses.replace(self, fast_cpu_compile=True) if fast else self

    @property
    def compiler_options(self) -> dict[str, Any] | None:
        if self.fast_cpu_compile and jax.default_backend() == "cpu":
            return dict(CPU_FAST_COMPILE)
        return None

    def jit(self, fun: Callable, **jit_kwargs) -> Callable:
        """`jax.jit(fun)` compiled with this policy: traced under its window-op lowering."""
        window_ops = self.window_ops

        @functools.wraps(fun)
        def traced_under_policy(*args, **kwargs):
            with layers.window_ops(window_ops):
                return fun(*args, **kwargs)

        return jax.jit(traced_under_policy, compiler_options=self.compiler_options, **jit_kwargs)
