//! The container engine seam, and its Docker Engine API adapter (bollard).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::auth::DockerCredentials;
use bollard::models::BuildInfoAux;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, CreateImageOptionsBuilder, PushImageOptionsBuilder,
    TagImageOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::build_lock;
use super::builder::{Builder, EngineFacts};
use super::buildkit::Progress;
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
    pub builder: Builder,
    /// Images whose layers the build may reuse (`cachefrom`): with BuildKit
    /// read from the registry, with the classic builder pulled first.
    pub cache_from: Vec<String>,
    /// Credentials for the registry of `cache_from`, passed in memory (to
    /// BuildKit through the build's session).
    pub registry_auth: Option<RegistryAuth>,
}

/// How a build ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Built {
    /// The image id.
    Image(String),
    /// The engine refused a BuildKit build before starting it (the reason):
    /// the caller may fall back to the classic builder.
    BuildKitRefused(String),
    /// The engine lost the uploaded build context before the build had read
    /// it (the engine's message; see [`context_lost`]): nothing was built, and
    /// the caller may upload it again.
    ContextLost(String),
}

#[async_trait]
pub trait ContainerEngine: Send + Sync {
    /// What the engine said about itself when shipit connected.
    fn facts(&self) -> EngineFacts;
    /// Builds, streaming the context and the log.
    async fn build(
        &self,
        spec: &BuildSpec,
        context: BuildContext,
        report: &Report,
    ) -> Result<Built>;
    /// Pulls `reference` with credentials passed in memory.
    async fn pull(&self, reference: &str, auth: &RegistryAuth) -> Result<()>;
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
    facts: EngineFacts,
    /// Where the engine is (DOCKER_HOST or the default socket), for errors.
    host: String,
    /// The engine's `ID` (`/info`), asked once, by the first build that
    /// takes a turn (see [`build_lock`]); `None` when it did not say.
    id: tokio::sync::OnceCell<Option<String>>,
}

impl DockerEngine {
    /// Connects (DOCKER_HOST or the local socket) and negotiates the API version,
    /// so an older engine (e.g. API 1.41) is spoken to in its own version.
    pub async fn connect() -> Result<Self> {
        let host = crate::env::var(crate::env::DOCKER_HOST)
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
        let unreachable = |cause: &dyn std::fmt::Display| {
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
        // An engine that does not answer /version gets the classic builder
        // (the choice says why); it is not a reason to fail.
        let facts = match docker.version().await {
            Ok(version) => EngineFacts {
                version: version.version.unwrap_or_default(),
                api_version: version.api_version.unwrap_or_default(),
                os: version.os.unwrap_or_default(),
                podman: version
                    .components
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.name.to_ascii_lowercase().contains("podman")),
            },
            Err(_) => EngineFacts::default(),
        };
        Ok(Self {
            docker,
            facts,
            host,
            id: tokio::sync::OnceCell::new(),
        })
    }

    /// This build's turn on an engine whose BuildKit crashes when two builds
    /// export an inline cache at once (see [`build_lock`]); `None` when the
    /// lock cannot be used (said in one line: the build goes on).
    async fn take_turn(&self, report: &Report) -> Option<build_lock::Turn> {
        let waiting = || {
            report.emit(&Event::Info {
                message: format!(
                    "waiting for another shipit build on this engine to finish: Docker {} \
                     can crash when two BuildKit builds export an inline cache at once \
                     (moby/buildkit#2889)",
                    self.facts.version
                ),
            })
        };
        // Named after the engine's ID, so every address of one engine shares it.
        let id = self
            .id
            .get_or_init(|| async {
                let info = self.docker.info().await.ok()?;
                info.id.filter(|id| !id.is_empty())
            })
            .await;
        match build_lock::take(id.as_deref().unwrap_or(&self.host), waiting).await {
            build_lock::Taken::Free(turn) | build_lock::Taken::AfterWaiting(turn, _) => Some(turn),
            build_lock::Taken::Skipped(why) => {
                report.emit(&Event::Info {
                    message: format!(
                        "builds on this engine do not take turns ({why}): two at once can crash Docker {}",
                        self.facts.version
                    ),
                });
                None
            }
        }
    }

