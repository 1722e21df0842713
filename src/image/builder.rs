//! Which builder the engine runs a build with — BuildKit, or the classic
//! builder as the fallback — and what a Dockerfile needs of it. Pure
//! functions over what the engine said about itself and the Dockerfile text.

use std::fmt;

use crate::error::{Error, Result};
use crate::settings::BuilderRequest;

/// The builder a build runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    /// BuildKit through the Engine API (`version=2` plus a session).
    BuildKit,
    /// The engine's first builder (`version=1`).
    Classic,
}

impl Builder {
    /// The name in events and the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Builder::BuildKit => "buildkit",
            Builder::Classic => "classic",
        }
    }
}

/// What the engine said about itself (`GET /version`), as far as the choice
/// of builder depends on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineFacts {
    /// e.g. `20.10.24+dfsg1`; empty when the engine did not answer `/version`.
    pub version: String,
    /// The API version negotiated, e.g. `1.41`.
    pub api_version: String,
    /// `linux`, `windows`, …
    pub os: String,
    /// The engine is Podman's Docker-compatible API.
    pub podman: bool,
}

impl EngineFacts {
    fn describe(&self) -> String {
        let name = if self.podman { "Podman" } else { "Docker" };
        match (self.version.is_empty(), self.api_version.is_empty()) {
            (false, false) => format!("{name} {}, API {}", self.version, self.api_version),
            (true, false) => format!("API {}", self.api_version),
            _ => "an engine that did not say its version".into(),
        }
    }
}

/// The builder chosen and why, as reported to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderChoice {
    pub builder: Builder,
    pub reason: String,
    /// Where the classic builder was asked for (`--builder classic`,
    /// `DOCKER_BUILDKIT=0`); `None` when shipit chose.
    pub asked: Option<String>,
}

/// The lowest API version whose engine runs BuildKit builds without the
/// experimental flag (Docker 18.09).
const BUILDKIT_MIN_API: (u32, u32) = (1, 39);

fn parse_api(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Why this engine cannot run a BuildKit build, if it cannot.
fn buildkit_unavailable(facts: &EngineFacts) -> Option<String> {
    if facts.podman {
        return Some("Podman's Docker API builds with Buildah, not BuildKit".into());
    }
    if !facts.os.is_empty() && !facts.os.eq_ignore_ascii_case("linux") {
        return Some(format!(
            "the engine runs on {}: BuildKit through the Engine API needs a Linux engine",
            facts.os
        ));
    }
    match parse_api(&facts.api_version) {
        Some(api) if api >= BUILDKIT_MIN_API => None,
        Some(_) => Some(format!(
            "the engine speaks API {}: BuildKit needs API 1.39 (Docker 18.09) or newer",
            facts.api_version
        )),
        None => Some("the engine did not say its API version".into()),
    }
}

/// The builder for a build: BuildKit whenever the engine can run it (unless
/// the user asked for the classic builder); asking for BuildKit on an engine
/// that cannot is bad input. `asked`: where a request other than auto came
/// from, as the output names it (`--builder classic`, `DOCKER_BUILDKIT=0`).
pub fn choose(request: BuilderRequest, asked: &str, facts: &EngineFacts) -> Result<BuilderChoice> {
    let unavailable = buildkit_unavailable(facts);
    match (request, unavailable) {
        (BuilderRequest::Classic, _) => Ok(BuilderChoice {
            builder: Builder::Classic,
            reason: format!("asked for with {asked}"),
            asked: Some(asked.to_string()),
        }),
        (BuilderRequest::BuildKit, Some(why)) => Err(Error::bad_input(format!(
            "{asked}, but this engine cannot run BuildKit builds: {why}"
        ))
        .hint("use --builder auto (the classic builder on this engine), or point DOCKER_HOST at a Linux Docker engine 18.09 or newer")),
        (_, None) => Ok(BuilderChoice {
            builder: Builder::BuildKit,
            reason: facts.describe(),
            asked: None,
        }),
        (BuilderRequest::Auto, Some(why)) => Ok(BuilderChoice {
            builder: Builder::Classic,
            reason: format!("fallback: {why}"),
            asked: None,
        }),
    }
}

/// `DOCKER_BUILDKIT`, read as `docker build` reads it (the docker CLI's
/// `BuildKitEnabled`: Go's `strconv.ParseBool`): `1` BuildKit, `0` the
/// classic builder; anything else is bad input.
pub fn docker_buildkit(value: &str) -> Result<BuilderRequest> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(BuilderRequest::BuildKit),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(BuilderRequest::Classic),
        other => Err(Error::bad_input(format!(
            "DOCKER_BUILDKIT=`{other}` is not a boolean"
        ))
        .hint("set DOCKER_BUILDKIT to 0 (the classic builder) or 1 (BuildKit), or unset it; or pass --builder auto|buildkit|classic")),
    }
}

