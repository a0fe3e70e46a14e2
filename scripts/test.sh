#!/usr/bin/env bash
# Runs every test: unit, BPF (BPF_PROG_TEST_RUN), native addon, end-to-end (network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
exec npx ava "$@"