    /// The error of an operation whose connection to the engine broke (see
    /// [`connection_broke`]), saying whether the engine answers again: an
    /// engine that stopped or restarted mid-build is not a Dockerfile to fix.
    async fn broke(&self, what: &str, err: &bollard::errors::Error, after: &str) -> Error {
        let answers = matches!(
            tokio::time::timeout(Duration::from_secs(5), self.docker.ping()).await,
            Ok(Ok(_))
        );
        // bollard's timeout covers the wait for the answer's headers only.
        let timed_out = matches!(err, bollard::errors::Error::RequestTimeoutError);
        let happened = if timed_out {
            format!(
                "the Docker engine at {} did not start answering within {} s",
                self.host,
                self.docker.timeout().as_secs()
            )
        } else {
            format!("the connection to the Docker engine at {} broke", self.host)
        };
        let now = match (answers, timed_out) {
            (false, _) => "the engine no longer answers",
            (true, true) => "the engine answers a ping: it is busy, or the upload is slow",
            (true, false) => "the engine answers again: it restarted, or something between shipit and the engine cut the connection",
        };
        Error::failed(format!("{what}: {happened}"))
            .cause(err.to_string())
            .cause(now)
            .hint(format!(
                "check the engine (`docker info`, the engine's log) and run shipit again; {after}"
            ))
    }

    fn build_options(
        &self,
        spec: &BuildSpec,
        context: &BuildContext,
        session: Option<&str>,
    ) -> bollard::query_parameters::BuildImageOptions {
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
            .labels(&labels);
        options = match session {
            Some(id) => options.version(BuilderVersion::BuilderBuildKit).session(id),
            None => options.version(BuilderVersion::BuilderV1),
        };
        if !spec.cache_from.is_empty() {
            options = options.cachefrom(&spec.cache_from);
        }
        if let Some(target) = &spec.target {
            options = options.target(target);
        }
        options.build()
    }
}

/// A session id for one BuildKit build (the engine pairs the build with the
/// session shipit opens, which answers BuildKit's credential requests).
fn session_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    let high = hasher.finish();
    hasher.write_u8(1);
    format!("shipit-{high:016x}{:016x}", hasher.finish())
}

/// Whether a bollard error is the connection to the engine failing (the engine
/// stopped or restarted, or something between shipit and it cut the
/// connection) rather than an answer of the engine's.
fn connection_broke(err: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as E;
    matches!(
        err,
        E::IOError { .. }
            | E::HyperResponseError { .. }
            | E::HyperLegacyError { .. }
            | E::RequestTimeoutError
    )
}

/// The engine's error text from a bollard error.
fn engine_message(err: bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerStreamError { error } => error,
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    }
}

#[async_trait]
impl ContainerEngine for DockerEngine {
    fn facts(&self) -> EngineFacts {
        self.facts.clone()
    }

