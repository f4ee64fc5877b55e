"""The CPU guard: TensorFlow's oneDNN kernels corrupt memory during training on CPUs with AVX-512
(``double free or corruption``, segmentation faults within the first epoch), first with its AVX-512
kernels and, since TensorFlow 2.21, with its AVX2 kernels too (``bench/onednn_crash.py``: on an AMD
Zen 4 and on an Intel Sapphire Rapids alike). So on a CPU that reports AVX-512 the guard applies,
before TensorFlow loads, one of the two settings that never crashed, whichever trained faster on
that CPU's vendor, unless the user set oneDNN's own variables:

- AMD: oneDNN limited to AVX (a mini-Xception epoch over 4,096 faces: 6.5 s, against 10.3 s with
  oneDNN off);
- Intel and any other vendor: oneDNN off (20.6 s, against 41.1 s limited to AVX).

The setting is decided once, when ``cnntree`` is imported; ``cnntree train`` and ``--debug`` say
what was applied.
"""

from __future__ import annotations

import os

USER_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS")  # the user's word wins
LIMITED_TO_AVX = ({"ONEDNN_MAX_CPU_ISA": "AVX"}, "limited to AVX")
OFF = ({"TF_ENABLE_ONEDNN_OPTS": "0"}, "off")
SAFE_SETTING_BY_VENDOR = {"AuthenticAMD": LIMITED_TO_AVX}  # the faster safe setting measured per vendor
SAFE_SETTING_ELSEWHERE = OFF  # measured on Intel; vendors not measured get TensorFlow's own kernels too


def cpu_field(cpuinfo: str, *keys: str) -> str:
    """The first processor's value of the first of ``keys`` in ``/proc/cpuinfo``'s text ("" if none)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys:
            return value.strip()
    return ""


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of the first processor in ``/proc/cpuinfo``'s text (empty elsewhere)."""
    return set(cpu_field(cpuinfo, "flags", "Features").split())


def safe_isa_setting(environ, cpuinfo: str) -> tuple[dict[str, str], str]:
    """The variables to set (none, or the CPU vendor's safe setting) and one line saying why."""
    chosen = [name for name in USER_VARIABLES if name in environ]
    if chosen:
        return {}, f"oneDNN: left as set ({', '.join(f'{n}={environ[n]}' for n in chosen)})"
    avx512 = sorted(flag for flag in cpu_flags(cpuinfo) if flag.startswith("avx512"))
    if not avx512:
        return {}, "oneDNN: unchanged (the CPU reports no AVX-512)"
    settings, said = SAFE_SETTING_BY_VENDOR.get(cpu_field(cpuinfo, "vendor_id"), SAFE_SETTING_ELSEWHERE)
    variables = ", ".join(f"{name}={value}" for name, value in settings.items())
    return (settings, f"oneDNN: {said} ({variables}) on this AVX-512 CPU ({avx512[0]}, ...), whose oneDNN "
                      "AVX-512 and AVX2 kernels crash training (docs/errors.md)")


def read_cpuinfo() -> str:
    """``/proc/cpuinfo``'s text, or "" where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            return f.read(1 << 20)
    except OSError:  # not Linux: nothing to read, nothing to limit
        return ""


NOTE = ""  # what the guard did in this process (``apply_guard``), for ``cnntree train`` and ``--debug``


def apply_guard(environ=os.environ) -> str:
    """Set the safe oneDNN setting in ``environ`` where needed (before TensorFlow loads); the note."""
    global NOTE
    settings, NOTE = safe_isa_setting(environ, read_cpuinfo())
    environ.update(settings)
    return NOTE
