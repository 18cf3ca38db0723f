#!/usr/bin/env bash
# Runs every test of Bund on a fresh machine: installs what the external clients need
# (a Python venv with the ADBC driver, the Flight SQL JDBC driver through Maven), builds the
# `bund` binary the end-to-end tests start, then runs the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/test-deps.sh
# shellcheck disable=SC1091
source "${BUND_CACHE:-$PWD/.cache}/env.sh"

cargo build --locked -p bund-server --bin bund
cargo test --locked --workspace
