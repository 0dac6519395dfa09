#!/usr/bin/env bash
# Builds the Debian packages of Tether: tether-platform, tether-cxserver,
# tether-ems, tether-lsr (systemd services) and tether-rac (client, tether:// handler).
#
#   installers/deb/build.sh [--profile release|debug] [--out DIR] [--no-build] [--package NAME]...
#
#   --profile   cargo profile of the binaries (default: release)
#   --out       where the .deb files go (default: target/deb/<profile>)
#   --no-build  package the binaries already in $CARGO_TARGET_DIR/<profile> (default target/)
#   --package   build only this package (repeatable; default: all five)
#
# Needs dpkg-deb; dpkg-shlibdeps (dpkg-dev) computes Depends when present, otherwise
# a fixed list is used. No root needed: files are owned by root in the packages
# through `dpkg-deb --root-owner-group`. Prints the paths of the .deb files.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

ALL_PACKAGES=(tether-platform tether-cxserver tether-ems tether-lsr tether-rac)
PROFILE=release
OUT=""
BUILD=1
PACKAGES=()

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-64}"
}

while [ $# -gt 0 ]; do
    case "$1" in
    --profile)
        [ $# -ge 2 ] || usage
        PROFILE="$2"
        shift 2
        ;;
    --profile=*)
        PROFILE="${1#*=}"
        shift
        ;;
    --out)
        [ $# -ge 2 ] || usage
        OUT="$2"
        shift 2
        ;;
    --out=*)
        OUT="${1#*=}"
        shift
        ;;
    --no-build)
        BUILD=0
        shift
        ;;
    --package)
        [ $# -ge 2 ] || usage
        PACKAGES+=("$2")
        shift 2
        ;;
    -h | --help) usage 0 ;;
    *)
        echo "build.sh: unknown argument '$1'" >&2
        usage
        ;;
    esac
done

case "$PROFILE" in
release) CARGO_PROFILE_ARGS=(--release) ;;
debug) CARGO_PROFILE_ARGS=() ;;
*)
    echo "build.sh: --profile must be release or debug, not '$PROFILE'" >&2
    exit 64
    ;;
esac
[ "${#PACKAGES[@]}" -gt 0 ] || PACKAGES=("${ALL_PACKAGES[@]}")
for p in "${PACKAGES[@]}"; do
    case " ${ALL_PACKAGES[*]} " in
    *" $p "*) ;;
    *)
        echo "build.sh: unknown package '$p' (one of: ${ALL_PACKAGES[*]})" >&2
        exit 64
        ;;
    esac
done

for tool in dpkg-deb dpkg gzip; do
    command -v "$tool" >/dev/null || {
        echo "build.sh: $tool is required" >&2
        exit 1
    }
done

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/$PROFILE"
[ -n "$OUT" ] || OUT="$ROOT/target/deb/$PROFILE"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

if [ "$BUILD" = 1 ]; then
    cargo_args=()
    for p in "${PACKAGES[@]}"; do cargo_args+=(-p "$p"); done
    echo "==> cargo build ${CARGO_PROFILE_ARGS[*]} ${cargo_args[*]}" >&2
    (cd "$ROOT" && cargo build "${CARGO_PROFILE_ARGS[@]}" "${cargo_args[@]}" >&2)
fi

ARCH="$(dpkg --print-architecture)"
# Reproducible timestamps: the last commit's time when in a git checkout.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH="$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)"
fi
export SOURCE_DATE_EPOCH
GIT_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
MAINTAINER="Tether maintainers <maintainers@example.invalid>"
HOMEPAGE="https://example.invalid/tether"

# The package version: the app's own `version`, or the workspace's
# ([workspace.package] version) when it says `version.workspace = true`.
# Read from the manifests: `cargo metadata` would wait on other builds' locks.
version_of() {
    local manifest="$ROOT/apps/$1/Cargo.toml" v
    v="$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$manifest")"
    if [ -z "$v" ] && grep -Eq '^version(\.workspace *= *true| *= *\{ *workspace *= *true)' "$manifest"; then
        v="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml")"
    fi
    echo "$v"
}

