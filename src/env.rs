//! Every environment variable shipit reads, declared once, with its meaning.
//! The README's reference is checked against [`ALL`] by a test.

/// `(name, meaning)` for every variable shipit reads itself. The AWS SDK reads
/// its own (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials …); so does bollard (`DOCKER_HOST`).
pub const ALL: &[(&str, &str)] = &[
    (
        SHIPIT_CONFIG,
        "path of the config file (default: shipit.toml in the repository)",
    ),
    (SHIPIT_SHA, "the commit to ship (same as --sha)"),
    (SHIPIT_REPOSITORY, "ECR repository name"),
    (
        SHIPIT_DOCKERFILE,
        "Dockerfile path, relative to the repository",
    ),
    (
        SHIPIT_CONTEXT,
        "build context directory, relative to the repository",
    ),
    (SHIPIT_TARGET, "build target stage"),
    (
        SHIPIT_TAG_FORMAT,
        "`full` or `short` commit SHA as the image tag",
    ),
    (SHIPIT_EXTRA_TAGS, "comma-separated extra tags to push"),
    (
        SHIPIT_BUILDER,
        "`auto` (default), `buildkit` or `classic`: the engine's builder",
    ),
    (
        SHIPIT_NO_CACHE_FROM,
        "`true`: do not reuse the layers of the image in ECR (same as --no-cache-from)",
    ),
    (SHIPIT_CLUSTER, "ECS cluster name or ARN"),
    (SHIPIT_SERVICE, "ECS service name or ARN"),
    (
        SHIPIT_CONTAINERS,
        "comma-separated container names whose image changes",
    ),
    (
        SHIPIT_TASK_DEFINITION,
        "task definition JSON file in the repository (instead of the service's current revision)",
    ),
    (
        SHIPIT_POLL_INTERVAL,
        "how often the rollout is polled, e.g. `5s`",
    ),
    (
        SHIPIT_TIMEOUT,
        "deadline for the rollout verdict, e.g. `15m`",
    ),
    (
        SHIPIT_ROLLBACK_TIMEOUT,
        "deadline for the rollback to become healthy",
    ),
    (
        SHIPIT_ON_INTERRUPT,
        "`rollback` (default) or `leave`: what SIGINT/SIGTERM during the watch does",
    ),
    (
        SHIPIT_SETTLE,
        "how long every healthy criterion must hold before the verdict, e.g. `10s`",
    ),
    (
        SHIPIT_UNTIL,
        "how long to wait: `updated`, `healthy` or `completed`",
    ),
    (SHIPIT_OUTPUT, "`auto`, `human`, `lines` or `json`"),
    (
        SHIPIT_LOG,
        "tracing filter for debug logs of shipit and the AWS SDK, e.g. `debug` (default: off)",
    ),
    (
        GITHUB_SHA,
        "commit SHA in GitHub Actions (used when --sha is absent)",
    ),
    (
        CIRCLE_SHA1,
        "commit SHA in CircleCI (used when --sha and GITHUB_SHA are absent)",
    ),
    (
        GITHUB_ACTIONS,
        "`true` enables GitHub Actions annotations, step summary and outputs",
    ),
    (
        GITHUB_STEP_SUMMARY,
        "file the Markdown step summary is appended to (GitHub Actions)",
    ),
    (
        GITHUB_OUTPUT,
        "file the step outputs are appended to (GitHub Actions)",
    ),
    (
        GITHUB_SERVER_URL,
        "with GITHUB_REPOSITORY, the `org.opencontainers.image.source` label",
    ),
    (GITHUB_REPOSITORY, "see GITHUB_SERVER_URL"),
    (
        CIRCLE_REPOSITORY_URL,
        "the `org.opencontainers.image.source` label in CircleCI",
    ),
    (
        CI,
        "any value selects plain timestamped lines instead of progress bars",
    ),
    (NO_COLOR, "any value disables colour"),
    (
        DOCKER_HOST,
        "the Docker engine (read by bollard; shipit names it in errors), default `unix:///var/run/docker.sock`",
    ),
    (
        DOCKER_BUILDKIT,
        "as for `docker build`: `0` the classic builder, `1` BuildKit; below `--builder`, `SHIPIT_BUILDER` and `[image] builder`",
    ),
];

pub const SHIPIT_CONFIG: &str = "SHIPIT_CONFIG";
pub const SHIPIT_SHA: &str = "SHIPIT_SHA";
pub const SHIPIT_REPOSITORY: &str = "SHIPIT_REPOSITORY";
pub const SHIPIT_DOCKERFILE: &str = "SHIPIT_DOCKERFILE";
pub const SHIPIT_CONTEXT: &str = "SHIPIT_CONTEXT";
pub const SHIPIT_TARGET: &str = "SHIPIT_TARGET";
pub const SHIPIT_TAG_FORMAT: &str = "SHIPIT_TAG_FORMAT";
pub const SHIPIT_EXTRA_TAGS: &str = "SHIPIT_EXTRA_TAGS";
pub const SHIPIT_BUILDER: &str = "SHIPIT_BUILDER";
pub const SHIPIT_NO_CACHE_FROM: &str = "SHIPIT_NO_CACHE_FROM";
pub const SHIPIT_CLUSTER: &str = "SHIPIT_CLUSTER";
pub const SHIPIT_SERVICE: &str = "SHIPIT_SERVICE";
pub const SHIPIT_CONTAINERS: &str = "SHIPIT_CONTAINERS";
pub const SHIPIT_TASK_DEFINITION: &str = "SHIPIT_TASK_DEFINITION";
pub const SHIPIT_POLL_INTERVAL: &str = "SHIPIT_POLL_INTERVAL";
pub const SHIPIT_TIMEOUT: &str = "SHIPIT_TIMEOUT";
pub const SHIPIT_ROLLBACK_TIMEOUT: &str = "SHIPIT_ROLLBACK_TIMEOUT";
pub const SHIPIT_ON_INTERRUPT: &str = "SHIPIT_ON_INTERRUPT";
pub const SHIPIT_SETTLE: &str = "SHIPIT_SETTLE";
pub const SHIPIT_UNTIL: &str = "SHIPIT_UNTIL";
pub const SHIPIT_OUTPUT: &str = "SHIPIT_OUTPUT";
pub const SHIPIT_LOG: &str = "SHIPIT_LOG";
pub const GITHUB_SHA: &str = "GITHUB_SHA";
pub const CIRCLE_SHA1: &str = "CIRCLE_SHA1";
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";
pub const GITHUB_OUTPUT: &str = "GITHUB_OUTPUT";
pub const GITHUB_SERVER_URL: &str = "GITHUB_SERVER_URL";
pub const GITHUB_REPOSITORY: &str = "GITHUB_REPOSITORY";
pub const CIRCLE_REPOSITORY_URL: &str = "CIRCLE_REPOSITORY_URL";
pub const CI: &str = "CI";
pub const NO_COLOR: &str = "NO_COLOR";
pub const DOCKER_HOST: &str = "DOCKER_HOST";
pub const DOCKER_BUILDKIT: &str = "DOCKER_BUILDKIT";

/// A non-empty variable's value.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_readme_documents_every_variable_shipit_reads() {
        let readme = include_str!("../README.md");
        let missing: Vec<&str> = super::ALL
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !readme.contains(name))
            .collect();
        assert!(missing.is_empty(), "README lacks {missing:?}");
    }
}
