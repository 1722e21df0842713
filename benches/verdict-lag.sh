#!/usr/bin/env bash
# Verdict lag on the local stack: see examples/bench_verdict.rs.
#   benches/verdict-lag.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/local-stack up
eval "$(scripts/local-stack env)"
cargo build --release --quiet --bin shipit --example bench_verdict
app=$(mktemp -d)
trap 'rm -rf "$app"' EXIT
cp -r examples/app/. "$app/" && cp "$SHIPIT_BUSYBOX" "$app/busybox"
target/release/examples/bench_verdict "$PWD/target/release/shipit" "$app" "${1:-3}"