    async fn build(
        &self,
        spec: &BuildSpec,
        context: BuildContext,
        report: &Report,
    ) -> Result<Built> {
        let session = (spec.builder == Builder::BuildKit).then(session_id);
        let _turn = match session {
            Some(_) if build_lock::needed(&self.facts) => self.take_turn(report).await,
            _ => None,
        };
        let options = self.build_options(spec, &context, session.as_deref());
        let credentials = spec.registry_auth.as_ref().map(|auth| {
            HashMap::from([(
                auth.server.clone(),
                DockerCredentials {
                    username: Some(auth.username.clone()),
                    password: Some(auth.password.expose().to_string()),
                    serveraddress: Some(auth.server.clone()),
                    ..Default::default()
                },
            )])
        });
        // The classic builder would only use the credentials for FROM images:
        // hand them to BuildKit's session alone.
        let credentials = credentials.filter(|_| session.is_some());
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
        let mut stream = self.docker.build_image(options, credentials, Some(body));
        let mut log = BuildLog::new(spec.builder, report);
        let mut failure: Option<String> = None;
        let mut refused = None;
        let mut broke = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        log.text(&text);
                    }
                    if let Some(BuildInfoAux::BuildKit(status)) = &info.aux {
                        log.status(status);
                    }
                    if let Some(detail) = info.error_detail {
                        failure = Some(detail.message.unwrap_or_else(|| "build failed".into()));
                    }
                }
                Err(err) if connection_broke(&err) => {
                    broke = Some(err);
                    break;
                }
                Err(err) => {
                    // An engine that answers a BuildKit build with an error
                    // status before any step (no BuildKit, no session support)
                    // refused it; anything else is the build's own failure.
                    if let bollard::errors::Error::DockerResponseServerError {
                        status_code,
                        message,
                    } = &err
                    {
                        if session.is_some() && log.progress.seen == 0 {
                            refused = Some(format!("the engine answered {status_code}: {message}"));
                        }
                    }
                    failure = Some(engine_message(err));
                    break;
                }
            }
        }
        ticker.abort();
        report.emit(&Event::ContextProgress {
            bytes: stats.bytes.load(Ordering::Relaxed),
            files: stats.files.load(Ordering::Relaxed),
        });
        if let Some(reason) = refused {
            return Ok(Built::BuildKitRefused(reason));
        }
        if let Some(err) = broke {
            let unread = stats.failed.lock().ok().and_then(|f| f.clone());
            if let Some(why) = unread {
                return Err(Error::failed("image build failed: the build context could not be read")
                    .cause(why)
                    .hint("check that no file in the build context vanishes or changes while shipit builds; nothing was pushed or deployed"));
            }
            return Err(self
                .broke("image build failed", &err, "nothing was pushed or deployed")
                .await);
        }
        for (reference, error) in &log.progress.cache_import_errors {
            report.emit(&Event::Info {
                message: format!(
                    "layer cache: {reference} could not be read ({}); building without it",
                    error.trim()
                ),
            });
        }
        if let Some(message) = failure {
            if context_lost(&message) {
                return Ok(Built::ContextLost(message.trim().to_string()));
            }
            return Err(log.failure(message.trim()));
        }
        let image = self.docker.inspect_image(&spec.tag).await.map_err(|err| {
            Error::failed(format!(
                "the build finished but image {} is not in the engine",
                spec.tag
            ))
            .caused_by(&err)
        })?;
        Ok(Built::Image(image.id.unwrap_or_else(|| spec.tag.clone())))
    }

    async fn pull(&self, reference: &str, auth: &RegistryAuth) -> Result<()> {
        let credentials = DockerCredentials {
            username: Some(auth.username.clone()),
            password: Some(auth.password.expose().to_string()),
            serveraddress: Some(auth.server.clone()),
            ..Default::default()
        };
        let options = CreateImageOptionsBuilder::default()
            .from_image(reference)
            .build();
        let mut stream = self
            .docker
            .create_image(Some(options), None, Some(credentials));
        while let Some(item) = stream.next().await {
            let info = item.map_err(|err| {
                Error::failed(format!("pulling {reference} failed")).cause(engine_message(err))
            })?;
            if let Some(detail) = info.error_detail {
                return Err(Error::failed(format!("pulling {reference} failed"))
                    .cause(detail.message.unwrap_or_default()));
            }
        }
        Ok(())
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
            let info = match item {
                Ok(info) => info,
                Err(err) if connection_broke(&err) => {
                    let what = format!("pushing {repository}:{tag} failed");
                    return Err(self.broke(&what, &err, "nothing was deployed").await);
                }
                Err(err) => return Err(Error::failed(format!(
                    "pushing {repository}:{tag} failed"
                ))
                .cause(engine_message(err))
                .hint(
                    "check that the ECR repository exists and that the credentials may push to it",
                )),
            };
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

/// The build's log as it streams: lines to the report, and what a failure
/// message needs (the failing step and its last lines).
struct BuildLog<'a> {
    builder: Builder,
    report: &'a Report,
    /// Classic builder: text not yet ended by a newline, and the lines of
    /// the current step.
    partial: String,
    recent: Vec<String>,
    /// BuildKit: the steps.
    progress: Progress,
}

impl<'a> BuildLog<'a> {
    fn new(builder: Builder, report: &'a Report) -> Self {
        Self {
            builder,
            report,
            partial: String::new(),
            recent: Vec::new(),
            progress: Progress::default(),
        }
    }

    fn line(&self, line: String) {
        self.report.emit(&Event::BuildLog { line });
    }

