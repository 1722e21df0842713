#!/usr/bin/env bash
# Benchmark (issue 14): the layer cache from ECR on a cold engine. A Dockerfile
# with a slow dependency step (RUN … sleep 5, as `pip install` or `npm ci`
# would be) before the application COPY; each round makes the engine cold
# (the repository's images removed, the BuildKit cache pruned: a fresh CI
# runner), changes one line of the app, and times `shipit push` with the
# cache (the default) and with --no-cache-from, alternating which goes first.
#
#   benches/build-cache.sh [rounds]      default 3
#
# Needs the local stack (scripts/local-stack up) and the docker CLI (only to
# empty the engine between rounds). The binary is $SHIPIT_BIN, else
# $CARGO_TARGET_DIR/release/shipit (default target/), built if missing.
# Prints one line per push and the medians; raw data in $OUT (default a temp dir).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
BIN=${SHIPIT_BIN:-${CARGO_TARGET_DIR:-target}/release/shipit}
OUT=${OUT:-$(mktemp -d)}
SLOW=${SLOW:-5}
eval "$(scripts/local-stack env)"
export CI=true
[ -x "$BIN" ] || cargo build --release --quiet --bin shipit

app=$(mktemp -d)
trap 'rm -rf "$app"' EXIT
cp -r examples/app/. "$app"
cp "${SHIPIT_BUSYBOX:-/bin/busybox}" "$app/busybox"
cat > "$app/Dockerfile" <<EOF
FROM scratch
COPY busybox /bin/busybox
# The slow dependency step.
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep $SLOW && echo dependencies > /dependencies"]
COPY start.sh /start.sh
COPY www /www
EXPOSE 8080
CMD ["/bin/busybox", "sh", "/start.sh"]
EOF
repository=shipit-bench-cache-$(date +%s)-$$
sha() { head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

cold() {
  docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -F "/$repository:" | xargs -r docker rmi -f >/dev/null
  docker builder prune -af >/dev/null
}

push() { # label, extra args…
  local label=$1; shift
  local commit; commit=$(sha)
  echo "app version $commit" > "$app/www/index.html" # the one-line change
  local start end
  start=$(date +%s.%N)
  "$BIN" push -C "$app" --sha "$commit" --repository "$repository" --create-repository \
    --output json "$@" >"$OUT/$label-$commit.out" 2>"$OUT/$label-$commit.err" \
    || { cat "$OUT/$label-$commit.err" >&2; exit 1; }
  end=$(date +%s.%N)
  local cached; cached=$(grep -c '"line":"#[0-9]* CACHED"' "$OUT/$label-$commit.err" || true)
  printf '%s\t%.2f\t%s\n' "$label" "$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')" "$cached" | tee -a "$OUT/rounds.tsv"
}

echo "slow step: sleep $SLOW s; rounds: $ROUNDS; engine: $DOCKER_HOST; raw data: $OUT" >&2
printf 'side\twall_s\tcached_steps\n' >&2
push seed --no-cache-from >/dev/null # the image yesterday's CI pushed
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then
    cold; push cached
    cold; push uncached --no-cache-from
  else
    cold; push uncached --no-cache-from
    cold; push cached
  fi
done
awk -F'\t' '
  $1 == "cached" || $1 == "uncached" { v[$1] = v[$1] " " $2 }
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    c = median(v["cached"]); u = median(v["uncached"])
    printf "cached   (default):     wall s:%s  median %.2f\n", v["cached"], c
    printf "uncached (--no-cache-from): wall s:%s  median %.2f\n", v["uncached"], u
    printf "ratio cached/uncached (medians): %.2f\n", c / u
  }' "$OUT/rounds.tsv"
