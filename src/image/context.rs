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
}

/// Counters the upload updates as it goes.
#[derive(Debug, Default)]
pub struct ContextStats {
    pub bytes: AtomicU64,
    pub files: AtomicU64,
}

impl BuildContext {
    pub fn prepare(root: &Path, dockerfile: &Path) -> Result<Self> {
        let root = root.canonicalize().map_err(|err| {
            Error::bad_input(format!("build context {} cannot be read", root.display()))
                .caused_by(&err)
        })?;
        let dockerfile = dockerfile.canonicalize().map_err(|err| {
            Error::bad_input(format!(
                "Dockerfile {} cannot be read",
                dockerfile.display()
            ))
            .caused_by(&err)
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
                        .caused_by(&err),
                )
            }
        };
        let (dockerfile_name, outside_dockerfile) = match dockerfile.strip_prefix(&root) {
            Ok(rel) => (to_slash(rel), None),
            Err(_) => (
                format!(".dockerfile.shipit-{}", std::process::id()),
                Some(dockerfile),
            ),
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
        })
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
        if self.outside_dockerfile.is_some() {
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
                let _ = tx.blocking_send(Err(err));
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    }

    fn write_tar(&self, writer: ChannelWriter, stats: &ContextStats) -> io::Result<()> {
        let mut tar = tar::Builder::new(writer);
        tar.mode(tar::HeaderMode::Deterministic);
        tar.follow_symlinks(false);
        self.walk(|rel, entry| {
            let file_type = entry.file_type();
            if file_type.is_dir() {
                tar.append_dir(rel, entry.path())?;
            } else {
                tar.append_path_with_name(entry.path(), rel)?;
            }
            if file_type.is_file() {
                stats.files.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })?;
        if let Some(dockerfile) = &self.outside_dockerfile {
            tar.append_path_with_name(dockerfile, &self.dockerfile_name)?;
        }
        let mut writer = tar.into_inner()?;
        writer.flush()
    }
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

    async fn tar_names(context: BuildContext) -> Vec<String> {
        let stats = Arc::new(ContextStats::default());
        let mut stream = Box::pin(context.into_stream(stats));
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
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
