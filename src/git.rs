//! The commit being shipped: `--sha`, else `GITHUB_SHA`, else `CIRCLE_SHA1`,
//! else `git rev-parse HEAD`.

use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};

/// A validated commit SHA (7–40 lowercase hex characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSha(String);

/// Where the SHA came from, for the log line that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShaSource {
    Flag,
    GithubSha,
    CircleSha1,
    GitHead,
}

impl std::fmt::Display for ShaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShaSource::Flag => "--sha",
            ShaSource::GithubSha => "GITHUB_SHA",
            ShaSource::CircleSha1 => "CIRCLE_SHA1",
            ShaSource::GitHead => "git rev-parse HEAD",
        })
    }
}

impl CommitSha {
    pub fn parse(value: &str) -> Result<Self> {
        let value = value.trim();
        let valid = (7..=40).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(Error::bad_input(format!(
                "invalid commit SHA `{value}`: expected 7 to 40 hexadecimal characters"
            ))
            .hint("pass the commit with `--sha $(git rev-parse HEAD)`"));
        }
        Ok(Self(value.to_ascii_lowercase()))
    }

    pub fn full(&self) -> &str {
        &self.0
    }

    /// The first 7 characters, as `git rev-parse --short` prints by default.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }
}

impl std::fmt::Display for CommitSha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The inputs of SHA resolution, so the precedence is testable without a process environment.
#[derive(Debug, Default, Clone)]
pub struct ShaInputs {
    pub flag: Option<String>,
    pub github_sha: Option<String>,
    pub circle_sha1: Option<String>,
}

/// The resolved commit, where it came from, and whether the work tree has
/// uncommitted changes (which the image would then contain but the SHA not name).
#[derive(Debug, Clone)]
pub struct Commit {
    pub sha: CommitSha,
    pub source: ShaSource,
    pub dirty: bool,
}

pub fn resolve(inputs: &ShaInputs, repo: &Path) -> Result<Commit> {
    let explicit = [
        (inputs.flag.as_deref(), ShaSource::Flag),
        (inputs.github_sha.as_deref(), ShaSource::GithubSha),
        (inputs.circle_sha1.as_deref(), ShaSource::CircleSha1),
    ]
    .into_iter()
    .find_map(|(value, source)| value.filter(|v| !v.trim().is_empty()).map(|v| (v, source)));

    let (sha, source) = match explicit {
        Some((value, source)) => (CommitSha::parse(value)?, source),
        None => (head(repo)?, ShaSource::GitHead),
    };
    Ok(Commit {
        sha,
        source,
        dirty: is_dirty(repo),
    })
}

fn head(repo: &Path) -> Result<CommitSha> {
    let output = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo)
        .output()
        .map_err(|err| {
            Error::bad_input("cannot resolve the commit: `git` could not be run")
                .caused_by(&err)
                .hint("pass the commit with `--sha <commit>` or set GITHUB_SHA / CIRCLE_SHA1")
        })?;
    if !output.status.success() {
        return Err(Error::bad_input(format!(
            "cannot resolve the commit: `git rev-parse HEAD` failed in {}",
            repo.display()
        ))
        .cause(String::from_utf8_lossy(&output.stderr).trim().to_string())
        .hint(
            "run shipit inside a git checkout with at least one commit, or pass `--sha <commit>`",
        ));
    }
    CommitSha::parse(String::from_utf8_lossy(&output.stdout).trim())
}

/// Whether `git status --porcelain` lists anything. Outside a git checkout: false.
pub fn is_dirty(repo: &Path) -> bool {
    Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(repo)
        .output()
        .map(|out| out.status.success() && !out.stdout.is_empty())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(flag: Option<&str>, github: Option<&str>, circle: Option<&str>) -> ShaInputs {
        ShaInputs {
            flag: flag.map(str::to_string),
            github_sha: github.map(str::to_string),
            circle_sha1: circle.map(str::to_string),
        }
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

    #[test]
    fn precedence_is_flag_then_github_then_circleci() {
        let dir = std::env::temp_dir();
        let cases = [
            (inputs(Some(A), Some(B), Some(C)), A, ShaSource::Flag),
            (inputs(None, Some(B), Some(C)), B, ShaSource::GithubSha),
            (inputs(None, None, Some(C)), C, ShaSource::CircleSha1),
            (inputs(Some(""), Some(B), None), B, ShaSource::GithubSha),
        ];
        for (input, want, source) in cases {
            let commit = resolve(&input, &dir).unwrap();
            assert_eq!(commit.sha.full(), want, "{input:?}");
            assert_eq!(commit.source, source, "{input:?}");
        }
    }

    #[test]
    fn falls_back_to_git_head() {
        let repo = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args)
                .current_dir(repo.path())
                .output()
                .unwrap();
            assert!(ok.status.success(), "{ok:?}");
            String::from_utf8(ok.stdout).unwrap()
        };
        git(&["init", "-q"]);
        std::fs::write(repo.path().join("f"), "1").unwrap();
        git(&["add", "f"]);
        git(&["commit", "-q", "-m", "one"]);
        let head = git(&["rev-parse", "HEAD"]);
        let commit = resolve(&ShaInputs::default(), repo.path()).unwrap();
        assert_eq!(commit.sha.full(), head.trim());
        assert_eq!(commit.source, ShaSource::GitHead);
        assert!(!commit.dirty);
        std::fs::write(repo.path().join("f"), "2").unwrap();
        assert!(resolve(&ShaInputs::default(), repo.path()).unwrap().dirty);
    }

    #[test]
    fn validation_accepts_7_to_40_hex_and_rejects_the_rest() {
        for ok in ["abcdef0", "ABCDEF0123", A] {
            assert!(CommitSha::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["abc", "abcdefg", "main", &format!("{A}0"), "abc def0"] {
            let err = CommitSha::parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), crate::error::ExitCode::Usage, "{bad}");
            assert!(err.hint_text().is_some());
        }
    }

    #[test]
    fn short_is_seven_characters() {
        assert_eq!(CommitSha::parse(A).unwrap().short(), "aaaaaaa");
    }
}