/// Dockerfile syntax only BuildKit understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    RunMount,
    RunNetwork,
    RunSecurity,
    CopyLink,
    CopyChmod,
    CopyParents,
    CopyExclude,
    Heredoc,
}

impl Syntax {
    /// The Dockerfile frontend version that first understood it without
    /// `# syntax=…labs` (docs.docker.com/build/buildkit/dockerfile-release-notes/).
    pub fn frontend(self) -> &'static str {
        match self {
            Syntax::RunMount | Syntax::CopyChmod => "1.2",
            Syntax::RunNetwork => "1.3",
            Syntax::CopyLink | Syntax::Heredoc => "1.4",
            Syntax::RunSecurity | Syntax::CopyParents | Syntax::CopyExclude => "1.7 (labs)",
        }
    }
}

impl fmt::Display for Syntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Syntax::RunMount => "RUN --mount",
            Syntax::RunNetwork => "RUN --network",
            Syntax::RunSecurity => "RUN --security",
            Syntax::CopyLink => "COPY/ADD --link",
            Syntax::CopyChmod => "COPY/ADD --chmod",
            Syntax::CopyParents => "COPY --parents",
            Syntax::CopyExclude => "COPY/ADD --exclude",
            Syntax::Heredoc => "a heredoc (<<EOF)",
        })
    }
}

/// One use of BuildKit-only syntax, with its line (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use {
    pub syntax: Syntax,
    pub line: usize,
}

