//! Builds that take turns on an engine whose BuildKit crashes when two of
//! them export an inline cache at once.
//!
//! Docker 20.10 embeds BuildKit 0.8. Two BuildKit builds on it that export an
//! inline cache (shipit always does: `BUILDKIT_INLINE_CACHE=1`, so the next
//! build can reuse the layers from ECR) can kill the whole engine with
//! "fatal error: concurrent map writes" in `cache/remotecache/v1/chains.go`
//! (`(*item).LinkFrom`): moby/buildkit#2889, reported on Docker 20.10.16; the
//! lock that fixes it (moby/buildkit#2051, "remotecache: lock backlinks
//! cache") shipped with BuildKit 0.9, which Docker 20.10 never took. Seen
//! here on Docker 20.10.24: the end-to-end tests' builds side by side, and
//! dockerd died mid-build (every build after it failed).
//!
//! shipit cannot fix the engine, but its own builds need not race there:
//! on such an engine a BuildKit build first takes an advisory lock on a file
//! named after the engine in the temp dir, so builds of several shipit runs
//! on one machine (parallel CI jobs on one runner, a test suite) take turns.
//! Builds of other tools, or of other machines on a shared engine, are not
//! covered. A lock that cannot be taken (no temp dir, no permission) is
//! skipped: it must never stop a build.

use std::fs::{File, OpenOptions, TryLockError};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::time::Duration;

use super::builder::EngineFacts;

/// Whether builds on this engine must take turns: Docker's own engine
/// before 23.0 (20.10 and older embed BuildKit 0.8 or older; there is no
/// 21 or 22). An engine that did not say its version is not held back.
pub fn needed(facts: &EngineFacts) -> bool {
    if facts.podman {
        return false;
    }
    let major = facts
        .version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    major.is_some_and(|major| major < 23)
}

/// The lock file of the engine at `host` (`unix:///run/docker.sock`, `tcp://…`).
pub fn path(host: &str) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    host.hash(&mut hasher);
    std::env::temp_dir().join(format!("shipit-build-{:016x}.lock", hasher.finish()))
}

/// A build's turn on the engine; the next build's turn comes when it drops.
#[derive(Debug)]
pub struct Turn {
    _file: File,
}

/// How taking a turn went.
#[derive(Debug)]
pub enum Taken {
    /// At once: no other build held it.
    Free(Turn),
    /// After `waited` behind another build.
    AfterWaiting(Turn, Duration),
    /// The lock file could not be used (the reason): build without it.
    Skipped(String),
}

/// Waits for this build's turn on the engine at `host`; `waiting` is called
/// once, when another build holds it.
pub async fn take(host: &str, waiting: impl FnOnce() + Send) -> Taken {
    let path = path(host);
    let file = match OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
    {
        Ok(file) => file,
        Err(err) => return Taken::Skipped(format!("{}: {err}", path.display())),
    };
    let started = std::time::Instant::now();
    let mut waiting = Some(waiting);
    loop {
        match file.try_lock() {
            Ok(()) if waiting.is_some() => return Taken::Free(Turn { _file: file }),
            Ok(()) => return Taken::AfterWaiting(Turn { _file: file }, started.elapsed()),
            Err(TryLockError::WouldBlock) => {
                if let Some(say) = waiting.take() {
                    say();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(TryLockError::Error(err)) => {
                return Taken::Skipped(format!("{}: {err}", path.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker(version: &str) -> EngineFacts {
        EngineFacts {
            version: version.into(),
            api_version: "1.41".into(),
            os: "linux".into(),
            podman: false,
        }
    }

    #[test]
    fn builds_take_turns_on_docker_20_10_and_older_only() {
        assert!(needed(&docker("20.10.24+dfsg1")));
        assert!(needed(&docker("19.03.15")));
        assert!(!needed(&docker("23.0.0")));
        assert!(!needed(&docker("28.2.2")));
        assert!(
            !needed(&docker("")),
            "an engine that did not say is not held back"
        );
        let podman = EngineFacts {
            podman: true,
            ..docker("4.9.3")
        };
        assert!(!needed(&podman));
    }

    #[test]
    fn each_engine_has_its_own_lock_file() {
        let a = path("unix:///run/shipit/docker.sock");
        assert_eq!(a, path("unix:///run/shipit/docker.sock"));
        assert_ne!(a, path("unix:///var/run/docker.sock"));
        assert!(a.starts_with(std::env::temp_dir()));
    }

    #[tokio::test]
    async fn a_second_build_waits_until_the_first_drops_its_turn() {
        let host = format!("unix:///tmp/shipit-lock-test-{}.sock", std::process::id());
        let Taken::Free(first) = take(&host, || panic!("nobody held it")).await else {
            panic!("the first build takes its turn at once");
        };
        let (said, heard) = tokio::sync::oneshot::channel();
        let second = tokio::spawn({
            let host = host.clone();
            async move { take(&host, move || said.send(()).unwrap()).await }
        });
        tokio::time::timeout(Duration::from_secs(5), heard)
            .await
            .expect("the second build says it waits")
            .unwrap();
        assert!(
            !second.is_finished(),
            "it waits while the first holds the turn"
        );
        drop(first);
        match second.await.unwrap() {
            Taken::AfterWaiting(_, waited) => assert!(waited > Duration::ZERO),
            other => panic!("the second build gets its turn after waiting: {other:?}"),
        }
        let _ = std::fs::remove_file(path(&host));
    }
}
