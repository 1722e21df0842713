#!/usr/bin/env bash
# AWS credentials without stored keys: CircleCI's OIDC token for this job goes
# to a file only the job's user can read, and the AWS SDK inside shipit reads
# AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN and calls
# sts:AssumeRoleWithWebIdentity itself, refreshing as needed. The file holds the
# short-lived OIDC token, never AWS credentials.
set -euo pipefail
if [ -z "${CIRCLE_OIDC_TOKEN_V2:-}" ]; then
  printf 'error: CIRCLE_OIDC_TOKEN_V2 is not set\n' >&2
  echo "hint: CircleCI issues the OIDC token only to jobs that use a context: add 'context: <any context>' to the job" >&2
  exit 2
fi
token_file=$HOME/.shipit-web-identity-token
(umask 077 && printf '%s' "$CIRCLE_OIDC_TOKEN_V2" > "$token_file")
session=${PARAM_ROLE_SESSION_NAME:-circleci-${CIRCLE_PROJECT_REPONAME:-job}-${CIRCLE_BUILD_NUM:-0}}
{
  printf 'export AWS_ROLE_ARN=%q\n' "$PARAM_ROLE_ARN"
  printf 'export AWS_WEB_IDENTITY_TOKEN_FILE=%q\n' "$token_file"
  printf 'export AWS_ROLE_SESSION_NAME=%q\n' "$session"
} >> "$BASH_ENV"
echo "shipit orb: AWS credentials: role $PARAM_ROLE_ARN through CircleCI OIDC" >&2