    /// The classic builder's `stream` text (BuildKit sends none of its log so).
    fn text(&mut self, text: &str) {
        self.partial.push_str(text);
        while let Some(pos) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=pos).collect();
            let line = line.trim_end().to_string();
            if line.is_empty() {
                continue;
            }
            self.line(line.clone());
            if line.starts_with("Step ") {
                self.recent.clear();
            }
            self.recent.push(line);
        }
    }

    fn status(&mut self, status: &bollard::moby::buildkit::v1::StatusResponse) {
        for line in self.progress.lines(status) {
            self.line(line);
        }
    }

    fn failure(&self, message: &str) -> Error {
        let mut error = Error::failed(format!("image build failed: {message}"));
        let causes: Vec<String> = match (self.builder, &self.progress.failed) {
            (Builder::BuildKit, Some(step)) => std::iter::once(format!("step {}", step.name))
                .chain(step.tail.iter().cloned())
                .collect(),
            _ => self.recent.iter().rev().take(20).rev().cloned().collect(),
        };
        for cause in causes {
            error = error.cause(cause);
        }
        error.hint("fix the failing Dockerfile step shown above; nothing was pushed or deployed")
    }
}

/// Whether a BuildKit build failed because the engine no longer had the
/// build context shipit uploaded. With a tar body, dockerd keeps the upload
/// for BuildKit to fetch once (moby `builder/builder-next/reqbodyhandler.go`:
/// a second fetch is "context not found"); the Dockerfile frontend solves
/// the context, then solves the build on it, and a build cache prune in
/// between (`docker builder prune`, a cron on a shared runner) deletes the
/// fetched copy, so the second solve fetches again. Seen on Docker 20.10
/// with prunes looping next to builds: 3 builds in 12 failed so.
///
/// Also when the frontend could not unpack the upload to read the Dockerfile
/// ("failed to read dockerfile: Error processing tar file … invalid tar
/// header", on BuildKit's own step `copy /context /`): shipit's tar is the one
/// every other build reads, so it is the engine's read that failed. Seen on
/// Docker 20.10 with a dozen shipit runs building one app at once: 2 builds
/// in 48 failed so; uploaded again, they build.
pub fn context_lost(message: &str) -> bool {
    let gone = message.contains("failed to read downloaded context")
        && message.contains("context not found");
    // A full disk says "Error processing tar file … no space left on device":
    // that is the engine's to fix, not a read to try again.
    let unreadable = message.contains("failed to read dockerfile")
        && message.contains("Error processing tar file")
        && (message.contains("invalid tar header") || message.contains("unexpected EOF"));
    gone || unreadable
}

/// The hint of a build whose context the engine lost twice.
pub const CONTEXT_LOST_HINT: &str = "the engine lost (or could not unpack) the build context \
     shipit uploaded, twice, before the build had read it: something prunes the engine's build \
     cache during builds (`docker builder prune`), or the engine is overloaded by builds at once; \
     nothing was pushed or deployed: run it again";

/// `"<tag>: digest: sha256:… size: 528"` → `sha256:…`.
fn parse_digest(status: &str) -> Option<String> {
    let rest = status.split("digest: ").nth(1)?;
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_string())
}

#[cfg(test)]
mod tests {
    use super::context_lost;

    #[test]
    fn a_build_context_the_engine_lost_is_told_from_a_failing_step() {
        // Docker 20.10's words, from a build next to `docker builder prune -af`.
        let lost = "failed to solve with frontend dockerfile.v0: failed to read downloaded \
                    context: Get \"http://build-context-8u0mffsxu01mwce21nmibuyx1\": context not found";
        assert!(context_lost(lost));
        let step = "process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3";
        assert!(!context_lost(step));
        let missing_file = "failed to compute cache key: \"/app.conf\" not found: not found";
        assert!(!context_lost(missing_file));
        // Docker 20.10's words, a dozen builds of one app at once.
        let unpacked = "failed to solve with frontend dockerfile.v0: failed to read dockerfile: \
                        Error processing tar file(exit status 1): archive/tar: invalid tar header";
        assert!(context_lost(unpacked));
        let no_dockerfile = "failed to solve with frontend dockerfile.v0: failed to read \
                             dockerfile: open /var/lib/docker/tmp/buildkit-mount1/Dockerfile: \
                             no such file or directory";
        assert!(
            !context_lost(no_dockerfile),
            "a Dockerfile missing from the context is the user's"
        );
        let full = "failed to solve with frontend dockerfile.v0: failed to read dockerfile: \
                    Error processing tar file(exit status 1): write /Dockerfile: no space left on device";
        assert!(!context_lost(full), "a full disk is not a lost upload");
    }

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
