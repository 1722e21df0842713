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
//! named after the engine (its `ID` from `/info`, so every address of one
//! engine shares it) in the temp dir, so builds of several shipit runs on one
//! machine (parallel CI jobs on one runner, a test suite), of any user, take
//! turns. Builds of other tools, or of other machines on a shared engine, are
//! not covered. A lock that cannot be used (no temp dir, something else at
//! its name) is skipped, and a turn is waited for at most [`MAX_WAIT`]: it
//! must never stop a build.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::ErrorKind;
use std::path::PathBuf;
use std::time::Duration;

/// The longest a build waits for its turn before it goes ahead anyway.
pub const MAX_WAIT: Duration = Duration::from_secs(30 * 60);

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

/// The lock file of the engine known by `key`: its `ID` (e.g.
/// `3Q5T:…` or a UUID), or, when it did not say, its address.
pub fn path(key: &str) -> PathBuf {
    let name: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(96)
        .collect();
    std::env::temp_dir().join(format!("shipit-build-{name}.lock"))
}

/// Opens the lock file read-only (a lock needs no write access, so a file
/// another user made serves every user), creating it open to all.
fn open(path: &std::path::Path) -> std::io::Result<File> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(std::io::Error::other("not a regular file"))
        }
        Ok(_) => return OpenOptions::new().read(true).open(path),
        Err(err) if err.kind() != ErrorKind::NotFound => return Err(err),
        Err(_) => {}
    }
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666));
            Ok(file)
        }
        // Another build made it in between.
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {
            OpenOptions::new().read(true).open(path)
        }
        Err(err) => Err(err),
    }
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

/// Waits for this build's turn on the engine known by `key` (see [`path`]);
/// `waiting` is called once, when another build holds it.
pub async fn take(key: &str, waiting: impl FnOnce() + Send) -> Taken {
    take_within(key, MAX_WAIT, waiting).await
}

async fn take_within(key: &str, limit: Duration, waiting: impl FnOnce() + Send) -> Taken {
    let path = path(key);
    let file = match open(&path) {
        Ok(file) => file,
        Err(err) => return Taken::Skipped(format!("{}: {err}", path.display())),
    };
    let started = std::time::Instant::now();
    let mut waiting = Some(waiting);
    loop {
        match file.try_lock() {
            Ok(()) if waiting.is_some() => return Taken::Free(Turn { _file: file }),
            Ok(()) => return Taken::AfterWaiting(Turn { _file: file }, started.elapsed()),
            Err(TryLockError::WouldBlock) if started.elapsed() >= limit => {
                return Taken::Skipped(format!(
                    "another build held {} for {}s",
                    path.display(),
                    limit.as_secs()
                ))
            }
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
    fn each_engine_has_its_own_lock_file_named_after_its_id() {
        let id = "3Q5T:ABCD:EFGH:IJKL:MNOP:QRST:UVWX:YZ12:3456:7890:ABCD:EFGH";
        let a = path(id);
        assert_eq!(a, path(id));
        assert_ne!(a, path("9d2c3f0e-7b1a-4c55-8e2f-1a2b3c4d5e6f"));
        assert!(a.starts_with(std::env::temp_dir()));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            name,
            "shipit-build-3Q5T-ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ12-3456-7890-ABCD-EFGH.lock"
        );
        let by_address = path("unix:///run/shipit/docker.sock");
        let name = by_address.file_name().unwrap().to_str().unwrap();
        assert!(
            !name[..name.len() - 5].contains('.'),
            "one file name: {name}"
        );
        assert!(!name.contains('/'), "one file name: {name}");
    }

    #[tokio::test]
    async fn a_build_waits_at_most_its_limit_then_goes_ahead() {
        let key = format!("shipit-lock-limit-test-{}", std::process::id());
        let Taken::Free(_held) = take(&key, || panic!("nobody held it")).await else {
            panic!("the first build takes its turn at once");
        };
        match take_within(&key, Duration::from_millis(500), || {}).await {
            Taken::Skipped(why) => assert!(why.contains("held"), "{why}"),
            other => panic!("after the limit the build goes ahead: {other:?}"),
        }
        let _ = std::fs::remove_file(path(&key));
    }

    #[test]
    fn something_else_at_the_lock_files_name_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("shipit-build-x.lock");
        std::fs::create_dir(&at).unwrap();
        assert!(open(&at).is_err(), "a directory is not a lock file");
        let file = dir.path().join("ok.lock");
        let made = open(&file).unwrap();
        drop(made);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666, "open to every user's builds");
        assert!(open(&file).is_ok(), "and opened again, read-only");
    }

    #[tokio::test]
    async fn a_second_build_waits_until_the_first_drops_its_turn() {
        let host = format!("shipit-lock-test-{}", std::process::id());
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
