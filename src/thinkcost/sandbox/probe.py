"""Which kernel layers this machine grants: probed once per process by running real children.

Each candidate layer set is tried by a sandboxed child that checks, from inside, that the layer
holds (an outside write is refused, loopback is unreachable, it is pid 2, it has no capabilities).
If the kernel refuses everything at once, each layer is tried alone and the working subset kept.
Set THINKCOST_SANDBOX_NAMESPACES=0 to skip the probe and use the portable layers only.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import threading
from dataclasses import replace

from thinkcost.sandbox import cgroup, launch
from thinkcost.sandbox.kernel import Layers
from thinkcost.sandbox.outcome import classify

_LAYERS: Layers | None = None
_LAYERS_LOCK = threading.Lock()

_PROBE = """
import ctypes, errno, os, socket
checks = {checks!r}
libc = ctypes.CDLL(None, use_errno=True)
if "mntns" in checks:
    fd = libc.open({outside!r}.encode(), os.O_CREAT | os.O_WRONLY, 0o600)
    assert fd < 0 and ctypes.get_errno() in (errno.EROFS, errno.EACCES, errno.EPERM), "outside write allowed"
if "netns" in checks:
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    except OSError as e:
        assert e.errno == errno.ENETUNREACH, e
    else:
        raise AssertionError("connected")
if "pidns" in checks:
    assert os.getpid() == 2, os.getpid()
if "nocaps" in checks:
    eff = [l for l in open("/proc/self/status") if l.startswith("CapEff")][0]
    assert int(eff.split()[1], 16) == 0, eff
open("ok", "w").close()
"""


def _probe(candidate: Layers) -> bool:
    """Run a real sandboxed child under candidate and check, from inside, that each layer holds."""
    outside = tempfile.mkdtemp(prefix="thinkcost-probe-")
    sandbox = launch.new_sandbox("thinkcost-probe-")
    checks = [name for name in ("netns", "mntns", "pidns", "nocaps") if getattr(candidate, name)]
    program = os.path.join(sandbox, "probe.py")
    try:
        with open(program, "w") as f:
            f.write(_PROBE.format(checks=checks, outside=os.path.join(outside, "escaped")))
        run = launch.execute(program, sandbox, candidate, 20.0, 1024)
        passed = classify(run.returncode, run.timed_out, run.stderr, run.maxrss_kb, 1024) == "passed"
        return passed and not os.path.exists(os.path.join(outside, "escaped"))
    except Exception:  # a layer the kernel refuses makes the launch itself fail
        return False
    finally:
        shutil.rmtree(outside, ignore_errors=True)
        launch.remove_tree(sandbox)


def _probe_cgroup() -> bool:
    path = cgroup.make(secrets.token_hex(6), 8)
    cgroup.remove(path)
    return path is not None


def _detect_layers() -> Layers:
    """Try every layer together; if the kernel refuses, keep the subset that works one by one."""
    if os.environ.get("THINKCOST_SANDBOX_NAMESPACES", "1") == "0" or not sys.platform.startswith("linux"):
        return Layers()
    everything = Layers(netns=True, mntns=True, pidns=True, nocaps=True)
    if not _probe(everything):
        single = {name: _probe(Layers(**{name: True})) for name in ("netns", "mntns", "pidns", "nocaps")}
        everything = Layers(**single)
        if any(single.values()) and not _probe(everything):
            everything = Layers()
    return replace(everything, pids_cgroup=os.geteuid() == 0 and _probe_cgroup())


def layers() -> Layers:
    """The isolation layers available on this machine (probed once per process, thread-safe)."""
    global _LAYERS
    with _LAYERS_LOCK:
        if _LAYERS is None:
            _LAYERS = _detect_layers()
        return _LAYERS


def known_layers() -> Layers:
    """The probed layers if the probe already ran, else none (for labelling a setup error)."""
    return _LAYERS or Layers()
