//! The build context as a tar stream: walked, filtered by `.dockerignore`
//! exactly as Docker does, written on a blocking thread into a small bounded
//! channel, so a 1 GiB context never sits in memory.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::sync::mpsc;
use walkdir::WalkDir;

use super::dockerignore::DockerIgnore;
use crate::error::{Error, Result};

/// Chunk size sent to the engine, and how many chunks may wait in the channel.
const CHUNK: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 8;

/// A prepared context: what will be sent, before anything is sent.
#[derive(Debug, Clone)]
pub struct BuildContext {
    root: PathBuf,
    ignore: DockerIgnore,
    /// The Dockerfile's name inside the tar (what the engine is told to use).
    dockerfile_name: String,
    /// A Dockerfile from outside the context, added under `dockerfile_name`.
    outside_dockerfile: Option<PathBuf>,
    /// The Dockerfile as given (canonical path).
    dockerfile: PathBuf,
    /// Instructions appended to the Dockerfile the engine reads (then sent
    /// under a private name, the original left as it is).
    appended: Option<String>,
}

/// Counters the upload updates as it goes.
#[derive(Debug, Default)]
pub struct ContextStats {
    pub bytes: AtomicU64,
    pub files: AtomicU64,
    /// Why the upload stopped on shipit's side (a file that vanished or
    /// cannot be read), when it did: the engine then sees a cut body, and
    /// the build's error must name this, not the engine.
    pub failed: std::sync::Mutex<Option<String>>,
}

impl BuildContext {
    pub fn prepare(root: &Path, dockerfile: &Path) -> Result<Self> {
        let root = root.canonicalize().map_err(|err| {
            Error::bad_input(format!("build context {} cannot be read", root.display()))
                .caused_by(&err)
                .hint("pass --context <dir> relative to the repository")
        })?;
        let dockerfile = dockerfile.canonicalize().map_err(|err| {
            Error::bad_input(format!(
                "Dockerfile {} cannot be read",
                dockerfile.display()
            ))
            .caused_by(&err)
            .hint("pass --dockerfile <file> relative to the repository")
        })?;
        let ignore_path = root.join(".dockerignore");
        let mut ignore = match std::fs::read_to_string(&ignore_path) {
            Ok(text) => DockerIgnore::parse(&text).map_err(|err| {
                Error::bad_input(format!("invalid pattern in {}", ignore_path.display()))
                    .cause(err.to_string())
                    .hint("fix the pattern; .dockerignore uses Go filepath.Match syntax plus `**`")
            })?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => DockerIgnore::empty(),
            Err(err) => {
                return Err(
                    Error::bad_input(format!("cannot read {}", ignore_path.display()))
                        .caused_by(&err)
                        .hint("check that this user may read it"),
                )
            }
        };
        let (dockerfile_name, outside_dockerfile) = match dockerfile.strip_prefix(&root) {
            Ok(rel) => (to_slash(rel), None),
            Err(_) => (private_name(), Some(dockerfile.clone())),
        };
        // As the Docker CLI does: the engine needs the Dockerfile and .dockerignore
        // even when the patterns exclude them.
        ignore.keep(".dockerignore");
        if outside_dockerfile.is_none() {
            ignore.keep(&dockerfile_name);
        }
        Ok(Self {
            root,
            ignore,
            dockerfile_name,
            outside_dockerfile,
            dockerfile,
            appended: None,
        })
    }

    /// Appends `instruction` (e.g. one `LABEL` line) to the Dockerfile the
    /// engine reads. The engine is then pointed at a private copy.
    pub fn with_appended(mut self, instruction: &str) -> Self {
        let mut text = self.appended.take().unwrap_or_default();
        text.push_str(instruction.trim_end());
        text.push('\n');
        self.appended = Some(text);
        if self.outside_dockerfile.is_none() {
            self.dockerfile_name = private_name();
        }
        self
    }

    /// Whether the engine reads a Dockerfile sent under a private name.
    fn private_dockerfile(&self) -> bool {
        self.outside_dockerfile.is_some() || self.appended.is_some()
    }

    pub fn dockerfile_name(&self) -> &str {
        &self.dockerfile_name
    }

