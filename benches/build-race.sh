#!/usr/bin/env bash
# N `shipit push` runs of one app at once (identical contexts, so shared cache
# keys) into one repository with the layer cache on, for R rounds; after each
# round, whether the Docker engine is still alive. On Docker 20.10 without
# builds taking turns, round 1 killed dockerd ("fatal error: concurrent map
# writes", moby/buildkit#2889; TESTING.md, "Docker 20.10 crashes …").
#
#   benches/build-race.sh <shipit binary> [N=12] [R=4] [repository]
#
# Needs the local stack (scripts/local-stack up). Exits 1 if the engine died.
set -u
bin=$(realpath "$1") n=${2:-12} rounds=${3:-4} repo=${4:-shipit-race-$RANDOM}
cd "$(dirname "$0")/.." || exit 2
eval "$(scripts/local-stack env)"
app=$(mktemp -d)
trap 'rm -rf "$app"' EXIT
cp -r examples/app/. "$app" && rm -f "$app/busybox" && cp "$SHIPIT_BUSYBOX" "$app/busybox"
sha() { printf '%040x' "$1"; }
"$bin" push -C "$app" --sha "$(sha $((RANDOM * 1000)))" --repository "$repo" --create-repository \
  --output json >/dev/null 2>"$app/seed.err" || { echo "the first push failed:"; tail -3 "$app/seed.err"; exit 2; }
failed=0 waited=0
for r in $(seq 1 "$rounds"); do
  pids=()
  for i in $(seq 1 "$n"); do
    "$bin" push -C "$app" --sha "$(sha $((r * 1000 + i + RANDOM * 100000)))" --repository "$repo" \
      --output json >/dev/null 2>"$app/p$r-$i.err" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
  waited=$((waited + $(cat "$app"/p"$r"-*.err | grep -c "waiting for another shipit build")))
  if ! docker info >/dev/null 2>&1; then
    echo "round $r: the engine DIED; pushes failed so far: $failed"
    grep -m1 "fatal error" .stack/dockerd.log 2>/dev/null
    exit 1
  fi
  echo "round $r: the engine is alive; pushes failed so far: $failed of $((r * n)); builds that waited their turn: $waited"
done
