#!/usr/bin/env bash
# Benchmark: stream a large build context (default 1 GiB) to the same Docker
# engine with `shipit build` and with `docker build` (classic builder), in one
# run, alternating, and report wall time, peak RSS and the ratio.
#
#   benches/context-upload.sh [size-MiB] [rounds]
# Needs the local stack's engine (scripts/local-stack up) and GNU time.
# The binary is $SHIPIT_BIN, else $CARGO_TARGET_DIR/release/shipit (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
ROUNDS=${2:-3}
BIN=${SHIPIT_BIN:-${CARGO_TARGET_DIR:-target}/release/shipit}
eval "$(scripts/local-stack env)"
command -v /usr/bin/time >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
[ -x "$BIN" ] || cargo build --release --quiet --bin shipit

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
printf 'FROM scratch\nCOPY small.txt /small.txt\n' > "$ctx/Dockerfile"
echo hi > "$ctx/small.txt"
# Incompressible data, in 64 MiB files, so nothing is shortcut.
for i in $(seq 1 $((SIZE_MIB / 64))); do head -c $((64 << 20)) /dev/urandom > "$ctx/blob-$i"; done

measure() { # name, command...
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$ctx/time" "$@" >/dev/null 2>"$ctx/err" || { cat "$ctx/err" >&2; exit 1; }
  read -r wall rss < "$ctx/time"
  echo "$name $wall $rss"
}

results=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
  measure shipit "$BIN" build -C "$ctx" --sha "$(printf '%040d' "$round")" --repository bench-context --output lines >> "$results"
  measure docker env DOCKER_BUILDKIT=0 docker build -q -t bench-context:docker "$ctx" >> "$results"
done
echo "context: ${SIZE_MIB} MiB, rounds: $ROUNDS, engine: $DOCKER_HOST"
awk '
  { wall[$1] = wall[$1] " " $2; rss[$1] = (rss[$1] > $3 ? rss[$1] : $3); n[$1]++; sum[$1] += $2 }
  END {
    for (k in n) printf "%-7s wall s:%s  (mean %.2f)  peak RSS: %.1f MiB\n", k, wall[k], sum[k]/n[k], rss[k]/1024;
    printf "ratio shipit/docker (mean wall): %.2f\n", (sum["shipit"]/n["shipit"]) / (sum["docker"]/n["docker"]);
  }' "$results"
