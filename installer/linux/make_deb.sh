#!/usr/bin/env bash
# Package a built Linux bundle as a .deb:
#
#     bash installer/linux/make_deb.sh BUNDLE_DIR OUT_DIR
#
# /opt/offline-coder/            the bundle, plus firewall-helper (what pkexec may run)
# /usr/bin/offline-coder         the launcher
# /usr/share/applications/org.offlinecoder.OfflineCoder.desktop, hicolor icons (16-256 + SVG)
# /usr/share/polkit-1/actions/org.offlinecoder.firewall.policy
# prerm: removes the app's nftables rule, if one is left. User data (settings, chats, models in
# each home folder) is never touched. The desktop menu and the icon cache are refreshed by the
# triggers of desktop-file-utils and the icon theme, so there is no postinst.
#
# Compression is zstd (5 s here; xz took 6 minutes for 10% less): dpkg reads it from 1.21.18
# (Debian 12, Ubuntu 21.10), and the bundle needs a glibc that new anyway. DEB_COMPRESSION=xz
# overrides it; DEB_MAINTAINER sets the Maintainer field (a placeholder by default).
set -euo pipefail
cd "$(dirname "$0")/../.."
bundle=$(realpath "$1")
out=$(realpath -m "$2")
[ -x "$bundle/offline-coder" ] || { echo "error: no bundle at $bundle" >&2; exit 1; }
umask 022

version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' app/__init__.py)
arch=$(dpkg --print-architecture)
name=offline-coder
icon=org.offlinecoder.OfflineCoder
# The newest glibc symbol version any bundled binary needs (the build machine's, in effect).
glibc=$(find "$bundle" -type f \( -name '*.so*' -o -name offline-coder \) -exec objdump -T {} + 2>/dev/null \
        | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)

stage=$(mktemp -d "${TMPDIR:-/tmp}/offline-coder-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root
mkdir -p "$root/opt" "$root/DEBIAN"
cp -a "$bundle" "$root/opt/$name"
chmod -R u+rwX,go+rX,go-w "$root/opt/$name"
install -m 755 installer/linux/firewall-helper "$root/opt/$name/firewall-helper"
install -D -m 755 installer/linux/offline-coder "$root/usr/bin/$name"
install -D -m 644 "resources/$icon.desktop" "$root/usr/share/applications/$icon.desktop"
for png in resources/icons/hicolor/*/apps/$icon.png; do
    install -D -m 644 "$png" "$root/usr/share/icons/${png#resources/icons/}"
done
install -D -m 644 "resources/icons/$icon.svg" "$root/usr/share/icons/hicolor/scalable/apps/$icon.svg"
install -D -m 644 installer/linux/org.offlinecoder.firewall.policy \
    "$root/usr/share/polkit-1/actions/org.offlinecoder.firewall.policy"
install -d "$root/usr/share/doc/$name"
cat > "$root/usr/share/doc/$name/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: Offline Coder
License: Apache-2.0
Comment: The bundle in /opt/offline-coder carries Python, Qt (LGPL-3.0), llama.cpp (MIT),
 onnxruntime (MIT), SmolLM2-135M-Instruct (Apache-2.0), all-MiniLM-L6-v2 (Apache-2.0) and the
 other Python packages listed in /opt/offline-coder/_internal/*.dist-info, each under its
 own license.
COPYRIGHT
install -m 755 installer/linux/prerm "$root/DEBIAN/prerm"

# Depends: what the bundle loads from the system (ldd of every bundled binary: glibc, libGL,
# libEGL, libxcb) and what Qt's xcb platform needs around it (fontconfig's configuration and
# fonts, the XKB keyboard data): the same list CI installs (.ci/run).
cat > "$root/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Section: devel
Priority: optional
Maintainer: ${DEB_MAINTAINER:-Offline Coder maintainers <maintainers@offlinecoder.invalid>}
Installed-Size: $(du -sk "$root" | cut -f1)
Depends: libc6 (>= $glibc), libgl1, libegl1, libxcb1, libglib2.0-0, libfontconfig1, libfreetype6,
 libdbus-1-3, libxkbcommon0, libxkbcommon-x11-0, libxcb-cursor0, libxcb-icccm4, libxcb-image0,
 libxcb-keysyms1, libxcb-randr0, libxcb-render-util0, libxcb-shape0, libxcb-xinerama0, libxcb-xkb1
Recommends: nftables, pkexec | policykit-1, python3
Description: coding assistant that runs a local model with the network cut off
 A desktop chat for code that answers from a local model through llama.cpp, edits project
 files with diffs you approve, searches your project's code, and blocks its own network
 access with the OS firewall. Works offline from the first start: a small starter model and
 the code-search model are included.
CONTROL

mkdir -p "$out"
deb="$out/${name}_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-zstd}" --build "$root" "$deb" >/dev/null
echo "$deb"
