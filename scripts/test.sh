#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs the whole suite.
# Safe to run again: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the build and the tests use (real peers, not mocks).
bash scripts/install-deps.sh

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "==> installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

echo "==> unit, integration and end-to-end tests"
cargo nextest run --workspace --no-fail-fast

echo "==> doc tests"
cargo test --workspace --doc

echo "==> Debian packages: build, install, run from the installed configs, purge"
installers/deb/test.sh --replace

echo "==> fuzz targets build (stable toolchain: build only, no fuzzing)"
for dir in crates/*/fuzz; do
    [ -f "$dir/Cargo.toml" ] || continue
    (cd "$dir" && cargo build --quiet)
done

# Benchmarks are type-checked by `cargo clippy --all-targets` in .ci/run; they are run
# by hand (see docs/benchmarks.md) because timings belong in a benchmark, not a test.
