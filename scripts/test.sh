#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs the whole suite.
# Safe to run again: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests use (real peers, not mocks).
PKGS=(pkg-config)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "==> installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "==> installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

echo "==> unit, integration and end-to-end tests"
cargo nextest run --workspace --no-fail-fast

echo "==> doc tests"
cargo test --workspace --doc

echo "==> fuzz targets build (stable toolchain: build only, no fuzzing)"
for dir in crates/*/fuzz; do
    [ -f "$dir/Cargo.toml" ] || continue
    (cd "$dir" && cargo build --quiet)
done

# Benchmarks are type-checked by `cargo clippy --all-targets` in .ci/run; they are run
# by hand (see docs/benchmarks.md) because timings belong in a benchmark, not a test.
