//! The image half of a deploy: work out what is needed, then build and push
//! only if the commit's tag is not already in ECR.

use crate::ecr::{Registry, RegistryAuth, RepositoryOptions};
use crate::error::{Error, Result};
use crate::git::Commit;
use crate::report::{Event, Phase, PhaseClock, Report, Timings};
use crate::settings::{BuilderRequest, ImageSettings, TagFormat};

use super::builder::{self, Builder, BuilderChoice, EngineFacts};
use super::cache::{self, CacheSource, RunningImage};
use super::{BuildContext, BuildSpec, Built, ContainerEngine};

/// Everything about the image decided before any side effect.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    pub repository: String,
    /// `repositoryUri` from ECR; `None` when the repository is still to be created.
    pub repository_uri: Option<String>,
    pub tag: String,
    pub extra_tags: Vec<String>,
    /// The digest of the tag if it is already in ECR.
    pub existing_digest: Option<String>,
    pub build: bool,
}

impl ImagePlan {
    /// `<repositoryUri>:<tag>`, the reference the task definition gets.
    pub fn reference(&self) -> Option<String> {
        self.repository_uri
            .as_ref()
            .map(|uri| format!("{uri}:{}", self.tag))
    }
}

pub fn tag_for(settings: &ImageSettings, commit: &Commit) -> String {
    match settings.tag_format {
        TagFormat::Full => commit.sha.full().to_string(),
        TagFormat::Short => commit.sha.short().to_string(),
    }
}

pub async fn plan(
    settings: &ImageSettings,
    commit: &Commit,
    registry: &dyn Registry,
) -> Result<ImagePlan> {
    let name = settings.repository()?.to_string();
    let tag = tag_for(settings, commit);
    let repository = registry.repository(&name).await?;
    if repository.is_none() && !settings.create_repository {
        return Err(
            Error::bad_input(format!("ECR repository `{name}` does not exist")).hint(
                "create it (or pass --create-repository), or check --repository and the AWS region",
            ),
        );
    }
    let existing_digest = match &repository {
        Some(_) => registry.image_digest(&name, &tag).await?,
        None => None,
    };
    let build = settings.force || existing_digest.is_none();
    Ok(ImagePlan {
        repository: name,
        repository_uri: repository.map(|r| r.uri),
        tag,
        extra_tags: settings.extra_tags.clone(),
        existing_digest,
        build,
    })
}

/// The result of making sure the image is in ECR.
#[derive(Debug, Clone)]
pub struct PushedImage {
    pub reference: String,
    pub digest: String,
    pub built: bool,
    /// Seconds spent building and pushing.
    pub timings: Timings,
}