# Depends of a binary: dpkg-shlibdeps when available, else the libraries every
# Rust binary built by this workspace links (glibc, libgcc_s).
shlib_depends() {
    local bin="$1" tmp line
    if command -v dpkg-shlibdeps >/dev/null; then
        tmp="$(mktemp -d)"
        mkdir -p "$tmp/debian"
        printf 'Source: tether\n\nPackage: tether\nArchitecture: any\n' >"$tmp/debian/control"
        if line="$(cd "$tmp" && dpkg-shlibdeps -O "$bin" 2>/dev/null)"; then
            rm -rf "$tmp"
            line="${line#shlibs:Depends=}"
            [ -n "$line" ] && {
                echo "$line"
                return
            }
        fi
        rm -rf "$tmp"
    fi
    echo "libc6, libgcc-s1"
}

description_of() {
    case "$1" in
    tether-platform)
        cat <<'EOF'
Tether platform server (ThingWorx AlwaysOn compatible)
 The Tether platform: the AlwaysOn websocket endpoint for edges
 (/Thingworx/WS), the ThingWorx-style REST API, the admin API and the
 remote-access session broker. Runs as the tether-platform systemd service.
EOF
        ;;
    tether-cxserver)
        cat <<'EOF'
Tether connection server
 Terminates the AlwaysOn websockets of many edges and multiplexes them to
 the Tether platform over a few upstream links. Runs as the tether-cxserver
 systemd service.
EOF
        ;;
    tether-ems)
        cat <<'EOF'
Tether Edge MicroServer (ThingWorx EMS config.json compatible)
 Connects a device to the Tether (or ThingWorx) platform over AlwaysOn,
 serves the local REST interface used by script resources, stores messages
 while offline and relays remote-access tunnels. Runs as the tether-ems
 systemd service.
EOF
        ;;
    tether-lsr)
        cat <<'EOF'
Tether Lua Script Resource (ThingWorx LSR compatible)
 Runs ThingWorx LSR style Lua templates in a sandbox and serves them to the
 Edge MicroServer. Runs as the tether-lsr systemd service.
EOF
        ;;
    tether-rac)
        cat <<'EOF'
Tether Remote Access Client
 Joins a Tether remote-access session and exposes it on a local port (or
 stdin/stdout for ssh ProxyCommand). Registered as the handler of tether://
 links from the platform's web page.
EOF
        ;;
    esac
}

# Files with secrets (chgrp to the service group, mode 0640/0750 at first install).
secrets_of() {
    case "$1" in
    tether-ems) echo "/etc/tether/ems/config.json /etc/tether/ems" ;;
    tether-cxserver) echo "/etc/tether/cxserver" ;;
    *) echo "" ;;
    esac
}

# Lays out the package's files (without DEBIAN/) under $1.
stage_files() {
    local pkg="$1" root="$2" src="$HERE/$1"
    install -D -m 0755 "$BIN_DIR/$pkg" "$root/usr/bin/$pkg"
    # Release binaries carry line tables (profile.release debug = 1): strip them
    # as Debian does; debug packages keep them.
    if [ "$PROFILE" = release ] && command -v strip >/dev/null; then
        strip --strip-unneeded --remove-section=.comment "$root/usr/bin/$pkg"
    fi
    case "$pkg" in
    tether-platform)
        install -D -m 0644 "$src/platform.toml" "$root/etc/tether/platform.toml"
        ;;
    tether-cxserver)
        install -D -m 0644 "$src/cxserver.toml" "$root/etc/tether/cxserver.toml"
        install -d -m 0755 "$root/etc/tether/cxserver"
        ;;
    tether-ems)
        install -D -m 0644 "$src/config.json" "$root/etc/tether/ems/config.json"
        install -D -m 0644 "$ROOT/docs/examples/ems/full.json" \
            "$root/usr/share/doc/$pkg/examples/config.full.json"
        ;;
    tether-lsr)
        install -D -m 0644 "$src/config.lua" "$root/etc/tether/lsr/config.lua"
        install -D -m 0644 "$ROOT/docs/examples/lsr/custom/templates/example.lua" \
            "$root/etc/tether/lsr/custom/templates/example.lua"
        install -D -m 0644 "$ROOT/docs/examples/lsr/custom/templates/plain.lua" \
            "$root/usr/share/doc/$pkg/examples/templates/plain.lua"
        ;;
    tether-rac)
        install -D -m 0644 "$src/tether-rac.desktop" "$root/usr/share/applications/tether-rac.desktop"
        install -D -m 0644 "$src/tether-rac.svg" "$root/usr/share/icons/hicolor/scalable/apps/tether-rac.svg"
        ;;
    esac
    if [ -f "$src/$pkg.service" ]; then
        install -D -m 0644 "$src/$pkg.service" "$root/lib/systemd/system/$pkg.service"
    fi
    install -d "$root/usr/share/man/man1"
    gzip -9n -c "$src/$pkg.1" >"$root/usr/share/man/man1/$pkg.1.gz"
    chmod 0644 "$root/usr/share/man/man1/$pkg.1.gz"
    local doc="$root/usr/share/doc/$pkg"
    install -D -m 0644 "$HERE/common/copyright" "$doc/copyright"
    install -D -m 0644 "$src/README.Debian" "$doc/README.Debian"
    # A native package (built from the upstream tree): changelog.gz.
    {
        echo "$pkg ($VERSION) unstable; urgency=medium"
        echo
        echo "  * Built from the Tether workspace, git $GIT_REV, profile $PROFILE."
        echo
        echo " -- $MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
    } | gzip -9n >"$doc/changelog.gz"
    chmod 0644 "$doc/changelog.gz"
    if [ -f "$root/lib/systemd/system/$pkg.service" ]; then
        # prerm disables a unit the admin enabled with systemctl (deb-systemd-helper
        # only knows units it enabled itself, and the package enables none).
        install -d "$root/usr/share/lintian/overrides"
        printf '%s: maintainer-script-calls-systemctl [prerm:*]\n' "$pkg" \
            >"$root/usr/share/lintian/overrides/$pkg"
    fi
}

