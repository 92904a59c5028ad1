"""Render the app icon (resources/icons/org.offlinecoder.OfflineCoder.svg) into the files the
installers and the window use, with Qt's own SVG renderer (no extra tools):

- resources/icons/hicolor/<N>x<N>/apps/org.offlinecoder.OfflineCoder.png (16-256: the Linux
  icon theme, and the window icon in every build)
- resources/icons/offline-coder.ico (Windows: the .exe and the installer; PNG entries 16-256)
- resources/icons/offline-coder.icns (macOS: the .app; PNG entries 16-512)

Run after editing the SVG: ``.venv/bin/python scripts/make_icons.py``; commit the results.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ICONS = ROOT / "resources" / "icons"
NAME = "org.offlinecoder.OfflineCoder"
SVG = ICONS / f"{NAME}.svg"
HICOLOR_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS types that hold PNG data, by size.
ICNS_TYPES = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08", 512: b"ic09"}


def render_png(renderer: QSvgRenderer, size: int) -> bytes:
    img = QImage(size, size, QImage.Format_ARGB32_Premultiplied)
    img.fill(Qt.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.Antialiasing)
    renderer.render(p)
    p.end()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.WriteOnly)
    if not img.save(buf, "PNG"):
        raise RuntimeError(f"could not encode the {size}px PNG")
    return bytes(data)


def ico(pngs: dict[int, bytes]) -> bytes:
    """An .ico whose entries are PNGs (Windows Vista and later read those at every size)."""
    sizes = sorted(pngs)
    out = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    for s in sizes:
        out += struct.pack("<BBBBHHII", s % 256, s % 256, 0, 0, 1, 32, len(pngs[s]), offset)
        offset += len(pngs[s])
    return out + b"".join(pngs[s] for s in sizes)


def icns(pngs: dict[int, bytes]) -> bytes:
    body = b"".join(ICNS_TYPES[s] + struct.pack(">I", 8 + len(pngs[s])) + pngs[s] for s in sorted(pngs))
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main() -> int:
    if QGuiApplication.instance() is None:
        main.qt_app = QGuiApplication(sys.argv[:1])  # rendering needs one, alive until we are done
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        print(f"error: {SVG} is not a valid SVG for Qt", file=sys.stderr)
        return 1
    pngs = {s: render_png(renderer, s) for s in sorted(set(HICOLOR_SIZES) | set(ICO_SIZES) | set(ICNS_TYPES))}
    for s in HICOLOR_SIZES:
        out = ICONS / "hicolor" / f"{s}x{s}" / "apps" / f"{NAME}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(pngs[s])
    (ICONS / "offline-coder.ico").write_bytes(ico({s: pngs[s] for s in ICO_SIZES}))
    (ICONS / "offline-coder.icns").write_bytes(icns({s: pngs[s] for s in ICNS_TYPES}))
    print(f"wrote {len(HICOLOR_SIZES)} PNGs, offline-coder.ico and offline-coder.icns under {ICONS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
