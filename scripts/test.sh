#!/usr/bin/env bash
# The whole test suite, as the README's second command and CI (.ci/run) run it.
# Installs what the checks need into project-local places (node_modules/, .venv/, .tools/),
# then runs:
# asl-validator, cfn-lint, the SAM transform and checkov on the templates, cargo-deny, rustfmt,
# clippy -D warnings, cargo test (the dashboard's browser tests among them: Debian's chromium
# driven by playwright-core).
# Any tool that cannot be installed fails the run loudly; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "installing node tools into ./node_modules (asl-validator, playwright-core)"
command -v npm >/dev/null || { echo "npm is required (Node.js) to validate statemachine.asl.json and run the browser tests" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error

step "installing Debian's chromium (the dashboard's browser tests)"
if [ ! -x /usr/bin/chromium ]; then
  [ "$(id -u)" = 0 ] || { echo "chromium is missing and installing it needs root: apt-get install chromium" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; }
fi
/usr/bin/chromium --version

step "installing Python tools into ./.venv: moto[server] (AWS emulator for the adapter and end-to-end tests), cfn-lint, aws-sam-translator, checkov"
command -v python3 >/dev/null || { echo "python3 is required to install moto" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
.venv/bin/moto_server --help >/dev/null

step "installing cargo-deny into ./.tools (dependency licenses, bans, sources)"
DENY_VERSION=0.20.2
if ! .tools/bin/cargo-deny --version 2>/dev/null | grep -q " $DENY_VERSION"; then
  cargo install cargo-deny --locked --version "$DENY_VERSION" --root .tools --quiet
fi

step "asl-validator statemachine.asl.json"
./node_modules/.bin/asl-validator --json-path statemachine.asl.json

step "cfn-lint infra/template.yaml"
.venv/bin/cfn-lint infra/template.yaml

step "SAM transform of infra/template.yaml (aws-sam-translator, offline), then cfn-lint of what CloudFormation receives"
transformed=$(mktemp --suffix=.json)
.venv/bin/python scripts/sam_transform.py infra/template.yaml "$transformed"
.venv/bin/cfn-lint "$transformed"
rm -f "$transformed"

step "checkov infra/template.yaml (every skip is justified next to it in the template)"
.venv/bin/checkov -f infra/template.yaml --framework cloudformation --skip-download --compact --quiet

step "cargo deny check bans licenses sources (advisories need the RustSec database from GitHub, which this CI cannot reach)"
.tools/bin/cargo-deny check --hide-inclusion-graph bans licenses sources

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# A workspace build unifies the features every member asks of campaign-shared, which can
# hide code that compiles only with another member's features. Each feature set a real
# build uses is checked on its own: the CLI (local, http, openai, bedrock), the api
# function (aws, http, bedrock), the other functions (aws, bedrock).
for package in campaign-cli campaign-api campaign-tasks; do
  step "cargo check -p $package (its own features, as it is built)"
  cargo check --quiet -p "$package"
done

# No separate `cargo build --bins`: the tests that spawn `campaign` or a function build the
# binaries themselves (campaign_cli::runtime_api::binary), as they do for a plain
# `cargo test --workspace` on a fresh clone — so this run proves that path too.
step "cargo test --workspace (builds the binaries the tests spawn on first use)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "\ntotal: %d passed, %d failed\n", p, f; if (p == 0) exit 1 }' "$log"
