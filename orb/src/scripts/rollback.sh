#!/usr/bin/env bash
# The orb's rollback command: `shipit rollback` from PARAM_* variables.
# Inlined into the orb by `circleci orb pack`: no heredocs or here-strings.
set -euo pipefail
args=(rollback)
flag() { if [ -n "$2" ]; then args+=("$1" "$2"); fi; }
flag --region "${PARAM_REGION:-}"
flag --cluster "${PARAM_CLUSTER:-}"
flag --service "${PARAM_SERVICE_NAME:-}"
flag --to "${PARAM_TO:-}"
flag --output "${PARAM_OUTPUT:-}"
read -r -a extra < <(printf '%s' "${PARAM_EXTRA_ARGS:-}") || true
args+=(${extra[@]+"${extra[@]}"})
printf 'shipit orb: shipit'; printf ' %q' "${args[@]}"; printf '\n'
exec "${SHIPIT_BIN:-shipit}" "${args[@]}"
