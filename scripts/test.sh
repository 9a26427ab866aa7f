#!/usr/bin/env bash
# The whole test suite, as the README's second command and CI (.ci/run) run it.
# Installs what the checks need into project-local places (node_modules/, .venv/), then runs:
# asl-validator on statemachine.asl.json, rustfmt, clippy -D warnings, cargo test.
# Any tool that cannot be installed fails the run loudly; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "installing node tools into ./node_modules (asl-validator)"
command -v npm >/dev/null || { echo "npm is required (Node.js) to validate statemachine.asl.json" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error

step "installing moto[server] into ./.venv (DynamoDB/SQS/Step Functions emulator for the AWS adapter tests)"
command -v python3 >/dev/null || { echo "python3 is required to install moto" >&2; exit 1; }
if [ ! -x .venv/bin/moto_server ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
fi
.venv/bin/moto_server --help >/dev/null

step "asl-validator statemachine.asl.json"
./node_modules/.bin/asl-validator --json-path statemachine.asl.json

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace
