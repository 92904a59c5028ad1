"""Unreadable files and folders in tests, also when the tests run as root (CI does).

Root reads everything through two capabilities (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so a
``chmod 000`` folder stays readable to it. ``file_permissions_apply()`` drops both from the
calling thread's effective set for the block: capabilities are per thread in Linux (the raw
capset call), and the permitted set keeps them, so they are raised again afterwards. The GUI
thread runs the window's handlers, so a drop event sent in the block meets real permissions.
"""

from __future__ import annotations

import ctypes
import os
from contextlib import contextmanager

_VERSION_3 = 0x20080522
_DAC = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _call(name: str, data) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    header = _Header(_VERSION_3, 0)  # pid 0: this thread
    if getattr(libc, name)(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


@contextmanager
def file_permissions_apply():
    """Within the block, this thread is refused what the file modes refuse (also as root)."""
    if os.geteuid() != 0:
        yield
        return
    data = (_Data * 2)()
    _call("capget", data)
    saved = data[0].effective
    data[0].effective &= ~_DAC
    _call("capset", data)
    try:
        yield
    finally:
        data[0].effective = saved
        _call("capset", data)
