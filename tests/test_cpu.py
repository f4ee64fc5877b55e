"""The CPU guard limits oneDNN to AVX (AMD) or turns it off (Intel and others) on CPUs that report
AVX-512, unless the user chose."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnntree.cpu import USER_VARIABLES, cpu_flags, safe_isa_setting

BENCH = Path(__file__).resolve().parents[1] / "bench" / "onednn_crash.py"

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
flags\t\t: fpu vme sse sse2 avx avx2 fma avx512f avx512dq avx512bw avx512_vnni avx512_bf16
processor\t: 1
flags\t\t: fpu
"""
SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 207
flags\t\t: fpu avx avx2 avx512f avx512dq avx512_bf16 amx_tile
"""
AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"


def test_the_first_processors_flags_are_read():
    assert cpu_flags(ZEN4) >= {"avx512f", "avx512_bf16", "avx2"} and "fpu" in cpu_flags(AVX2_ONLY)
    assert cpu_flags("") == set() and cpu_flags("Features\t: fp asimd\n") == {"fp", "asimd"}


def test_avx512_gets_the_vendors_faster_safe_setting_and_a_note_naming_why():
    settings, note = safe_isa_setting({}, ZEN4)
    assert settings == {"ONEDNN_MAX_CPU_ISA": "AVX"}
    assert note.startswith("oneDNN: limited to AVX (ONEDNN_MAX_CPU_ISA=AVX) on this AVX-512 CPU (avx512_bf16, ")
    settings, note = safe_isa_setting({}, SAPPHIRE_RAPIDS)
    assert settings == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert note.startswith("oneDNN: off (TF_ENABLE_ONEDNN_OPTS=0) on this AVX-512 CPU (avx512_bf16, ")
    assert safe_isa_setting({}, SAPPHIRE_RAPIDS.replace("GenuineIntel", "Unknown"))[0] == settings


def test_a_cpu_without_avx512_is_left_alone():
    assert safe_isa_setting({}, AVX2_ONLY) == ({}, "oneDNN: unchanged (the CPU reports no AVX-512)")
    assert safe_isa_setting({}, "")[0] == {}


def test_the_users_own_onednn_setting_wins():
    for name, value in (("ONEDNN_MAX_CPU_ISA", "AVX512_CORE"), ("TF_ENABLE_ONEDNN_OPTS", "0"),
                        ("DNNL_MAX_CPU_ISA", "AVX2")):
        settings, note = safe_isa_setting({name: value}, ZEN4)
        assert settings == {} and f"{name}={value}" in note


def test_importing_cnntree_sets_the_variable_before_tensorflow_loads():
    env = {k: v for k, v in os.environ.items() if k not in USER_VARIABLES}
    code = ("import os, sys, cnntree; print([os.environ.get(n) for n in cnntree.cpu.USER_VARIABLES], "
            "'tensorflow' in sys.modules); print(cnntree.CPU_NOTE)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env).stdout.splitlines()
    cpuinfo = open("/proc/cpuinfo").read()
    if any(flag.startswith("avx512") for flag in cpu_flags(cpuinfo)):
        amd = "AuthenticAMD" in cpuinfo
        assert out[0] == ("['AVX', None, None] False" if amd else "[None, None, '0'] False")
        assert out[1].startswith("oneDNN: limited to AVX " if amd else "oneDNN: off ")
    else:
        assert out == ["[None, None, None] False", "oneDNN: unchanged (the CPU reports no AVX-512)"]


@pytest.mark.slow
def test_training_the_layer_that_crashed_oneDNN_finishes_under_the_guard():
    """The reduced crash (bench/onednn_crash.py: a strided 1x1 convolution, 8 to 16 channels, batches
    of 13) trains in a child process after ``import cnntree``: on an AVX-512 CPU without the guard it
    dies with SIGSEGV or an abort, which fails this test with that exit status instead of ending the suite."""
    loader = importlib.util.spec_from_file_location("onednn_crash", BENCH)
    bench = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(bench)
    env = {k: v for k, v in os.environ.items() if k not in USER_VARIABLES}
    code = "import cnntree\n" + bench.CHILD.format(batch=13, steps=400)
    done = subprocess.run([sys.executable, "-c", code], env={**env, "KERAS_BACKEND": "tensorflow"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip().endswith("finished")
