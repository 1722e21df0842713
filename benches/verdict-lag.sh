#!/usr/bin/env bash
# Verdict lag on the local stack: see examples/bench_verdict.rs.
#   benches/verdict-lag.sh [rounds]      (PROFILE=debug to skip the release build)
# Binaries are taken from $CARGO_TARGET_DIR (default target/), like cargo does.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/local-stack up
eval "$(scripts/local-stack env)"
profile=${PROFILE:-release}
if [ "$profile" = release ]; then cargo build --release --quiet --bin shipit --example bench_verdict; else cargo build --quiet --bin shipit --example bench_verdict; fi
bin=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/$profile
app=$(mktemp -d)
trap 'rm -rf "$app"' EXIT
cp -r examples/app/. "$app/" && rm -f "$app/busybox" && cp "$SHIPIT_BUSYBOX" "$app/busybox"
"$bin/examples/bench_verdict" "$bin/shipit" "$app" "${1:-3}"
