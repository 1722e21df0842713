#!/usr/bin/env bash
# The orb's deploy command: turn its parameters (PARAM_* variables, named and
# formatted as in aws-ecr/build_and_push_image and aws-ecs/deploy_service_update)
# into one `shipit deploy` command line, then run it. A parameter shipit cannot
# honour is an error (exit 2) before anything runs, never silently dropped.
# Inlined into the orb by `circleci orb pack`: no heredocs or here-strings.
set -euo pipefail

fail() {
  printf 'error: %s\n' "$1" >&2
  printf 'hint: %s\n' "$2" >&2
  exit 2
}
note() { printf 'shipit orb: %s\n' "$*" >&2; }

# ${NAME} and $NAME in a parameter are replaced by the environment variable, as
# the aws-ecs orb does (e.g. value=${CIRCLE_SHA1}); an unset one is empty.
expand() {
  local rest=$1 out='' name
  # shellcheck disable=SC2016 # a regular expression, not an expansion
  local re='^(([^$]|\$[^A-Za-z_{])*)\$(\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))(.*)$'
  while [[ $rest =~ $re ]]; do
    out+=${BASH_REMATCH[1]}
    name=${BASH_REMATCH[4]:-${BASH_REMATCH[5]}}
    out+=${!name-}
    rest=${BASH_REMATCH[6]}
  done
  printf '%s' "$out$rest"
}

# The orb's list format: comma-separated key=value fields, a `container=` field
# starting each container's group (groups may also be separated by spaces).
fields() {
  local spec
  spec=$(expand "$1" | sed -E 's/[[:space:]]+container=/,container=/g')
  local IFS=,
  set -f
  # shellcheck disable=SC2206 # split on commas, globbing off
  FIELDS=($spec)
  set +f
}

args=(deploy)
flag() { if [ -n "$2" ]; then args+=("$1" "$2"); fi; }
switch() { if [ "$2" = true ]; then args+=("$1"); fi; }

flag --sha "$(expand "${PARAM_SHA:-}")"
flag --region "$(expand "${PARAM_REGION:-}")"
flag --repository "$(expand "${PARAM_REPO:-}")"
flag --dockerfile "$(expand "${PARAM_DOCKERFILE:-}")"
flag --context "$(expand "${PARAM_PATH:-}")"
switch --create-repository "${PARAM_CREATE_REPO:-false}"
switch --scan-on-push "${PARAM_REPO_SCAN_ON_PUSH:-false}"
if [ "${PARAM_IMAGE_TAG_MUTABILITY:-MUTABLE}" = IMMUTABLE ]; then args+=(--immutable-tags); fi
flag --cluster "$(expand "${PARAM_CLUSTER:-}")"
flag --service "$(expand "${PARAM_SERVICE_NAME:-}")"

# before: one --before per non-blank line, as written (no ${VAR} expansion).
while IFS= read -r step; do
  if [ -n "${step//[[:space:]]/}" ]; then args+=(--before "$step"); fi
done < <(printf '%s\n' "${PARAM_BEFORE:-}")

# extra_build_args: only --build-arg KEY=VALUE (shipit runs no docker CLI).
read -r -a build_args < <(expand "${PARAM_EXTRA_BUILD_ARGS:-}") || true
i=0
while [ "$i" -lt "${#build_args[@]}" ]; do
  word=${build_args[$i]}
  case $word in
    --build-arg=*) args+=(--build-arg "${word#--build-arg=}"); i=$((i + 1)) ;;
    --build-arg)
      if [ $((i + 1)) -ge "${#build_args[@]}" ]; then fail "extra_build_args: --build-arg needs KEY=VALUE" "write --build-arg KEY=VALUE"; fi
      args+=(--build-arg "${build_args[$((i + 1))]}"); i=$((i + 2)) ;;
    *) fail "extra_build_args: \`$word\` is not supported: shipit builds through the Docker Engine API, not the docker CLI" \
      "only --build-arg KEY=VALUE is taken; for a target stage use extra_args: --target NAME" ;;
  esac
done

