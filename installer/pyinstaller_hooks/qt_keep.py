"""Which Qt plugins the bundle carries (used by the hook-PySide6.*.py overrides next to this
file, which build.spec puts first in ``hookspath``).

PyInstaller's own Qt hooks collect every plugin of each type a module is linked with (all
platforms, image formats, icon engines, platform themes, Wayland, GL integrations...) and then
the system libraries those plugins link (GTK, cairo, pango, Kerberos...). Choosing the plugins
here, before the dependency analysis, keeps those libraries out; filtering after it would not.
"""

import os

KEEP = {
    # xcb and offscreen on Linux (Wayland sessions run xcb through XWayland), the native ones
    # on Windows and macOS
    "platforms": {"libqxcb.so", "libqoffscreen.so", "qwindows.dll", "qoffscreen.dll",
                  "libqcocoa.dylib", "libqoffscreen.dylib"},
    "platforminputcontexts": None,  # compose keys and IBus input methods: all (None = every file)
    "styles": None,                 # native widget styles (Windows 11, macOS)
}


def keep_plugins(binaries):
    out = []
    for src, dest in binaries:
        kind = os.path.basename(os.path.normpath(dest))
        if "plugins" not in dest.replace("\\", "/").split("/"):
            out.append((src, dest))       # not a plugin: keep
        elif kind in KEEP and (KEEP[kind] is None or os.path.basename(src) in KEEP[kind]):
            out.append((src, dest))
    return out
