# shellcheck shell=bash
# Progress lines for the long, otherwise quiet steps of scripts/local-stack,
# scripts/demo and scripts/test. Sourced (bash), not run.
#
#   with_progress LABEL LOG TOTAL COMMAND...
#     Runs COMMAND with its output in LOG. Every $SHIPIT_PROGRESS_EVERY seconds
#     (60 by default) prints one line to stderr: "LABEL: 212/657 crates
#     compiled, 9m00s elapsed" (cargo's per-crate lines in LOG so far). TOTAL is
#     a number, the name of a function that prints it once it can be known, or
#     empty. On failure prints the end of LOG; returns COMMAND's status.
#
#   heartbeat_start LABEL LOG / heartbeat_stop
#     For a step whose output is shown as it comes (cargo test | tee LOG): a
#     line whenever LOG has been silent for $SHIPIT_PROGRESS_EVERY seconds,
#     with the tests finished so far.
#
#   cargo_total ARGS...
#     The number of packages `cargo tree ARGS` lists (what a build of them
#     compiles at most), or nothing when cargo cannot tell yet.

SHIPIT_PROGRESS_EVERY=${SHIPIT_PROGRESS_EVERY:-60}

progress_clock() {
  local secs=$1
  if [ "$secs" -ge 60 ]; then printf '%dm%02ds' $((secs / 60)) $((secs % 60)); else printf '%ds' "$secs"; fi
}

# Cargo's `Compiling` lines, and `Checking` for a check build (clippy).
compiled_count() { grep -c '^ *\(Compiling\|Checking\) ' "$1" 2>/dev/null || true; }

cargo_total() {
  timeout 20 cargo tree --locked --offline --prefix none --format '{p}' "$@" 2>/dev/null \
    | sed 's/ (\*)$//; s/ (proc-macro)$//' | sort -u | grep -c . || true
}

# The watcher: a line every SHIPIT_PROGRESS_EVERY seconds until the file $5 exists.
progress_watch() {
  local label=$1 log=$2 total=$3 started=$4 flag=$5 known='' waited=0 n
  case "$total" in '' | *[!0-9]*) ;; *) known=$total ;; esac
  # Ends with the script too ($$ is the script's shell, even in this subshell).
  while [ ! -e "$flag" ] && kill -0 "$$" 2>/dev/null; do
    sleep 1
    waited=$((waited + 1))
    [ "$waited" -ge "$SHIPIT_PROGRESS_EVERY" ] || continue
    waited=0
    n=$(compiled_count "$log")
    # The total is asked for once compiling has begun (the sources are downloaded by then).
    if [ -z "$known" ] && [ -n "$total" ] && [ "${n:-0}" -gt 0 ]; then known=$("$total") || known=''; fi
    [ "$known" = 0 ] && known=''
    printf '%s: %s%s crates compiled, %s elapsed\n' "$label" "${n:-0}" "${known:+/$known}" \
      "$(progress_clock $(($(date +%s) - started)))" >&2
  done
}

with_progress() {
  local label=$1 log=$2 total=$3 started status=0 flag watcher
  shift 3
  started=$(date +%s)
  flag=$(mktemp -u)
  : >"$log"
  progress_watch "$label" "$log" "$total" "$started" "$flag" &
  watcher=$!
  "$@" >>"$log" 2>&1 || status=$?
  touch "$flag"
  wait "$watcher" 2>/dev/null || true
  rm -f "$flag"
  if [ "$status" = 0 ]; then
    printf '%s: done in %s (%s crates compiled)\n' "$label" "$(progress_clock $(($(date +%s) - started)))" \
      "$(compiled_count "$log")" >&2
  else
    # What went wrong, without the per-crate lines.
    grep -v '^ *\(Compiling\|Checking\|Downloaded\|Downloading\|Fresh\) ' "$log" | tail -200 >&2 || true
    printf '%s: failed (exit %s) after %s; full log: %s\n' "$label" "$status" \
      "$(progress_clock $(($(date +%s) - started)))" "$log" >&2
  fi
  return "$status"
}

heartbeat_watch() {
  local label=$1 log=$2 started=$3 flag=$4 size last='' quiet=0 ok failed
  while [ ! -e "$flag" ] && kill -0 "$$" 2>/dev/null; do
    sleep 1
    size=$(wc -c <"$log" 2>/dev/null || echo 0)
    if [ "$size" != "$last" ]; then last=$size; quiet=0; continue; fi
    quiet=$((quiet + 1))
    [ "$quiet" -ge "$SHIPIT_PROGRESS_EVERY" ] || continue
    quiet=0
    ok=$(grep -c '^test .* \.\.\. ok$' "$log" 2>/dev/null || true)
    failed=$(grep -c '^test .* \.\.\. FAILED$' "$log" 2>/dev/null || true)
    printf '%s: no output for %ss; %s passed and %s failed so far, %s elapsed\n' "$label" "$SHIPIT_PROGRESS_EVERY" "${ok:-0}" \
      "${failed:-0}" "$(progress_clock $(($(date +%s) - started)))" >&2
  done
}

heartbeat_start() {
  HEARTBEAT_DONE=$(mktemp -u)
  heartbeat_watch "$1" "$2" "$(date +%s)" "$HEARTBEAT_DONE" &
  HEARTBEAT_PID=$!
}

heartbeat_stop() {
  [ -n "${HEARTBEAT_PID:-}" ] || return 0
  touch "$HEARTBEAT_DONE"
  wait "$HEARTBEAT_PID" 2>/dev/null || true
  rm -f "$HEARTBEAT_DONE"
  HEARTBEAT_PID=''
}