# container_image_name_updates: which containers get the new image. shipit
# always sets the image it built and pushed (<repository>:<commit>).
fields "${PARAM_CONTAINER_IMAGE_NAME_UPDATES:-}"
container=''
for field in "${FIELDS[@]}"; do
  case $field in
    '') ;;
    container=*) container=${field#container=}; args+=(--container "$container") ;;
    tag=* | image-and-tag=* | image=*)
      if [ -z "$container" ]; then fail "container_image_name_updates: \`$field\` comes before any container=" "write container=NAME,tag=TAG"; fi
      note "container_image_name_updates: \`$field\` for $container is not used: shipit sets the image it pushes, tagged with the commit"
      ;;
    *) fail "container_image_name_updates: unknown field \`$field\`" "the format is container=NAME,tag=TAG (shipit uses only the container names)" ;;
  esac
done

# container_env_var_updates: container=C,name=N,value=V,... -> --env C:N=V
# container_secret_updates:  container=C,name=N,valueFrom=ARN,... -> --secret C:N=ARN
pairs() { # PARAMETER VALUE_KEY FLAG SPEC
  local parameter=$1 value_key=$2 flag=$3 container='' name='' field
  fields "$4"
  for field in "${FIELDS[@]}"; do
    case $field in
      '') ;;
      container=*) container=${field#container=}; name='' ;;
      name=*) name=${field#name=} ;;
      "$value_key"=*)
        if [ -z "$container" ] || [ -z "$name" ]; then
          fail "$parameter: \`$field\` has no container= and name= before it" "write container=NAME,name=KEY,$value_key=VALUE"
        fi
        args+=("$flag" "$container:$name=${field#"$value_key"=}")
        name=''
        ;;
      *) fail "$parameter: unknown field \`$field\`" "write container=NAME,name=KEY,$value_key=VALUE" ;;
    esac
  done
  if [ -n "$name" ]; then fail "$parameter: name=$name has no $value_key=" "write container=NAME,name=KEY,$value_key=VALUE"; fi
}
pairs container_env_var_updates value --env "${PARAM_CONTAINER_ENV_VAR_UPDATES:-}"
pairs container_secret_updates valueFrom --secret "${PARAM_CONTAINER_SECRET_UPDATES:-}"

# container_docker_label_updates: container=C,KEY=VALUE,... -> --docker-label C:KEY=VALUE
fields "${PARAM_CONTAINER_DOCKER_LABEL_UPDATES:-}"
container=''
for field in "${FIELDS[@]}"; do
  case $field in
    '') ;;
    container=*) container=${field#container=} ;;
    *=*)
      if [ -z "$container" ]; then fail "container_docker_label_updates: \`$field\` comes before any container=" "write container=NAME,KEY=VALUE"; fi
      args+=(--docker-label "$container:$field")
      ;;
    *) fail "container_docker_label_updates: \`$field\` is not KEY=VALUE" "write container=NAME,KEY=VALUE" ;;
  esac
done

switch --force-new-deployment "${PARAM_FORCE_NEW_DEPLOYMENT:-false}"

# verify_revision_is_deployed: false = return once the service is updated.
# max_poll_attempts x poll_interval: the deadline (timeout wins when given).
if [ "${PARAM_VERIFY_REVISION_IS_DEPLOYED:-true}" = false ]; then args+=(--until updated); fi
interval=${PARAM_POLL_INTERVAL:-0}
attempts=${PARAM_MAX_POLL_ATTEMPTS:-0}
case "$interval$attempts" in *[!0-9]*) fail "poll_interval and max_poll_attempts must be whole numbers" "e.g. poll_interval: 10, max_poll_attempts: 60" ;; esac
if [ "$interval" -gt 0 ]; then args+=(--poll-interval "${interval}s"); fi
timeout=$(expand "${PARAM_TIMEOUT:-}")
if [ -n "$timeout" ]; then
  args+=(--timeout "$timeout")
elif [ "$attempts" -gt 0 ]; then
  args+=(--timeout "$((attempts * (interval > 0 ? interval : 5)))s")
fi
switch --no-rollback "${PARAM_NO_ROLLBACK:-false}"
flag --output "${PARAM_OUTPUT:-}"

# extra_args: any other shipit deploy flags, split on spaces.
read -r -a extra < <(expand "${PARAM_EXTRA_ARGS:-}") || true
args+=(${extra[@]+"${extra[@]}"})

printf 'shipit orb: shipit'; printf ' %q' "${args[@]}"; printf '\n'
exec "${SHIPIT_BIN:-shipit}" "${args[@]}"
