"""The CPU guard: TensorFlow's oneDNN kernels corrupt memory during training on some CPUs with
AVX-512 (AMD Zen 4 with ``avx512f``, ``avx512_bf16``: ``double free or corruption``, segmentation
faults within the first epoch), first with its AVX-512 kernels and, since TensorFlow 2.21, with its
AVX2 kernels too (``bench/onednn_crash.py``). So on a CPU that reports AVX-512 oneDNN is limited to
AVX before TensorFlow loads, unless the user set oneDNN's own variables.

AVX kernels cost a little there (a mini-Xception epoch over 4,096 faces: 6.5 s against 5 s with AVX2
and 10 s with oneDNN off). The setting is decided once, when ``cnntree`` is imported; ``cnntree
train`` and ``--debug`` say what was applied.
"""

from __future__ import annotations

import os

USER_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS")  # the user's word wins
SAFE_ISA = "AVX"


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of the first processor in ``/proc/cpuinfo``'s text (empty elsewhere)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def safe_isa_setting(environ, cpuinfo: str) -> tuple[dict[str, str], str]:
    """The variables to set (none or ``ONEDNN_MAX_CPU_ISA``) and one line saying why."""
    chosen = [name for name in USER_VARIABLES if name in environ]
    if chosen:
        return {}, f"oneDNN: left as set ({', '.join(f'{n}={environ[n]}' for n in chosen)})"
    avx512 = sorted(flag for flag in cpu_flags(cpuinfo) if flag.startswith("avx512"))
    if not avx512:
        return {}, "oneDNN: unchanged (the CPU reports no AVX-512)"
    return ({"ONEDNN_MAX_CPU_ISA": SAFE_ISA},
            f"oneDNN: limited to {SAFE_ISA} (ONEDNN_MAX_CPU_ISA={SAFE_ISA}) on this AVX-512 CPU ({avx512[0]}, ...), "
            "whose AVX-512 and AVX2 kernels crash training on some CPUs (docs/errors.md)")


def _read_cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read(1 << 20)
    except OSError:  # not Linux: nothing to read, nothing to limit
        return ""


NOTE = ""  # what the guard did in this process (``apply_guard``), for ``cnntree train`` and ``--debug``


def apply_guard(environ=os.environ) -> str:
    """Set the safe oneDNN limit in ``environ`` where needed (before TensorFlow loads); the note."""
    global NOTE
    settings, NOTE = safe_isa_setting(environ, _read_cpuinfo())
    environ.update(settings)
    return NOTE
