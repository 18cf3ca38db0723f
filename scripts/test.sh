#!/usr/bin/env bash
# Runs every test of Bund on a fresh machine: installs what the external clients need
# (a Python venv with the ADBC driver, the Flight SQL JDBC driver through Maven), checks the
# formatting and runs clippy (warnings are errors), builds the `bund` binary the end-to-end
# tests start, then runs the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/test-deps.sh
# shellcheck disable=SC1091
source "${BUND_CACHE:-$PWD/.cache}/env.sh"

# rustfmt and clippy come with rustup's default profile; a minimal toolchain lacks them.
if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
cargo fmt --all --check || {
    echo "test: formatting differs; run \`cargo fmt --all\`" >&2
    exit 1
}
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo build --locked -p bund-server --bin bund
cargo test --locked --workspace
