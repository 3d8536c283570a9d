"""flotta's default seccomp profile: a deny-list of the kernel calls Docker's profile refuses.

Docker's default profile is an allow-list of about 350 system calls. flotta ships the
inverse: allow everything, and refuse with EPERM the calls Docker's profile refuses to a
container that lacks the capability they are about (or refuses always: the kernel keyring,
kexec, obsolete calls). The effect for programs is the same where it matters; a kernel call
newer than the list is allowed rather than refused, which is the trade for a profile short
enough to review. `--cap-add` of a capability lifts the calls it gates, as with Docker.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable

_EPERM = 1

# Refused whatever the capabilities: not namespaced, or obsolete.
_ALWAYS_DENIED: tuple[str, ...] = (
    "add_key", "keyctl", "request_key",
    "kexec_load", "kexec_file_load",
    "create_module", "get_kernel_syms", "query_module", "nfsservctl",
    "uselib", "ustat", "sysfs", "_sysctl", "vm86", "vm86old",
    "lookup_dcookie",
)  # fmt: skip

# Refused unless the container holds the capability that governs them.
_DENIED_WITHOUT: dict[str, tuple[str, ...]] = {
    "CAP_SYS_ADMIN": (
        "mount", "umount", "umount2", "unshare", "setns", "pivot_root", "quotactl",
        "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
        "mount_setattr", "name_to_handle_at", "fanotify_init",
    ),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_MODULE": ("init_module", "finit_module", "delete_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_adjtime"),
    "CAP_SYS_NICE": ("mbind", "set_mempolicy", "move_pages"),
    "CAP_SYS_PTRACE": ("kcmp", "process_madvise", "pidfd_getfd", "userfaultfd"),
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
}  # fmt: skip

_ARCHITECTURES: dict[str, list[str]] = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}


def denied_syscalls(capabilities: Iterable[str]) -> list[str]:
    """The calls refused to a container holding `capabilities` (sorted)."""
    held = set(capabilities)
    denied = set(_ALWAYS_DENIED)
    for capability, calls in _DENIED_WITHOUT.items():
        # CAP_SYS_ADMIN covered bpf and perf_event_open before their own capabilities existed.
        if capability in held or (
            capability in ("CAP_BPF", "CAP_PERFMON") and "CAP_SYS_ADMIN" in held
        ):
            continue
        denied.update(calls)
    return sorted(denied)


def default_profile(capabilities: Iterable[str] = ()) -> dict[str, object]:
    """The OCI `linux.seccomp` object for a container holding `capabilities`."""
    profile: dict[str, object] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": denied_syscalls(capabilities), "action": "SCMP_ACT_ERRNO", "errnoRet": _EPERM}
        ],
    }
    architectures = _ARCHITECTURES.get(platform.machine())
    if architectures:
        profile["architectures"] = architectures
    return profile
