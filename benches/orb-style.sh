#!/usr/bin/env bash
# The anchor for the pipeline benchmark: build → push → register → update the
# way the CircleCI aws-ecr and aws-ecs orbs do it, with the docker and aws CLIs.
#
#   aws-ecr orb, ecr-login:   docker logout <registry>;
#                             aws ecr get-login-password | docker login --username AWS --password-stdin <registry>
#   aws-ecr orb, build/push:  docker build -f <context>/Dockerfile -t <uri>:<tag> <context>; docker push <uri>:<tag>
#   aws-ecs orb, update-service:
#                             aws ecs describe-task-definition --task-definition <family> --include TAGS
#                             → set the container's image, keep the rest
#                             → aws ecs register-task-definition → aws ecs update-service
#
# Deliberate differences, all in the anchor's favour:
#   - the orb edits the task definition with 14 Python processes (update_container_defs.py
#     plus one get_task_dfn_val.py per field); here one jq does it;
#   - the docker CLI uses the classic builder (DOCKER_BUILDKIT=0), the same engine
#     endpoint shipit uses; the current orb runs `docker buildx build --push`;
#   - the aws-cli orb's per-job install and `aws configure set` calls are not run.
#
# usage: benches/orb-style.sh <context-dir> <repository-uri> <tag> <family> <cluster> <service> <container>
# Prints the registered task definition ARN. ORB_STEPS=<file> appends "<step> <epoch seconds>" lines.
# Run it with DOCKER_CONFIG pointing at a throwaway directory: `docker login` writes the token there.
set -euo pipefail
[ $# -eq 7 ] || { sed -n '2,22p' "$0" >&2; exit 2; }
ctx=$1 uri=$2 tag=$3 family=$4 cluster=$5 service=$6 container=$7
registry=${uri%%/*}
mark() { if [ -n "${ORB_STEPS:-}" ]; then echo "$1 $EPOCHREALTIME" >> "$ORB_STEPS"; fi; }

mark start
docker logout "$registry" >/dev/null
aws ecr get-login-password | docker login --username AWS --password-stdin "$registry" >/dev/null
mark login
DOCKER_BUILDKIT=0 docker build -f "$ctx/Dockerfile" -t "$uri:$tag" "$ctx" >/dev/null
mark build
docker push "$uri:$tag" >/dev/null
mark push

previous=$(aws ecs describe-task-definition --task-definition "$family" --include TAGS --output json)
# The RegisterTaskDefinition input: the previous revision without its read-only
# fields, the container's image swapped, its tags carried over.
input=$(jq -c --arg container "$container" --arg image "$uri:$tag" '
  (.tags // []) as $tags
  | .taskDefinition
  | del(.taskDefinitionArn, .revision, .status, .requiresAttributes, .compatibilities,
        .registeredAt, .registeredBy, .deregisteredAt)
  | .containerDefinitions |= map(if .name == $container then .image = $image else . end)
  | if ($tags | length) > 0 then .tags = $tags else . end' <<<"$previous")
revision=$(aws ecs register-task-definition --cli-input-json "$input" \
  --output text --query 'taskDefinition.taskDefinitionArn')
mark register
aws ecs update-service --cluster "$cluster" --service "$service" --task-definition "$revision" \
  --output text --query service.taskDefinition >/dev/null
mark update
echo "$revision"
