#!/usr/bin/env bash
# The whole test suite, as the README's second command and CI (.ci/run) run it.
# Installs what the checks need into project-local places (node_modules/), then runs:
# asl-validator on statemachine.asl.json, rustfmt, clippy -D warnings, cargo test.
# Any tool that cannot be installed fails the run loudly; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "installing node tools into ./node_modules (asl-validator)"
command -v npm >/dev/null || { echo "npm is required (Node.js) to validate statemachine.asl.json" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error

step "asl-validator statemachine.asl.json"
./node_modules/.bin/asl-validator --json-path statemachine.asl.json

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace
