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

# PostgreSQL for the platform store tests (the same tests run on SQLite and on
# PostgreSQL): start the local cluster if it is installed and down, make sure the
# `tether` role exists (CREATEDB: each test creates and drops its own database),
# and require the PostgreSQL runs instead of skipping them.
start_postgres() {
    if [ -n "${TETHER_TEST_DATABASE_URL:-}" ]; then
        echo "==> PostgreSQL: using TETHER_TEST_DATABASE_URL from the environment"
        export TETHER_REQUIRE_POSTGRES="${TETHER_REQUIRE_POSTGRES:-1}"
        return 0
    fi
    if ! command -v pg_isready >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
        echo "==> PostgreSQL not installed: the PostgreSQL store tests will be skipped"
        return 0
    fi
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        if [ "$(id -u)" != 0 ]; then
            echo "==> PostgreSQL is down and we are not root: the PostgreSQL store tests will be skipped"
            return 0
        fi
        echo "==> starting PostgreSQL"
        if command -v pg_lsclusters >/dev/null 2>&1 && [ -n "$(pg_lsclusters -h 2>/dev/null)" ]; then
            pg_lsclusters -h | while read -r ver name _; do
                pg_ctlcluster "$ver" "$name" start || true
            done
        else
            service postgresql start
        fi
        pg_isready -q -h 127.0.0.1 -p 5432 -t 30
    fi
    local password=tether-test-only
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q -d postgres <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tether') THEN
        CREATE ROLE tether LOGIN CREATEDB PASSWORD '$password';
    ELSE
        ALTER ROLE tether LOGIN CREATEDB PASSWORD '$password';
    END IF;
END
\$\$;
SQL
    fi
    local url="postgres://tether:$password@127.0.0.1:5432/postgres"
    if ! psql "$url" -q -tA -c 'SELECT 1' >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then
            echo "error: cannot log in to PostgreSQL as tether" >&2
            return 1
        fi
        echo "==> no PostgreSQL role tether (not root, cannot create it): the PostgreSQL store tests will be skipped"
        return 0
    fi
    export TETHER_TEST_DATABASE_URL="$url"
    export TETHER_REQUIRE_POSTGRES=1
    echo "==> PostgreSQL ready: store tests run on SQLite and PostgreSQL"
}
start_postgres

# The packages above are installed, so an end-to-end test whose real peer
# (Xvnc, vncsnapshot, ...) is missing fails instead of skipping.
export TETHER_REQUIRE_E2E=1

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