write_control() {
    local pkg="$1" root="$2" depends size
    depends="$(shlib_depends "$root/usr/bin/$pkg")"
    if [ -f "$root/lib/systemd/system/$pkg.service" ]; then
        depends="$depends, adduser"
    fi
    size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
    {
        echo "Package: $pkg"
        echo "Version: $VERSION"
        echo "Architecture: $ARCH"
        echo "Maintainer: $MAINTAINER"
        echo "Installed-Size: $size"
        echo "Depends: $depends"
        case "$pkg" in
        tether-lsr) echo "Recommends: tether-ems" ;;
        tether-rac) echo "Suggests: desktop-file-utils, openssh-client" ;;
        esac
        echo "Section: net"
        echo "Priority: optional"
        echo "Homepage: $HOMEPAGE"
        echo "Description: $(description_of "$pkg")"
    } >"$root/DEBIAN/control"
    # Every file under /etc is a conffile.
    (cd "$root" && find . -path './etc/*' -type f | sed 's|^\.||' | sort) >"$root/DEBIAN/conffiles"
    [ -s "$root/DEBIAN/conffiles" ] || rm -f "$root/DEBIAN/conffiles"
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f ! -path './etc/*' -print |
        sed 's|^\./||' | sort | xargs -r md5sum) >"$root/DEBIAN/md5sums"
}

write_scripts() {
    local pkg="$1" root="$2" s
    if [ -f "$root/lib/systemd/system/$pkg.service" ]; then
        for s in postinst prerm postrm; do
            sed -e "s|@PKG@|$pkg|g" -e "s|@SECRETS@|$(secrets_of "$pkg")|g" \
                "$HERE/common/service.$s" >"$root/DEBIAN/$s"
            chmod 0755 "$root/DEBIAN/$s"
        done
    else
        for s in postinst prerm postrm; do
            if [ -f "$HERE/$pkg/$s" ]; then
                install -m 0755 "$HERE/$pkg/$s" "$root/DEBIAN/$s"
            fi
        done
    fi
}

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT

for pkg in "${PACKAGES[@]}"; do
    if [ ! -x "$BIN_DIR/$pkg" ]; then
        echo "build.sh: $BIN_DIR/$pkg is missing (build it, or drop --no-build)" >&2
        exit 1
    fi
    VERSION="$(version_of "$pkg")"
    [ -n "$VERSION" ] || {
        echo "build.sh: cannot find the version of $pkg" >&2
        exit 1
    }
    root="$STAGE/$pkg"
    mkdir -p "$root/DEBIAN"
    stage_files "$pkg" "$root"
    write_scripts "$pkg" "$root"
    write_control "$pkg" "$root"
    # Directories 0755, no group/other write anywhere.
    find "$root" -type d -exec chmod 0755 {} +
    find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    deb="$OUT/${pkg}_${VERSION}_${ARCH}.deb"
    # Debug binaries are large: gzip is much faster than xz for them.
    if [ "$PROFILE" = debug ]; then compress=(-Zgzip -z1); else compress=(-Zxz); fi
    dpkg-deb --root-owner-group "${compress[@]}" --build "$root" "$deb" >/dev/null
    echo "$deb"
done
