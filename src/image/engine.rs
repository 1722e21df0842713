//! The container engine seam, and its Docker Engine API adapter (bollard).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, PushImageOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::{BuildContext, ContextStats};
use crate::ecr::RegistryAuth;
use crate::error::{Error, Result};
use crate::report::{Event, Report};

/// What to build: the context plus everything the engine is told.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// Local name:tag the image gets.
    pub tag: String,
    pub build_args: Vec<(String, String)>,
    pub target: Option<String>,
    pub labels: Vec<(String, String)>,
}

#[async_trait]
pub trait ContainerEngine: Send + Sync {
    /// Builds, streaming the context and the log; returns the image id.
    async fn build(
        &self,
        spec: &BuildSpec,
        context: BuildContext,
        report: &Report,
    ) -> Result<String>;
    /// Adds `repository:tag` to an image.
    async fn tag(&self, image: &str, repository: &str, tag: &str) -> Result<()>;
    /// Pushes `repository:tag` with credentials passed in memory; returns the digest.
    async fn push(
        &self,
        repository: &str,
        tag: &str,
        auth: &RegistryAuth,
        report: &Report,
    ) -> Result<String>;
}

pub struct DockerEngine {
    docker: Docker,
}

impl DockerEngine {
    /// Connects (DOCKER_HOST or the local socket) and negotiates the API version,
    /// so an older engine (e.g. API 1.41) is spoken to in its own version.
    pub async fn connect() -> Result<Self> {
        let unreachable = |cause: &dyn std::fmt::Display| {
            let host = crate::env::var(crate::env::DOCKER_HOST)
                .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
            Error::bad_input(format!("cannot reach the Docker engine at {host}"))
                .cause(cause.to_string())
                .hint("start the Docker engine (or `scripts/local-stack up`), or point DOCKER_HOST at a running one")
        };
        let docker = Docker::connect_with_defaults().map_err(|err| unreachable(&err))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|err| unreachable(&err))?;
        docker.ping().await.map_err(|err| unreachable(&err))?;
        Ok(Self { docker })
    }
}

#[async_trait]
impl ContainerEngine for DockerEngine {
    async fn build(
        &self,
        spec: &BuildSpec,
        context: BuildContext,
        report: &Report,
    ) -> Result<String> {
        let build_args: HashMap<&str, &str> = spec
            .build_args
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let labels: HashMap<&str, &str> = spec
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(context.dockerfile_name())
            .t(&spec.tag)
            .rm(true)
            .forcerm(true)
            .buildargs(&build_args)
            .labels(&labels)
            .version(BuilderVersion::BuilderV1);
        if let Some(target) = &spec.target {
            options = options.target(target);
        }
        let stats = Arc::new(ContextStats::default());
        let body = bollard::body_try_stream(context.into_stream(stats.clone()));
        let ticker = {
            let (stats, report) = (stats.clone(), report.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    report.emit(&Event::ContextProgress {
                        bytes: stats.bytes.load(Ordering::Relaxed),
                        files: stats.files.load(Ordering::Relaxed),
                    });
                }
            })
        };
        let mut stream = self.docker.build_image(options.build(), None, Some(body));
        let mut recent: Vec<String> = Vec::new();
        let mut partial = String::new();
        let mut failure: Option<String> = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        partial.push_str(&text);
                        while let Some(pos) = partial.find('\n') {
                            let line: String = partial.drain(..=pos).collect();
                            let line = line.trim_end().to_string();
                            if line.is_empty() {
                                continue;
                            }
                            report.emit(&Event::BuildLog { line: line.clone() });
                            if line.starts_with("Step ") {
                                recent.clear();
                            }
                            recent.push(line);
                        }
                    }
                    if let Some(detail) = info.error_detail {
                        failure = Some(detail.message.unwrap_or_else(|| "build failed".into()));
                    }
                }
                Err(err) => {
                    failure = Some(match err {
                        bollard::errors::Error::DockerStreamError { error } => error,
                        other => other.to_string(),
                    });
                    break;
                }
            }
        }
        ticker.abort();
        report.emit(&Event::ContextProgress {
            bytes: stats.bytes.load(Ordering::Relaxed),
            files: stats.files.load(Ordering::Relaxed),
        });
        if let Some(message) = failure {
            let mut error = Error::failed(format!("image build failed: {}", message.trim()));
            for line in recent.iter().rev().take(20).rev() {
                error = error.cause(line.clone());
            }
            return Err(error.hint(
                "fix the failing Dockerfile step shown above; nothing was pushed or deployed",
            ));
        }
        let image = self.docker.inspect_image(&spec.tag).await.map_err(|err| {
            Error::failed(format!(
                "the build finished but image {} is not in the engine",
                spec.tag
            ))
            .caused_by(&err)
        })?;
        Ok(image.id.unwrap_or_else(|| spec.tag.clone()))
    }

    async fn tag(&self, image: &str, repository: &str, tag: &str) -> Result<()> {
        let options = TagImageOptionsBuilder::default()
            .repo(repository)
            .tag(tag)
            .build();
        self.docker
            .tag_image(image, Some(options))
            .await
            .map_err(|err| {
                Error::failed(format!("cannot tag {image} as {repository}:{tag}")).caused_by(&err)
            })
    }

    async fn push(
        &self,
        repository: &str,
        tag: &str,
        auth: &RegistryAuth,
        report: &Report,
    ) -> Result<String> {
        let credentials = DockerCredentials {
            username: Some(auth.username.clone()),
            password: Some(auth.password.expose().to_string()),
            serveraddress: Some(auth.server.clone()),
            ..Default::default()
        };
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = self
            .docker
            .push_image(repository, Some(options), Some(credentials));
        let mut digest = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|err| {
                let message = match err {
                    bollard::errors::Error::DockerStreamError { error } => error,
                    other => other.to_string(),
                };
                Error::failed(format!("pushing {repository}:{tag} failed"))
                    .cause(message)
                    .hint("check that the ECR repository exists and that the credentials may push to it")
            })?;
            if let Some(detail) = info.error_detail {
                return Err(Error::failed(format!("pushing {repository}:{tag} failed"))
                    .cause(detail.message.unwrap_or_default())
                    .hint("check that the ECR repository exists and that the credentials may push to it"));
            }
            let status = info.status.unwrap_or_default();
            if let Some(found) = parse_digest(&status) {
                digest = Some(found);
            }
            let (current, total) = info
                .progress_detail
                .map(|p| (p.current.map(|v| v as u64), p.total.map(|v| v as u64)))
                .unwrap_or((None, None));
            report.emit(&Event::PushProgress {
                layer: format!("{repository}:{tag}"),
                status,
                current,
                total,
            });
        }
        digest.ok_or_else(|| {
            Error::failed(format!(
                "the engine pushed {repository}:{tag} but reported no digest"
            ))
            .hint("check the registry with `shipit status` or DescribeImages")
        })
    }
}

/// `"<tag>: digest: sha256:… size: 528"` → `sha256:…`.
fn parse_digest(status: &str) -> Option<String> {
    let rest = status.split("digest: ").nth(1)?;
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn digest_is_read_from_the_final_push_status() {
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            super::parse_digest(&format!("abc1234: digest: {digest} size: 528")).as_deref(),
            Some(digest)
        );
        assert_eq!(super::parse_digest("Pushed"), None);
    }
}