impl fmt::Display for Use {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` on line {}", self.syntax, self.line)
    }
}

/// The BuildKit-only syntax a Dockerfile uses, in order. Instructions are
/// read as the Dockerfile parser does: case-insensitive keywords, `\` line
/// continuations, `#` comment lines, flags right after the keyword.
pub fn buildkit_syntax(dockerfile: &str) -> Vec<Use> {
    let mut found = Vec::new();
    let mut lines = dockerfile.lines().enumerate().peekable();
    while let Some((index, first)) = lines.next() {
        let trimmed = first.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // A logical line: join the continuations.
        let mut text = first.to_string();
        while text.trim_end().ends_with('\\') {
            let cut = text.trim_end().len() - 1;
            text.truncate(cut);
            match lines.next() {
                Some((_, next)) => {
                    text.push(' ');
                    text.push_str(next);
                }
                None => break,
            }
        }
        let mut words = text.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        let keyword = keyword.to_ascii_uppercase();
        let line = index + 1;
        let mut push = |syntax| {
            if !found.contains(&Use { syntax, line }) {
                found.push(Use { syntax, line });
            }
        };
        let mut in_flags = true;
        for word in words {
            if in_flags && word.starts_with("--") {
                let flag = word[2..].split('=').next().unwrap_or_default();
                let syntax = match (keyword.as_str(), flag) {
                    ("RUN", "mount") => Some(Syntax::RunMount),
                    ("RUN", "network") => Some(Syntax::RunNetwork),
                    ("RUN", "security") => Some(Syntax::RunSecurity),
                    ("COPY" | "ADD", "link") => Some(Syntax::CopyLink),
                    ("COPY" | "ADD", "chmod") => Some(Syntax::CopyChmod),
                    ("COPY", "parents") => Some(Syntax::CopyParents),
                    ("COPY" | "ADD", "exclude") => Some(Syntax::CopyExclude),
                    _ => None,
                };
                if let Some(syntax) = syntax {
                    push(syntax);
                }
                continue;
            }
            in_flags = false;
            if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") && is_heredoc(word) {
                push(Syntax::Heredoc);
            }
        }
    }
    found
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` (not `<<` alone, not `<<<`).
fn is_heredoc(word: &str) -> bool {
    let Some(rest) = word.strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    rest.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '"' || c == '\'')
}

/// The error for a Dockerfile the classic builder cannot build, before
/// anything is sent to the engine.
pub fn classic_cannot_build(uses: &[Use], choice: &BuilderChoice) -> Option<Error> {
    let first = uses.first()?;
    let listed: Vec<String> = uses.iter().take(3).map(Use::to_string).collect();
    Some(
        Error::bad_input(format!(
            "the Dockerfile uses BuildKit-only syntax ({}), which the classic builder cannot build",
            listed.join(", ")
        ))
        .cause(format!("the build would use the classic builder ({})", choice.reason))
        .hint(match &choice.asked {
            None => format!(
                "build on an engine that runs BuildKit (a Linux Docker engine 18.09 or newer), or rewrite {} without it",
                first.syntax
            ),
            Some(asked) if asked.starts_with("DOCKER_BUILDKIT") => {
                "unset DOCKER_BUILDKIT (or pass --builder auto): this engine runs BuildKit".into()
            }
            Some(asked) => format!("drop {asked}: this engine runs BuildKit"),
        }),
    )
}

/// When BuildKit failed to parse the Dockerfile and it uses syntax newer than
/// the engine's built-in frontend: the error that names that limitation.
pub fn frontend_too_old(message: &str, uses: &[Use], facts: &EngineFacts) -> Option<Error> {
    if !message.contains("dockerfile parse error") && !message.contains("Unknown flag") {
        return None;
    }
    let newer: Vec<&Use> = uses
        .iter()
        .filter(|u| u.syntax.frontend() != "1.2")
        .collect();
    let first = newer.first()?;
    let listed: Vec<String> = newer.iter().take(3).map(|u| u.to_string()).collect();
    Some(
        Error::failed(format!(
            "this engine's built-in Dockerfile frontend cannot parse {} (needs Dockerfile syntax {})",
            listed.join(", "),
            first.syntax.frontend()
        ))
        .cause(format!("the engine ({}) said: {}", facts.describe(), message.trim()))
        .hint("use Docker Engine 23.0 or newer (its built-in frontend is 1.4+), or make `# syntax=docker/dockerfile:1` the Dockerfile's first line (the engine then pulls that frontend image from Docker Hub)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(version: &str, api: &str, os: &str, podman: bool) -> EngineFacts {
        EngineFacts {
            version: version.into(),
            api_version: api.into(),
            os: os.into(),
            podman,
        }
    }

    #[test]
    fn buildkit_whenever_the_engine_can_and_the_classic_builder_as_a_reported_fallback() {
        use Builder::*;
        use BuilderRequest as R;
        let debian = facts("20.10.24+dfsg1", "1.41", "linux", false);
        let cases: &[(&str, BuilderRequest, EngineFacts, Builder, &str)] = &[
            (
                "Debian's 20.10",
                R::Auto,
                debian.clone(),
                BuildKit,
                "Docker 20.10.24+dfsg1, API 1.41",
            ),
            (
                "oldest with BuildKit",
                R::Auto,
                facts("18.09.0", "1.39", "linux", false),
                BuildKit,
                "API 1.39",
            ),
            (
                "too old",
                R::Auto,
                facts("18.06.0", "1.38", "linux", false),
                Classic,
                "fallback: the engine speaks API 1.38: BuildKit needs API 1.39",
            ),
            (
                "Windows",
                R::Auto,
                facts("20.10.9", "1.41", "windows", false),
                Classic,
                "fallback: the engine runs on windows",
            ),
            (
                "Podman",
                R::Auto,
                facts("4.9.3", "1.41", "linux", true),
                Classic,
                "fallback: Podman's Docker API builds with Buildah",
            ),
            (
                "no /version answer",
                R::Auto,
                EngineFacts::default(),
                Classic,
                "fallback: the engine did not say its API version",
            ),
            (
                "asked for classic",
                R::Classic,
                debian.clone(),
                Classic,
                "asked for with --builder",
            ),
            (
                "asked for BuildKit",
                R::BuildKit,
                debian,
                BuildKit,
                "Docker 20.10.24",
            ),
        ];
        for (name, request, facts, builder, reason) in cases {
            let choice = choose(*request, "--builder", facts).unwrap();
            assert_eq!(choice.builder, *builder, "{name}");
            assert!(
                choice.reason.contains(reason),
                "{name}: {:?} lacks {reason:?}",
                choice.reason
            );
        }
    }

    #[test]
    fn asking_for_buildkit_on_an_engine_without_it_is_bad_input() {
        let err = choose(
            BuilderRequest::BuildKit,
            "--builder buildkit",
            &facts("4.9.3", "1.41", "linux", true),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::Usage);
        assert!(err.message().contains("Podman"), "{}", err.message());
        assert!(err.hint_text().unwrap().contains("--builder auto"));
    }

    #[test]
    fn buildkit_only_syntax_is_found_with_its_line() {
        let dockerfile = "\
# syntax is not a use: RUN --mount=type=cache
FROM scratch AS base
copy --link busybox /bin/busybox
RUN --mount=type=cache,target=/root/.cache \\
    --network=none \\
    pip install -r requirements.txt
COPY --chmod=0755 start.sh /start.sh
RUN echo --mount=not-a-flag
RUN <<EOF
echo hi
EOF
COPY <<-\"END\" /etc/conf
x
END
RUN cat <<<not-a-heredoc
RUN echo a << b
";
        let found: Vec<(Syntax, usize)> = buildkit_syntax(dockerfile)
            .into_iter()
            .map(|u| (u.syntax, u.line))
            .collect();
        assert_eq!(
            found,
            vec![
                (Syntax::CopyLink, 3),
                (Syntax::RunMount, 4),
                (Syntax::RunNetwork, 4),
                (Syntax::CopyChmod, 7),
                (Syntax::Heredoc, 9),
                (Syntax::Heredoc, 12),
            ]
        );
        assert!(buildkit_syntax(
            "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\"]\n"
        )
        .is_empty());
    }

    #[test]
    fn the_classic_builder_refuses_buildkit_syntax_naming_the_limitation_and_the_line() {
        let uses = buildkit_syntax("FROM scratch\nRUN --mount=type=cache,target=/c true\n");
        let fallback = BuilderChoice {
            builder: Builder::Classic,
            reason: "fallback: Podman's Docker API builds with Buildah, not BuildKit".into(),
            asked: None,
        };
        let err = classic_cannot_build(&uses, &fallback).unwrap();
        assert_eq!(err.exit_code(), crate::error::ExitCode::Usage);
        assert!(
            err.message().contains("`RUN --mount` on line 2"),
            "{}",
            err.message()
        );
        assert!(err.causes()[0].contains("Podman"), "{:?}", err.causes());
        assert!(err
            .hint_text()
            .unwrap()
            .contains("an engine that runs BuildKit"));
        let debian = facts("20.10.24+dfsg1", "1.41", "linux", false);
        let asked = choose(BuilderRequest::Classic, "--builder classic", &debian).unwrap();
        assert_eq!(asked.reason, "asked for with --builder classic");
        assert!(classic_cannot_build(&uses, &asked)
            .unwrap()
            .hint_text()
            .unwrap()
            .contains("drop --builder classic"));
        assert!(classic_cannot_build(&[], &asked).is_none());
        let from_env = choose(BuilderRequest::Classic, "DOCKER_BUILDKIT=0", &debian).unwrap();
        assert_eq!(from_env.reason, "asked for with DOCKER_BUILDKIT=0");
        assert!(classic_cannot_build(&uses, &from_env)
            .unwrap()
            .hint_text()
            .unwrap()
            .starts_with("unset DOCKER_BUILDKIT (or pass --builder auto)"));
        // As `docker build` reads it.
        for (value, request) in [
            ("0", BuilderRequest::Classic),
            ("false", BuilderRequest::Classic),
            ("1", BuilderRequest::BuildKit),
            ("True", BuilderRequest::BuildKit),
        ] {
            assert_eq!(docker_buildkit(value).unwrap(), request, "{value}");
        }
        let err = docker_buildkit("yes").unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::Usage);
        assert!(
            err.message().contains("DOCKER_BUILDKIT=`yes`"),
            "{}",
            err.message()
        );
        assert!(err
            .hint_text()
            .unwrap()
            .contains("0 (the classic builder) or 1"));
    }

    #[test]
    fn a_parse_error_on_syntax_newer_than_the_engines_frontend_says_so() {
        let debian = facts("20.10.24+dfsg1", "1.41", "linux", false);
        let uses = buildkit_syntax("FROM scratch\nCOPY --link a /a\n");
        // What Debian's 20.10 answered (seen on the local stack).
        let said = "failed to solve with frontend dockerfile.v0: failed to create LLB definition: dockerfile parse error line 2: Unknown flag: link";
        let err = frontend_too_old(said, &uses, &debian).unwrap();
        assert!(
            err.message().contains("`COPY/ADD --link` on line 2")
                && err.message().contains("syntax 1.4"),
            "{}",
            err.message()
        );
        assert!(err.hint_text().unwrap().contains("23.0"));
        // RUN --mount is in 20.10's frontend: a parse error there is the Dockerfile's own.
        let mount = buildkit_syntax("FROM scratch\nRUN --mount=type=cache,target=/c true\n");
        assert!(frontend_too_old(said, &mount, &debian).is_none());
        // Not a parse error: not this limitation.
        assert!(frontend_too_old("executor failed running", &uses, &debian).is_none());
    }
}