pub fn labels(commit: &Commit) -> Vec<(String, String)> {
    let mut labels = vec![
        (
            "org.opencontainers.image.revision".to_string(),
            commit.sha.full().to_string(),
        ),
        (
            "org.opencontainers.image.created".to_string(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
    ];
    if let Some(source) = source_url() {
        labels.push(("org.opencontainers.image.source".to_string(), source));
    }
    labels
}

/// `LABEL "k"="v" …` for labels whose text needs no escaping in a Dockerfile
/// (no quote, backslash, `$` or line break); `None` otherwise.
pub fn label_instruction(labels: &[(String, String)]) -> Option<String> {
    let plain = |s: &str| !s.is_empty() && !s.contains(['"', '\\', '$', '\n', '\r']);
    if labels.is_empty()
        || !labels
            .iter()
            .all(|(k, v)| plain(k) && !v.contains(['"', '\\', '$', '\n', '\r']))
    {
        return None;
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("\"{k}\"=\"{v}\""))
        .collect();
    Some(format!("LABEL {}", pairs.join(" ")))
}

fn source_url() -> Option<String> {
    use crate::env;
    if let (Some(server), Some(repo)) = (
        env::var(env::GITHUB_SERVER_URL),
        env::var(env::GITHUB_REPOSITORY),
    ) {
        return Some(format!("{server}/{repo}"));
    }
    env::var(env::CIRCLE_REPOSITORY_URL)
}

/// Builds the image into the local engine (no AWS).
pub async fn build(
    settings: &ImageSettings,
    commit: &Commit,
    local_tag: &str,
    engine: &dyn ContainerEngine,
    report: &Report,
) -> Result<String> {
    let preflight = preflight(settings, engine, report)?;
    build_timed(
        settings,
        commit,
        local_tag,
        engine,
        report,
        &mut Timings::default(),
        preflight,
        None,
    )
    .await
}

/// What is decided about a build before any side effect: the builder, and
/// that the Dockerfile can be built with it.
#[derive(Debug, Clone)]
struct Preflight {
    request: BuilderRequest,
    choice: BuilderChoice,
    facts: EngineFacts,
    /// The BuildKit-only syntax the Dockerfile uses.
    uses: Vec<builder::Use>,
}

fn preflight(
    settings: &ImageSettings,
    engine: &dyn ContainerEngine,
    report: &Report,
) -> Result<Preflight> {
    let facts = engine.facts();
    let (request, asked) = match settings.docker_buildkit.as_deref() {
        Some(value) => (
            builder::docker_buildkit(value)?,
            format!("DOCKER_BUILDKIT={value}"),
        ),
        None => (settings.builder, settings.builder_asked.clone()),
    };
    let choice = builder::choose(request, &asked, &facts)?;
    // An unreadable Dockerfile is reported by the context with its hint.
    let text = std::fs::read_to_string(&settings.dockerfile).unwrap_or_default();
    let uses = builder::buildkit_syntax(&text);
    report.emit(&Event::BuilderChosen {
        builder: choice.builder.name().into(),
        reason: choice.reason.clone(),
    });
    if choice.builder == Builder::Classic {
        if let Some(err) = builder::classic_cannot_build(&uses, &choice) {
            return Err(err);
        }
    }
    Ok(Preflight {
        request,
        choice,
        facts,
        uses,
    })
}

/// A layer cache the build may use: the image, with the registry's credentials.
struct Cache {
    source: CacheSource,
    auth: RegistryAuth,
}

/// Asks BuildKit to write its cache metadata into the image (inline cache),
/// so that the next build can reuse its layers straight from ECR.
const INLINE_CACHE_ARG: &str = "BUILDKIT_INLINE_CACHE";

#[allow(clippy::too_many_arguments)]
async fn build_timed(
    settings: &ImageSettings,
    commit: &Commit,
    local_tag: &str,
    engine: &dyn ContainerEngine,
    report: &Report,
    timings: &mut Timings,
    mut preflight: Preflight,
    cache: Option<&Cache>,
) -> Result<String> {
    let clock = PhaseClock::start(report, Phase::Build);
    // A classic build pulls the cache image first; a failed pull only loses the cache.
    let mut pulled = false;
    // A build whose context the engine lost is uploaded once more.
    let mut context_lost = false;
    loop {
        let builder = preflight.choice.builder;
        let mut context = BuildContext::prepare(&settings.context, &settings.dockerfile)?;
        let mut labels = labels(commit);
        // The classic builder turns each API label into a step of its own (a
        // container run and committed per label, ~65 ms each here); one appended
        // LABEL line is one step. With --target the labels must land on that
        // stage, which the engine does for API labels only. BuildKit sets API
        // labels on the image config, with no step.
        if builder == Builder::Classic && settings.target.is_none() {
            if let Some(line) = label_instruction(&labels) {
                context = context.with_appended(&line);
                labels.clear();
            }
        }
        let mut build_args = settings.build_args.clone();
        if builder == Builder::BuildKit && !build_args.iter().any(|(k, _)| k == INLINE_CACHE_ARG) {
            build_args.push((INLINE_CACHE_ARG.to_string(), "1".to_string()));
        }
        let mut cache_from = Vec::new();
        if let Some(cache) = cache {
            match builder {
                Builder::BuildKit => cache_from = cache.source.images(),
                Builder::Classic if pulled => cache_from.push(cache.source.image.clone()),
                Builder::Classic => match engine.pull(&cache.source.image, &cache.auth).await {
                    Ok(()) => {
                        pulled = true;
                        cache_from.push(cache.source.image.clone());
                    }
                    Err(err) => report.emit(&Event::Info {
                        message: format!(
                            "layer cache: {} ({}); building without it",
                            err.message(),
                            err.causes().join(": ")
                        ),
                    }),
                },
            }
        }
        let spec = BuildSpec {
            tag: local_tag.to_string(),
            build_args,
            target: settings.target.clone(),
            labels,
            builder,
            cache_from,
            registry_auth: cache.map(|c| c.auth.clone()),
        };
        match engine.build(&spec, context, report).await {
            Ok(Built::Image(id)) => {
                clock.finish(report, timings);
                return Ok(id);
            }
            Ok(Built::BuildKitRefused(why)) if preflight.request == BuilderRequest::Auto => {
                preflight.choice = BuilderChoice {
                    builder: Builder::Classic,
                    reason: format!("fallback: the engine refused a BuildKit build ({why})"),
                    asked: None,
                };
                report.emit(&Event::BuilderChosen {
                    builder: Builder::Classic.name().into(),
                    reason: preflight.choice.reason.clone(),
                });
                if let Some(err) = builder::classic_cannot_build(&preflight.uses, &preflight.choice)
                {
                    return Err(err);
                }
            }
            Ok(Built::ContextLost(why)) if !context_lost => {
                context_lost = true;
                report.emit(&Event::Info {
                    message: format!(
                        "the engine could not read the build context it was sent ({why}); \
                         uploading it once more"
                    ),
                });
            }
            Ok(Built::ContextLost(why)) => {
                return Err(Error::failed(format!("image build failed: {why}"))
                    .hint(super::engine::CONTEXT_LOST_HINT))
            }
            Ok(Built::BuildKitRefused(why)) => {
                return Err(Error::failed("the engine refused a BuildKit build")
                    .cause(why)
                    .hint("use --builder auto to fall back to the classic builder, or an engine that runs BuildKit"))
            }
            Err(err) if builder == Builder::BuildKit => {
                return Err(
                    builder::frontend_too_old(err.message(), &preflight.uses, &preflight.facts)
                        .unwrap_or(err),
                )
            }
            Err(err) => return Err(err),
        }
    }
}

/// Where the layers of a build can come from, reported in one line; `Err`
/// (why) when there is no usable source (never a failure: the build goes on cold).
async fn cache_source(
    plan: &ImagePlan,
    settings: &ImageSettings,
    registry: &dyn Registry,
    running: &[RunningImage],
) -> std::result::Result<CacheSource, String> {
    if !settings.cache_from {
        return Err("turned off with --no-cache-from".into());
    }
    let Some(uri) = &plan.repository_uri else {
        return Err("the repository is new".into());
    };
    let images = match registry.tagged_images(&plan.repository).await {
        Ok(images) => images,
        // The running image alone still makes a cache.
        Err(err) if cache::from_running(uri, running).is_some() => {
            tracing::debug!("listing {}'s images: {}", plan.repository, err.message());
            Vec::new()
        }
        Err(err) => {
            return Err(format!(
                "cannot list the repository's images: {}",
                err.message()
            ))
        }
    };
    cache::select(uri, running, &images)
        .ok_or_else(|| format!("no earlier commit image in {}", plan.repository))
}

/// Builds (if the plan says so) and pushes; returns the reference and digest
/// in ECR. The layer cache is the newest commit image in the repository.
pub async fn ensure(
    plan: &ImagePlan,
    settings: &ImageSettings,
    commit: &Commit,
    registry: &dyn Registry,
    engine: Option<&dyn ContainerEngine>,
    report: &Report,
) -> Result<PushedImage> {
    ensure_with_cache(plan, settings, commit, registry, engine, report, &[]).await
}

/// [`ensure`], with the images the service runs now as the first choice of
/// layer cache (`deploy`).
pub async fn ensure_with_cache(
    plan: &ImagePlan,
    settings: &ImageSettings,
    commit: &Commit,
    registry: &dyn Registry,
    engine: Option<&dyn ContainerEngine>,
    report: &Report,
    running: &[RunningImage],
) -> Result<PushedImage> {
    if !plan.build {
        let reference = plan
            .reference()
            .expect("an existing tag implies an existing repository");
        let digest = plan.existing_digest.clone().unwrap_or_default();
        report.emit(&Event::Info {
            message: format!("{reference} is already in ECR ({digest}): skipping build and push"),
        });
        return Ok(PushedImage {
            reference,
            digest,
            built: false,
            timings: Timings::default(),
        });
    }
    let engine = engine
        .ok_or_else(|| Error::failed("a build is needed but no container engine is connected"))?;
    // Before the repository is created: a Dockerfile this engine cannot build
    // changes nothing.
    let preflight = preflight(settings, engine, report)?;
    let uri = match &plan.repository_uri {
        Some(uri) => uri.clone(),
        None => {
            let options = RepositoryOptions {
                scan_on_push: settings.scan_on_push,
                immutable_tags: settings.immutable_tags,
            };
            let repo = registry
                .create_repository(&plan.repository, &options)
                .await?;
            report.emit(&Event::Info {
                message: format!("created ECR repository {}", repo.uri),
            });
            repo.uri
        }
    };
    let mut timings = Timings::default();
    let local = format!("{uri}:{}", plan.tag);
    let source = cache_source(plan, settings, registry, running).await;
    // One token for the cache and the push; if it cannot be had now, the
    // build goes on without the cache and the push asks again (and says why).
    let mut auth = None;
    let cache = match source {
        Ok(source) => match registry.authorization().await {
            Ok(token) => {
                auth = Some(token.clone());
                Some(Cache {
                    source,
                    auth: token,
                })
            }
            Err(err) => {
                report.emit(&Event::LayerCache {
                    image: None,
                    reason: format!("no registry credentials: {}", err.message()),
                    older: Vec::new(),
                });
                None
            }
        },
        Err(reason) => {
            report.emit(&Event::LayerCache {
                image: None,
                reason,
                older: Vec::new(),
            });
            None
        }
    };
    if let Some(cache) = &cache {
        report.emit(&Event::LayerCache {
            image: Some(cache.source.image.clone()),
            reason: cache.source.why.clone(),
            older: cache.source.older.clone(),
        });
    }
    let image_id = build_timed(
        settings,
        commit,
        &local,
        engine,
        report,
        &mut timings,
        preflight,
        cache.as_ref(),
    )
    .await?;

    let clock = PhaseClock::start(report, Phase::Push);
    let auth = match auth {
        Some(auth) => auth,
        None => registry.authorization().await?,
    };
    let digest = engine.push(&uri, &plan.tag, &auth, report).await?;
    let mut tags = vec![plan.tag.clone()];
    for extra in &plan.extra_tags {
        engine.tag(&image_id, &uri, extra).await?;
        engine.push(&uri, extra, &auth, report).await?;
        tags.push(extra.clone());
    }
    let reference = format!("{uri}:{}", plan.tag);
    report.emit(&Event::ImagePushed {
        image: uri.clone(),
        digest: digest.clone(),
        tags,
    });
    clock.finish(report, &mut timings);
    Ok(PushedImage {
        reference,
        digest,
        built: true,
        timings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecr::{Repository, TaggedImage};
    use crate::error::ExitCode;
    use crate::git::{CommitSha, ShaSource};
    use crate::report::Recorder;
    use crate::secret::Secret;
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    /// An engine that records each build's spec and answers as scripted.
    struct Engine {
        facts: EngineFacts,
        /// Refuse BuildKit builds with this reason.
        refuse_buildkit: Option<String>,
        pull_fails: bool,
        /// Answer this many builds with a lost context first.
        lose_context: std::sync::atomic::AtomicUsize,
        builds: Mutex<Vec<BuildSpec>>,
        pulls: Mutex<Vec<String>>,
    }

    impl Engine {
        fn new(refuse_buildkit: Option<&str>, pull_fails: bool) -> Self {
            Self {
                facts: EngineFacts {
                    version: "20.10.24".into(),
                    api_version: "1.41".into(),
                    os: "linux".into(),
                    podman: false,
                },
                refuse_buildkit: refuse_buildkit.map(str::to_string),
                pull_fails,
                lose_context: Default::default(),
                builds: Mutex::default(),
                pulls: Mutex::default(),
            }
        }
    }

    #[async_trait::async_trait]
    impl ContainerEngine for Engine {
        fn facts(&self) -> EngineFacts {
            self.facts.clone()
        }
        async fn build(&self, spec: &BuildSpec, _: BuildContext, _: &Report) -> Result<Built> {
            self.builds.lock().unwrap().push(spec.clone());
            let lost = self
                .lose_context
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok();
            if lost {
                return Ok(Built::ContextLost(LOST.into()));
            }
            match (&self.refuse_buildkit, spec.builder) {
                (Some(why), Builder::BuildKit) => Ok(Built::BuildKitRefused(why.clone())),
                _ => Ok(Built::Image("sha256:1d".into())),
            }
        }
        async fn pull(&self, reference: &str, _: &RegistryAuth) -> Result<()> {
            self.pulls.lock().unwrap().push(reference.into());
            match self.pull_fails {
                true => Err(Error::failed(format!("pulling {reference} failed"))
                    .cause("denied: not authorized")),
                false => Ok(()),
            }
        }
        async fn tag(&self, _: &str, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
        async fn push(&self, _: &str, _: &str, _: &RegistryAuth, _: &Report) -> Result<String> {
            Ok("sha256:d16e57".into())
        }
    }

    struct Registry {
        /// `Err`: the message of the error `tagged_images` answers with.
        tagged: std::result::Result<Vec<TaggedImage>, &'static str>,
    }

    #[async_trait::async_trait]
    impl crate::ecr::Registry for Registry {
        async fn repository(&self, _: &str) -> Result<Option<Repository>> {
            unreachable!("the plan is given")
        }
        async fn create_repository(&self, _: &str, _: &RepositoryOptions) -> Result<Repository> {
            unreachable!("the repository exists")
        }
        async fn image_digest(&self, _: &str, _: &str) -> Result<Option<String>> {
            unreachable!("the plan is given")
        }
        async fn authorization(&self) -> Result<RegistryAuth> {
            Ok(RegistryAuth {
                server: "127.0.0.1:4566".into(),
                username: "AWS".into(),
                password: Secret::new("token"),
            })
        }
        async fn tagged_images(&self, _: &str) -> Result<Vec<TaggedImage>> {
            self.tagged.clone().map_err(Error::failed)
        }
    }

    const URI: &str = "127.0.0.1:4566/web";
    /// Docker 20.10's words for a build context pruned away mid-build.
    const LOST: &str = "failed to solve with frontend dockerfile.v0: failed to read downloaded \
        context: Get \"http://build-context-8u0mffsxu01mwce21nmibuyx1\": context not found";

    fn setup(dockerfile: &str) -> (tempfile::TempDir, ImageSettings, ImagePlan, Commit) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        let settings = ImageSettings {
            repo_dir: dir.path().into(),
            repository: Some("web".into()),
            dockerfile: dir.path().join("Dockerfile"),
            context: dir.path().into(),
            target: None,
            build_args: vec![],
            tag_format: TagFormat::Full,
            extra_tags: vec![],
            create_repository: false,
            scan_on_push: false,
            immutable_tags: false,
            force: false,
            builder: BuilderRequest::Auto,
            builder_asked: String::new(),
            docker_buildkit: None,
            cache_from: true,
        };
        let plan = ImagePlan {
            repository: "web".into(),
            repository_uri: Some(URI.into()),
            tag: "b".repeat(40),
            extra_tags: vec![],
            existing_digest: None,
            build: true,
        };
        let commit = Commit {
            sha: CommitSha::parse(&"b".repeat(40)).unwrap(),
            source: ShaSource::Flag,
            dirty: false,
        };
        (dir, settings, plan, commit)
    }

    fn tagged(tag: &str, pushed_at: i64) -> TaggedImage {
        TaggedImage {
            tags: vec![tag.into()],
            pushed_at: Some(pushed_at),
        }
    }

    fn describe(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| crate::report::describe(e, crate::report::Verbosity::Normal))
            .filter(|l| !l.starts_with("==>") && !l.contains("done in"))
            .collect()
    }

    #[tokio::test]
    async fn buildkit_gets_the_service_image_as_registry_cache_with_credentials_and_inline_cache() {
        let (_dir, settings, plan, commit) = setup("FROM scratch\nCOPY a /a\n");
        let engine = Engine::new(None, false);
        let registry = Registry {
            tagged: Ok(vec![tagged("aaaaaaa", 9)]),
        };
        let recorder = Arc::new(Recorder::default());
        let report: Report = recorder.clone();
        let running = [RunningImage {
            image: format!("{URI}:1234567"),
            in_ecr: true,
        }];
        ensure_with_cache(
            &plan,
            &settings,
            &commit,
            &registry,
            Some(&engine),
            &report,
            &running,
        )
        .await
        .unwrap();
        let builds = engine.builds.lock().unwrap();
        assert_eq!(builds.len(), 1);
        let spec = &builds[0];
        assert_eq!(spec.builder, Builder::BuildKit);
        // The running image first, then the repository's newest commit image.
        assert_eq!(
            spec.cache_from,
            [format!("{URI}:1234567"), format!("{URI}:aaaaaaa")]
        );
        assert_eq!(
            spec.registry_auth.as_ref().unwrap().server,
            "127.0.0.1:4566"
        );
        assert!(spec
            .build_args
            .contains(&("BUILDKIT_INLINE_CACHE".into(), "1".into())));
        // BuildKit takes the labels through the API: no LABEL line appended.
        assert!(spec
            .labels
            .iter()
            .any(|(k, _)| k == "org.opencontainers.image.revision"));
        assert!(
            engine.pulls.lock().unwrap().is_empty(),
            "BuildKit reads the registry itself"
        );
        let lines = describe(&recorder.events());
        assert_eq!(lines[0], "builder: buildkit (Docker 20.10.24, API 1.41)");
        assert_eq!(
            lines[1],
            format!("layer cache: {URI}:1234567 (the image the service runs now; 1 older commit image too)")
        );
    }

    #[tokio::test]
    async fn an_engine_that_refuses_buildkit_falls_back_to_the_classic_builder_which_pulls_the_cache(
    ) {
        let (_dir, settings, plan, commit) = setup("FROM scratch\nCOPY a /a\n");
        let engine = Engine::new(Some("the engine answered 400: unsupported builder"), false);
        let registry = Registry {
            tagged: Ok(vec![
                tagged("aaaaaaa", 9),
                tagged("ccccccc", 12),
                tagged("latest", 99),
            ]),
        };
        let recorder = Arc::new(Recorder::default());
        let report: Report = recorder.clone();
        ensure(&plan, &settings, &commit, &registry, Some(&engine), &report)
            .await
            .unwrap();
        let builds = engine.builds.lock().unwrap();
        let builders: Vec<Builder> = builds.iter().map(|b| b.builder).collect();
        assert_eq!(builders, [Builder::BuildKit, Builder::Classic]);
        let classic = &builds[1];
        // The classic builder pulls one image: the newest.
        assert_eq!(classic.cache_from, [format!("{URI}:ccccccc")]);
        assert!(!classic
            .build_args
            .iter()
            .any(|(k, _)| k == "BUILDKIT_INLINE_CACHE"));
        assert!(classic.labels.is_empty(), "one appended LABEL step instead");
        assert_eq!(*engine.pulls.lock().unwrap(), [format!("{URI}:ccccccc")]);
        let lines = describe(&recorder.events());
        assert!(
            lines.contains(&"builder: classic (fallback: the engine refused a BuildKit build (the engine answered 400: unsupported builder))".to_string()),
            "{lines:#?}"
        );
    }

    #[tokio::test]
    async fn a_cache_that_cannot_be_had_is_one_line_and_the_build_goes_on_cold() {
        let (_dir, mut settings, plan, commit) = setup("FROM scratch\nCOPY a /a\n");
        settings.builder = BuilderRequest::Classic;
        let cases: Vec<(&str, Registry, bool, &str)> = vec![
            (
                "listing refused",
                Registry {
                    tagged: Err("listing the images of ECR repository `web` was refused: AccessDeniedException"),
                },
                false,
                "layer cache: none (cannot list the repository's images: listing the images of ECR repository `web` was refused: AccessDeniedException)",
            ),
            (
                "no commit tag",
                Registry {
                    tagged: Ok(vec![tagged("latest", 1)]),
                },
                false,
                "layer cache: none (no earlier commit image in web)",
            ),
            (
                "pull denied",
                Registry {
                    tagged: Ok(vec![tagged("aaaaaaa", 1)]),
                },
                true,
                "layer cache: pulling 127.0.0.1:4566/web:aaaaaaa failed (denied: not authorized); building without it",
            ),
        ];
        for (name, registry, pull_fails, line) in cases {
            let engine = Engine::new(None, pull_fails);
            let recorder = Arc::new(Recorder::default());
            let report: Report = recorder.clone();
            ensure(&plan, &settings, &commit, &registry, Some(&engine), &report)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let builds = engine.builds.lock().unwrap();
            assert_eq!(builds.len(), 1, "{name}");
            assert!(builds[0].cache_from.is_empty(), "{name}");
            let lines = describe(&recorder.events());
            assert!(lines.iter().any(|l| l == line), "{name}: {lines:#?}");
        }
        // --no-cache-from: not even looked for.
        settings.cache_from = false;
        let engine = Engine::new(None, false);
        let recorder = Arc::new(Recorder::default());
        let report: Report = recorder.clone();
        let registry = Registry {
            tagged: Ok(vec![tagged("aaaaaaa", 1)]),
        };
        ensure(&plan, &settings, &commit, &registry, Some(&engine), &report)
            .await
            .unwrap();
        assert!(engine.builds.lock().unwrap()[0].cache_from.is_empty());
        assert!(describe(&recorder.events())
            .contains(&"layer cache: none (turned off with --no-cache-from)".to_string()));
    }

    #[tokio::test]
    async fn a_build_context_the_engine_lost_is_uploaded_once_more_and_a_second_loss_fails() {
        let (_dir, settings, plan, commit) = setup("FROM scratch\nCOPY a /a\n");
        let registry = Registry { tagged: Ok(vec![]) };

        let engine = Engine::new(None, false);
        engine.lose_context.store(1, Ordering::Relaxed);
        let recorder = Arc::new(Recorder::default());
        let report: Report = recorder.clone();
        let pushed = ensure(&plan, &settings, &commit, &registry, Some(&engine), &report)
            .await
            .unwrap();
        assert_eq!(pushed.digest, "sha256:d16e57");
        assert_eq!(engine.builds.lock().unwrap().len(), 2, "built once more");
        assert!(
            describe(&recorder.events()).iter().any(|l| l.starts_with(
                "the engine could not read the build context it was sent (failed to solve"
            ) && l.ends_with("uploading it once more")),
            "{:#?}",
            describe(&recorder.events())
        );

        let engine = Engine::new(None, false);
        engine.lose_context.store(2, Ordering::Relaxed);
        let report: Report = Arc::new(Recorder::default());
        let err = ensure(&plan, &settings, &commit, &registry, Some(&engine), &report)
            .await
            .unwrap_err();
        assert_eq!(engine.builds.lock().unwrap().len(), 2, "only once more");
        assert_eq!(err.exit_code(), ExitCode::Failed);
        assert!(
            err.message().contains("context not found"),
            "{}",
            err.message()
        );
        assert!(
            err.hint_text()
                .unwrap()
                .contains("prunes the engine's build cache"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn docker_buildkit_decides_the_builder_when_nothing_else_does_and_is_checked_first() {
        let (_dir, mut settings, plan, commit) = setup("FROM scratch\nCOPY a /a\n");
        let registry = Registry { tagged: Ok(vec![]) };
        settings.docker_buildkit = Some("0".into());
        let engine = Engine::new(None, false);
        let recorder = Arc::new(Recorder::default());
        let report: Report = recorder.clone();
        ensure(&plan, &settings, &commit, &registry, Some(&engine), &report)
            .await
            .unwrap();
        assert_eq!(engine.builds.lock().unwrap()[0].builder, Builder::Classic);
        assert_eq!(
            describe(&recorder.events())[0],
            "builder: classic (asked for with DOCKER_BUILDKIT=0)"
        );

        settings.docker_buildkit = Some("yes".into());
        let engine = Engine::new(None, false);
        let report: Report = Arc::new(Recorder::default());
        let err = ensure(&plan, &settings, &commit, &registry, Some(&engine), &report)
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::Usage);
        assert!(engine.builds.lock().unwrap().is_empty(), "nothing built");
    }

    #[tokio::test]
    async fn buildkit_syntax_with_the_classic_builder_fails_before_the_build_with_exit_2() {
        let (_dir, mut settings, plan, commit) =
            setup("FROM scratch\nRUN --mount=type=cache,target=/c [\"/x\"]\n");
        settings.builder = BuilderRequest::Classic;
        let engine = Engine::new(None, false);
        let registry = Registry { tagged: Ok(vec![]) };
        let report: Report = Arc::new(Recorder::default());
        let err = ensure(&plan, &settings, &commit, &registry, Some(&engine), &report)
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::Usage);
        assert!(
            err.message().contains("`RUN --mount` on line 2"),
            "{}",
            err.message()
        );
        assert!(
            engine.builds.lock().unwrap().is_empty(),
            "nothing sent to the engine"
        );
    }

    #[test]
    fn labels_become_one_instruction_unless_they_need_escaping() {
        let labels = vec![
            (
                "org.opencontainers.image.revision".to_string(),
                "abc".to_string(),
            ),
            (
                "org.opencontainers.image.source".to_string(),
                "https://github.com/o/r".to_string(),
            ),
        ];
        assert_eq!(
            label_instruction(&labels).unwrap(),
            r#"LABEL "org.opencontainers.image.revision"="abc" "org.opencontainers.image.source"="https://github.com/o/r""#
        );
        for odd in ["a\"b", "a\\b", "$HOME", "a\nb"] {
            let labels = vec![("k".to_string(), odd.to_string())];
            assert_eq!(label_instruction(&labels), None, "{odd:?}");
        }
    }
}