    /// The relative paths that will be sent, in order (directories included).
    pub fn entries(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        self.walk(|rel, _| {
            names.push(rel.to_string());
            Ok(())
        })
        .map_err(|err| Error::failed("cannot read the build context").caused_by(&err))?;
        if self.private_dockerfile() {
            names.push(self.dockerfile_name.clone());
        }
        Ok(names)
    }

    fn walk(
        &self,
        mut visit: impl FnMut(&str, &walkdir::DirEntry) -> io::Result<()>,
    ) -> io::Result<()> {
        let root = &self.root;
        let ignore = &self.ignore;
        let walker = WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|entry| {
                let rel = relative(root, entry.path());
                rel.is_empty() || !(entry.file_type().is_dir() && ignore.can_skip_dir(&rel))
            });
        for entry in walker {
            let entry = entry.map_err(io::Error::other)?;
            let rel = relative(root, entry.path());
            if rel.is_empty() || ignore.is_excluded(&rel) {
                continue;
            }
            let kind = entry.file_type();
            if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
                continue; // sockets, FIFOs, devices: Docker does not send them either
            }
            visit(&rel, &entry)?;
        }
        Ok(())
    }

    /// Starts writing the tar on a blocking thread; the stream yields its chunks.
    /// An I/O error ends the stream with that error (the engine then sees a cut body).
    pub fn into_stream(
        self,
        stats: Arc<ContextStats>,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
        tokio::task::spawn_blocking(move || {
            let writer = ChannelWriter {
                tx: tx.clone(),
                buf: BytesMut::with_capacity(CHUNK),
                stats: stats.clone(),
            };
            if let Err(err) = self.write_tar(writer, &stats) {
                // BrokenPipe: the engine stopped reading (its side, said there).
                if err.kind() != io::ErrorKind::BrokenPipe {
                    *stats.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(err.to_string());
                }
                let _ = tx.blocking_send(Err(err));
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    }

    fn write_tar(&self, writer: ChannelWriter, stats: &ContextStats) -> io::Result<()> {
        let mut tar = tar::Builder::new(writer);
        self.walk(|rel, entry| {
            if append(&mut tar, rel, entry.path())? && entry.file_type().is_file() {
                stats.files.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })?;
        match &self.appended {
            Some(extra) => {
                // The Dockerfile plus the appended lines, as a file of its own.
                let mut text = std::fs::read(&self.dockerfile)?;
                text.push(b'\n');
                text.extend_from_slice(extra.as_bytes());
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(text.len() as u64);
                header.set_mtime(0);
                tar.append_data(&mut header, &self.dockerfile_name, text.as_slice())?;
            }
            None => {
                if let Some(dockerfile) = &self.outside_dockerfile {
                    append(&mut tar, &self.dockerfile_name, dockerfile)?;
                }
            }
        }
        let mut writer = tar.into_inner()?;
        writer.flush()
    }
}

/// Appends one entry as Docker's CLI sends it: permission bits kept (a 0600
/// file stays 0600 in the image), owner 0:0 and a fixed mtime (so the same
/// tree gives the same tar and the build cache holds), symlinks as links.
/// Sockets, FIFOs and devices are not sent. Returns whether it was sent.
fn append<W: Write>(tar: &mut tar::Builder<W>, name: &str, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path)?;
    let file_type = meta.file_type();
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
    header.set_mode(meta.permissions().mode() & 0o7777);
    if file_type.is_file() {
        tar.append_data(&mut header, name, std::fs::File::open(path)?)?;
    } else if file_type.is_dir() {
        tar.append_data(&mut header, name, io::empty())?;
    } else if file_type.is_symlink() {
        tar.append_link(&mut header, name, std::fs::read_link(path)?)?;
    } else {
        return Ok(false);
    }
    Ok(true)
}

fn private_name() -> String {
    format!(".dockerfile.shipit-{}", std::process::id())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).map(to_slash).unwrap_or_default()
}

fn to_slash(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: BytesMut,
    stats: Arc<ContextStats>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.stats
            .bytes
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the engine stopped reading the build context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let take = room.min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() >= CHUNK {
            self.send()?;
            self.buf.reserve(CHUNK);
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, body) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        dir
    }

    /// The whole tar the engine would receive.
    async fn tar_bytes(context: BuildContext) -> Vec<u8> {
        let stats = Arc::new(ContextStats::default());
        let mut stream = Box::pin(context.into_stream(stats));
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        bytes
    }

    async fn tar_names(context: BuildContext) -> Vec<String> {
        let bytes = tar_bytes(context).await;
        let mut archive = tar::Archive::new(bytes.as_slice());
        archive
            .entries()
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect()
    }

    #[tokio::test]
    async fn the_tar_holds_exactly_what_dockerignore_lets_through() {
        let dir = tree(&[
            ("Dockerfile", "FROM scratch"),
            (".dockerignore", "*.log\nbig/\nDockerfile\n!keep.log\n"),
            ("app/main.txt", "x"),
            ("debug.log", "x"),
            ("keep.log", "x"),
            ("big/blob", "x"),
        ]);
        let context = BuildContext::prepare(dir.path(), &dir.path().join("Dockerfile")).unwrap();
        let names = tar_names(context.clone()).await;
        assert_eq!(names, context.entries().unwrap());
        assert_eq!(
            names,
            [
                ".dockerignore",
                "Dockerfile",
                "app",
                "app/main.txt",
                "keep.log"
            ]
        );
    }

    #[tokio::test]
    async fn modes_are_kept_owners_and_times_are_fixed_and_sockets_are_left_out() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tree(&[
            ("Dockerfile", "FROM scratch"),
            ("secret.key", "k"),
            ("run.sh", "#!/bin/sh"),
        ]);
        let mode = |name: &str, mode: u32| {
            std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(mode))
                .unwrap()
        };
        mode("secret.key", 0o600);
        mode("run.sh", 0o750);
        std::os::unix::fs::symlink("run.sh", dir.path().join("link")).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("app.sock")).unwrap();
        let context = BuildContext::prepare(dir.path(), &dir.path().join("Dockerfile")).unwrap();
        let bytes = tar_bytes(context).await;
        let mut archive = tar::Archive::new(bytes.as_slice());
        let entries: Vec<(String, u32, u64, u64, Option<String>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.mtime().unwrap(),
                    e.link_name()
                        .unwrap()
                        .map(|l| l.to_string_lossy().to_string()),
                )
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            ["Dockerfile", "link", "run.sh", "secret.key"],
            "no socket"
        );
        let find = |name: &str| entries.iter().find(|e| e.0 == name).unwrap();
        assert_eq!(find("secret.key").1, 0o600);
        assert_eq!(find("run.sh").1, 0o750);
        assert_eq!(find("link").4.as_deref(), Some("run.sh"));
        assert!(entries.iter().all(|e| e.2 == 0), "owner 0");
        let mtimes: Vec<u64> = entries.iter().map(|e| e.3).collect();
        assert!(
            mtimes.windows(2).all(|w| w[0] == w[1]),
            "one fixed mtime: {mtimes:?}"
        );
    }

    #[tokio::test]
    async fn appended_instructions_go_to_a_private_copy_of_the_dockerfile() {
        let dir = tree(&[
            ("Dockerfile", "FROM scratch\nCOPY a.txt /a.txt"),
            ("a.txt", "x"),
        ]);
        let context = BuildContext::prepare(dir.path(), &dir.path().join("Dockerfile"))
            .unwrap()
            .with_appended(r#"LABEL "a"="1" "b"="2""#);
        let name = context.dockerfile_name().to_string();
        assert!(name.starts_with(".dockerfile.shipit-"), "{name}");
        let bytes = tar_bytes(context).await;
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut files = std::collections::BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().to_string();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            files.insert(path, text);
        }
        assert_eq!(
            files["Dockerfile"], "FROM scratch\nCOPY a.txt /a.txt",
            "the original is untouched"
        );
        assert_eq!(
            files[&name],
            "FROM scratch\nCOPY a.txt /a.txt\nLABEL \"a\"=\"1\" \"b\"=\"2\"\n"
        );
    }

    #[tokio::test]
    async fn a_dockerfile_outside_the_context_is_added_under_a_private_name() {
        let dir = tree(&[("ctx/a.txt", "x"), ("docker/Dockerfile", "FROM scratch")]);
        let context = BuildContext::prepare(
            &dir.path().join("ctx"),
            &dir.path().join("docker/Dockerfile"),
        )
        .unwrap();
        let name = context.dockerfile_name().to_string();
        assert!(name.starts_with(".dockerfile.shipit-"), "{name}");
        assert_eq!(tar_names(context).await, ["a.txt".to_string(), name]);
    }
}
