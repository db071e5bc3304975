"""The malloc settings every launched run and `make` target starts with (video_s3d/allocator.py)."""

import os
import re
import subprocess
import sys

from launch import local
from video_s3d import allocator

# A child that allocates, touches and frees a 64 MiB block 8 times, then prints its minor page
# faults: with glibc's defaults each block is mmap'd afresh (8 x 16k faults); with the tuned
# settings the freed heap is reused (one block's worth, fewer still on huge pages).
_CHURN = """
import ctypes, resource
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    block = libc.malloc(64 << 20)
    ctypes.memset(block, 1, 64 << 20)
    libc.free(ctypes.c_void_p(block))
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(env):
    out = subprocess.run([sys.executable, "-c", _CHURN], env=env, capture_output=True, text=True)
    return int(out.stdout)


def test_a_process_started_with_the_settings_reuses_freed_memory():
    default = _faults(allocator.with_default_allocator(os.environ))
    tuned = _faults(allocator.with_tuned_allocator(allocator.with_default_allocator(os.environ)))
    assert default > 8 * 15000  # each 64 MiB block faulted in afresh: the baseline is real
    assert tuned < default / 4, (tuned, default)


def test_users_own_tunables_win_and_defaults_remove_every_setting():
    value = allocator.tunables_value("glibc.malloc.hugetlb=0:glibc.cpu.x86_shstk=on")
    settings = dict(item.split("=") for item in value.split(":"))
    assert settings["glibc.malloc.hugetlb"] == "0" and settings["glibc.cpu.x86_shstk"] == "on"
    assert settings["glibc.malloc.mmap_max"] == "0"
    assert not allocator.is_tuned({allocator.ENV_VAR: value})
    assert allocator.is_tuned(allocator.with_tuned_allocator({}))
    stripped = allocator.with_default_allocator(
        {allocator.ENV_VAR: value, "MALLOC_ARENA_MAX": "1", "HOME": "/h"}
    )
    assert stripped == {"HOME": "/h"}


def test_launched_runs_and_make_targets_start_with_the_settings():
    assert allocator.is_tuned(local.run_environment(base={}))
    makefile = open(os.path.join(local.REPO_ROOT, "Makefile")).read()
    value = re.search(r"^export GLIBC_TUNABLES \?= (\S+)$", makefile, re.M).group(1)
    assert value == allocator.tunables_value("")


def test_the_module_prints_the_value_to_export_and_checks_it(capsys, monkeypatch):
    assert allocator.main([]) == 0
    assert allocator.is_tuned({allocator.ENV_VAR: capsys.readouterr().out.strip()})
    monkeypatch.delenv(allocator.ENV_VAR, raising=False)
    assert allocator.main(["--check"]) == 1
    assert "export GLIBC_TUNABLES=$(python -m video_s3d.allocator)" in capsys.readouterr().out
    monkeypatch.setenv(allocator.ENV_VAR, allocator.tunables_value())
    assert allocator.main(["--check"]) == 0
