//! A unix-socket forwarder in front of the Docker engine that "kills" the
//! engine mid-operation for one client: it drops the connection part-way
//! through a build's context upload, once a build's log starts streaming, or
//! as soon as a push starts answering.
//! The machine's engine itself keeps running for every other test.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineFault {
    /// Drop the connection after this many bytes of a build request have gone through.
    UploadCut(usize),
    /// Drop the connection once the engine's answer to a build has brought
    /// its first log message, and every connection after it: the engine
    /// dies while the build runs.
    DiesMidBuild,
    /// Drop the connection once a push request gets its first bytes of answer.
    PushCut,
}

pub struct EngineProxy {
    socket: PathBuf,
    fired: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl EngineProxy {
    /// Starts a forwarder to the engine named by `DOCKER_HOST` (a unix socket).
    pub fn start(fault: EngineFault) -> EngineProxy {
        let host = std::env::var("DOCKER_HOST").expect("DOCKER_HOST is set");
        let upstream = PathBuf::from(
            host.strip_prefix("unix://")
                .expect("the local stack's engine listens on a unix socket"),
        );
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                // An engine that died while a build ran answers nobody after it.
                if fault == EngineFault::DiesMidBuild && flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(engine) = UnixStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(pipe(client, engine, fault, flag.clone()));
            }
        });
        EngineProxy {
            socket,
            fired,
            _dir: dir,
        }
    }

    /// The `DOCKER_HOST` to give shipit.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Whether the fault was injected.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn pipe(
    mut client: UnixStream,
    mut engine: UnixStream,
    fault: EngineFault,
    fired: Arc<AtomicBool>,
) {
    let pattern: &[u8] = match fault {
        EngineFault::UploadCut(_) | EngineFault::DiesMidBuild => b"/build?",
        EngineFault::PushCut => b"/push?",
    };
    let mut up = vec![0u8; 64 * 1024];
    let mut down = vec![0u8; 64 * 1024];
    let mut armed = false;
    let mut sent = 0usize;
    loop {
        tokio::select! {
            read = client.read(&mut up) => {
                let n = match read { Ok(0) | Err(_) => break, Ok(n) => n };
                if !armed && contains(&up[..n], pattern) {
                    armed = true;
                }
                if let (true, EngineFault::UploadCut(limit)) = (armed, fault) {
                    sent += n;
                    if sent > limit {
                        fired.store(true, Ordering::SeqCst);
                        break;
                    }
                }
                if engine.write_all(&up[..n]).await.is_err() { break; }
            }
            read = engine.read(&mut down) => {
                let n = match read { Ok(0) | Err(_) => break, Ok(n) => n };
                if armed && fault == EngineFault::PushCut {
                    fired.store(true, Ordering::SeqCst);
                    break;
                }
                if client.write_all(&down[..n]).await.is_err() { break; }
                // The first log message reaches shipit, then the engine is gone.
                if armed && fault == EngineFault::DiesMidBuild && contains(&down[..n], b"{\"") {
                    fired.store(true, Ordering::SeqCst);
                    break;
                }
            }
        }
    }
}
