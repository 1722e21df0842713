#!/usr/bin/env bash
# Issue 14: how long installing shipit takes on a fresh CI runner, the action's
# way (scripts/install.sh from a release) against `cargo install --path .`.
#
#   benches/install-time.sh [BINARY] [RUNS]
#
# BINARY is the shipit to publish in the local release (default: a release
# build, $CARGO_TARGET_DIR/release/shipit, built if missing). The script lays
# out a release directory exactly as cargo-dist does (shipit-<target>.tar.gz
# holding shipit-<target>/shipit, README.md and CHANGELOG.md, plus its .sha256),
# serves it on 127.0.0.1 with python3's http.server, and times RUNS installs
# (default 10) from it with hyperfine, each into an empty directory, over
# loopback HTTP and as a file:// URL. Then, unless SKIP_CARGO=1, one
# `cargo install --locked --path .` into a new root with a new, empty target
# directory (what a runner without a cache compiles; the registry's crates are
# assumed downloaded already), timed with GNU time. Output in $OUT (default
# .stack/bench/install-<UTC time>/).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${2:-10}
OUT=${OUT:-$ROOT/.stack/bench/install-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
log() { printf 'bench: %s\n' "$*" >&2; }

for tool in hyperfine python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { log "needs $tool (Debian: hyperfine, python3, time)"; exit 2; }
done

binary=${1:-${CARGO_TARGET_DIR:-target}/release/shipit}
if [ ! -x "$binary" ]; then
  log "building $binary (cargo build --release)"
  cargo build --release --locked
fi
version=$("$binary" --version | cut -d ' ' -f 2)
target=$(sh scripts/install.sh --print-target)
tag=v$version

# The release directory, as cargo-dist makes it.
rel=$OUT/release/$tag
mkdir -p "$rel/shipit-$target"
cp "$binary" "$rel/shipit-$target/shipit"
cp README.md CHANGELOG.md "$rel/shipit-$target/"
tar -C "$rel" -czf "$rel/shipit-$target.tar.gz" "shipit-$target"
rm -r "${rel:?}/shipit-$target"
(cd "$rel" && printf '%s *%s\n' "$(sha256sum "shipit-$target.tar.gz" | cut -d ' ' -f 1)" "shipit-$target.tar.gz" \
  >"shipit-$target.tar.gz.sha256")
log "release $tag for $target: $(du -h "$rel/shipit-$target.tar.gz" | cut -f 1) archive, $(du -h "$binary" | cut -f 1) binary"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$OUT/release" "$port" >"$OUT/http.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done

install="sh scripts/install.sh --version $tag --to $OUT/bin"
hyperfine --runs "$RUNS" --warmup 1 --prepare "rm -rf $OUT/bin" --export-json "$OUT/script.json" \
  -n "install.sh, loopback http" "$install --base-url http://127.0.0.1:$port/$tag" \
  -n "install.sh, file://" "$install --base-url file://$rel"
"$OUT/bin/shipit" --version

if [ "${SKIP_CARGO:-0}" != 1 ]; then
  log "cargo install --locked --path . with an empty target directory (minutes)"
  uptime | tee "$OUT/load-before.txt"
  /usr/bin/time -v -o "$OUT/cargo-install.time" env CARGO_TARGET_DIR="$OUT/cargo-target" \
    cargo install --locked --path . --root "$OUT/cargo-root" >"$OUT/cargo-install.log" 2>&1
  uptime | tee "$OUT/load-after.txt"
  rm -rf "$OUT/cargo-target"
  grep -E 'Elapsed|User time|System time' "$OUT/cargo-install.time"
fi
log "results in $OUT"
