//! The install script (`scripts/install.sh`) that action.yml, the CircleCI orb
//! and the README's one-line installer run (issue 14): against a release laid
//! out as cargo-dist lays out a GitHub release (`shipit-<target>.tar.gz`
//! holding `shipit-<target>/shipit`, and `shipit-<target>.tar.gz.sha256`),
//! served on loopback by a small HTTP server in this file, or as a file:// URL.
//! The binary in the archive is a stand-in script that answers `--version`.
//!
//! Every run is hermetic: a cleared environment (PATH, a temporary HOME and
//! TMPDIR), the script run by `sh` (dash on Debian: POSIX only).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    repo_root().join("scripts/install.sh")
}

/// The stand-in for the shipit binary: prints `shipit <version>` like clap does.
fn stand_in(version: &str) -> String {
    format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'shipit {version}'; exit 0; fi\necho \"stand-in shipit $*\"\n"
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `shipit-<target>.tar.gz` as cargo-dist makes it: one root directory named
/// after the archive, the binary inside, mode 755.
fn archive(target: &str, binary: &str) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(binary.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    tar.append_data(
        &mut header,
        format!("shipit-{target}/shipit"),
        binary.as_bytes(),
    )
    .unwrap();
    let readme = b"shipit\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(readme.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(
        &mut header,
        format!("shipit-{target}/README.md"),
        &readme[..],
    )
    .unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

/// A release directory: `<root>/<tag>/shipit-<target>.tar.gz` and its `.sha256`.
struct Release {
    root: tempfile::TempDir,
    tag: String,
    target: String,
}

impl Release {
    fn new(tag: &str, target: &str, binary_version: &str) -> Release {
        let root = tempfile::tempdir().unwrap();
        let release = Release {
            root,
            tag: tag.to_string(),
            target: target.to_string(),
        };
        std::fs::create_dir_all(release.dir()).unwrap();
        let bytes = archive(target, &stand_in(binary_version));
        std::fs::write(release.archive_path(), &bytes).unwrap();
        // cargo-dist's format: "<hex> *<file name>" (sha256sum's binary mode).
        std::fs::write(
            release.checksum_path(),
            format!("{} *{}\n", sha256_hex(&bytes), release.archive_name()),
        )
        .unwrap();
        release
    }

    fn dir(&self) -> PathBuf {
        self.root.path().join(&self.tag)
    }
    fn archive_name(&self) -> String {
        format!("shipit-{}.tar.gz", self.target)
    }
    fn archive_path(&self) -> PathBuf {
        self.dir().join(self.archive_name())
    }
    fn checksum_path(&self) -> PathBuf {
        self.dir().join(format!("{}.sha256", self.archive_name()))
    }
    fn file_url(&self) -> String {
        format!("file://{}", self.dir().display())
    }
}

/// A loopback HTTP/1.1 file server over a directory that records each path asked.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn serve(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (root, seen) = (root.to_path_buf(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                loop {
                    let mut header = String::new();
                    match reader.read_line(&mut header) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if header == "\r\n" || header == "\n" => break,
                        Ok(_) => {}
                    }
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .to_string();
                seen.lock().unwrap().push(path.clone());
                let file = root.join(path.trim_start_matches('/'));
                let response = match std::fs::read(&file) {
                    Ok(body) if !path.contains("..") => {
                        let mut head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        head.extend(body);
                        head
                    }
                    _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nNot Found\n"
                        .to_vec(),
                };
                let _ = stream.write_all(&response);
            }
        });
        Server { port, requests }
    }

    fn url(&self, tag: &str) -> String {
        format!("http://127.0.0.1:{}/{tag}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// A hermetic environment for one run of the script.
struct Sandbox {
    home: tempfile::TempDir,
    /// Put first on PATH: fake commands (`uname`) go here.
    shims: PathBuf,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Sandbox {
    fn new() -> Sandbox {
        let home = tempfile::tempdir().unwrap();
        let shims = home.path().join("shims");
        std::fs::create_dir_all(&shims).unwrap();
        std::fs::create_dir_all(home.path().join("tmp")).unwrap();
        Sandbox { home, shims }
    }

    fn bin_dir(&self) -> PathBuf {
        self.home.path().join("bin")
    }

    /// `uname` that answers `-s` and `-m` as another machine would.
    fn fake_uname(&self, os: &str, cpu: &str) {
        let path = self.shims.join("uname");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\ncase \"$1\" in -s) echo {os} ;; -m) echo {cpu} ;; *) echo {os} ;; esac\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn run_with(&self, shell: &str, args: &[&str]) -> Run {
        let path = format!(
            "{}:{}",
            self.shims.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
        );
        Command::new(shell)
            .arg(script())
            .args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.home.path())
            .env("TMPDIR", self.home.path().join("tmp"))
            .output()
            .unwrap()
            .into()
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with("sh", args)
    }

    /// Files left in the install directory (none when nothing was installed).
    fn installed(&self) -> BTreeSet<String> {
        match std::fs::read_dir(self.bin_dir()) {
            Ok(entries) => entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => BTreeSet::new(),
        }
    }

    /// Nothing of a download is left behind in TMPDIR either.
    fn leftovers_in_tmp(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.home.path().join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }
}

/// The target the script picks on this machine (asserted on by
/// `this_machine_gets_the_static_musl_build_for_its_cpu`).
fn this_target() -> String {
    let run = Sandbox::new().run(&["--print-target"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout.trim().to_string()
}

fn run_installed(sandbox: &Sandbox) -> String {
    let out = Command::new(sandbox.bin_dir().join("shipit"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn installs_the_release_binary_from_a_loopback_release_after_checking_its_sha256() {
    let release = Release::new("v0.2.0", &this_target(), "0.2.0");
    let server = Server::serve(release.root.path());
    let sandbox = Sandbox::new();
    let to = sandbox.bin_dir();
    let run = sandbox.run(&[
        "--version",
        "v0.2.0",
        "--base-url",
        &server.url("v0.2.0"),
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        sandbox.installed(),
        BTreeSet::from(["shipit".to_string()]),
        "only the binary is installed"
    );
    let mode = std::fs::metadata(to.join("shipit"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(run_installed(&sandbox), "shipit 0.2.0");
    let sha = sha256_hex(&std::fs::read(release.archive_path()).unwrap());
    assert!(
        run.stderr.contains(&format!(
            "installed shipit 0.2.0 ({}, sha256 {sha})",
            release.target
        )),
        "{}",
        run.stderr
    );
    let archive = release.archive_name();
    assert_eq!(
        server.requests(),
        vec![
            format!("/v0.2.0/{archive}.sha256"),
            format!("/v0.2.0/{archive}")
        ]
    );
    assert!(sandbox.leftovers_in_tmp().is_empty());

    // A second run (a restored cache) finds it and downloads nothing.
    let again = sandbox.run(&[
        "--version",
        "0.2.0",
        "--base-url",
        &server.url("v0.2.0"),
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("already installed"),
        "{}",
        again.stderr
    );
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn installs_from_a_file_url_with_the_options_given_as_environment_variables_under_bash() {
    // bash: what CircleCI runs the orb's inlined copy with.
    let release = Release::new("v1.4.0-rc.1", &this_target(), "1.4.0-rc.1");
    let sandbox = Sandbox::new();
    let path = format!(
        "{}:{}",
        sandbox.shims.display(),
        std::env::var("PATH").unwrap()
    );
    let run: Run = Command::new("bash")
        .arg(script())
        .env_clear()
        .env("PATH", path)
        .env("HOME", sandbox.home.path())
        .env("TMPDIR", sandbox.home.path().join("tmp"))
        .env("SHIPIT_INSTALL_VERSION", "v1.4.0-rc.1")
        .env("SHIPIT_INSTALL_BASE_URL", release.file_url())
        // As the orb passes it: a literal ~.
        .env("SHIPIT_INSTALL_DIR", "~/bin")
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run_installed(&sandbox), "shipit 1.4.0-rc.1");
}

#[test]
fn a_checksum_file_that_does_not_match_fails_and_installs_nothing() {
    let release = Release::new("v0.2.0", &this_target(), "0.2.0");
    let wrong = "0".repeat(64);
    std::fs::write(
        release.checksum_path(),
        format!("{wrong} *{}\n", release.archive_name()),
    )
    .unwrap();
    let server = Server::serve(release.root.path());
    let sandbox = Sandbox::new();
    let run = sandbox.run(&[
        "--version",
        "v0.2.0",
        "--base-url",
        &server.url("v0.2.0"),
        "--to",
        sandbox.bin_dir().to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "error: checksum mismatch for {}: expected sha256 {wrong}",
            release.archive_name()
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was installed"));
    assert!(run.stderr.contains("\nhint: "), "{}", run.stderr);
    assert!(sandbox.installed().is_empty(), "{:?}", sandbox.installed());
    assert!(sandbox.leftovers_in_tmp().is_empty());
}

#[test]
fn an_archive_changed_after_its_checksum_was_published_fails_and_leaves_the_installed_shipit_alone()
{
    let release = Release::new("v0.2.0", &this_target(), "0.2.0");
    // Same name, other content (a different binary), old checksum file.
    std::fs::write(
        release.archive_path(),
        archive(
            &release.target,
            &stand_in("0.2.0").replace("stand-in", "evil"),
        ),
    )
    .unwrap();
    let server = Server::serve(release.root.path());
    let sandbox = Sandbox::new();
    // An older shipit is installed already: it must stay as it was.
    std::fs::create_dir_all(sandbox.bin_dir()).unwrap();
    let old = stand_in("0.1.0");
    std::fs::write(sandbox.bin_dir().join("shipit"), &old).unwrap();
    std::fs::set_permissions(
        sandbox.bin_dir().join("shipit"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let run = sandbox.run(&[
        "--version",
        "v0.2.0",
        "--base-url",
        &server.url("v0.2.0"),
        "--to",
        sandbox.bin_dir().to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("checksum mismatch"), "{}", run.stderr);
    assert_eq!(sandbox.installed(), BTreeSet::from(["shipit".to_string()]));
    assert_eq!(
        std::fs::read_to_string(sandbox.bin_dir().join("shipit")).unwrap(),
        old
    );
}

#[test]
fn a_checksum_file_that_holds_no_checksum_fails() {
    let release = Release::new("v0.2.0", &this_target(), "0.2.0");
    std::fs::write(release.checksum_path(), "<html>rate limited</html>\n").unwrap();
    let sandbox = Sandbox::new();
    let run = sandbox.run(&[
        "--version",
        "v0.2.0",
        "--base-url",
        &release.file_url(),
        "--to",
        sandbox.bin_dir().to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("does not hold a SHA-256 checksum"),
        "{}",
        run.stderr
    );
    assert!(sandbox.installed().is_empty());
}

#[test]
fn an_unknown_cpu_architecture_fails_with_a_hint_and_downloads_nothing() {
    let release = Release::new("v0.2.0", "x86_64-unknown-linux-musl", "0.2.0");
    let server = Server::serve(release.root.path());
    let sandbox = Sandbox::new();
    sandbox.fake_uname("Linux", "riscv64");
    let run = sandbox.run(&[
        "--version",
        "v0.2.0",
        "--base-url",
        &server.url("v0.2.0"),
        "--to",
        sandbox.bin_dir().to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("error: no shipit release build for the CPU architecture `riscv64` (Linux)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: release builds exist for x86_64-unknown-linux-musl, aarch64-unknown-linux-musl, x86_64-apple-darwin, aarch64-apple-darwin")
            && run.stderr.contains("cargo install --locked --git"),
        "{}",
        run.stderr
    );
    assert!(server.requests().is_empty());
    assert!(sandbox.installed().is_empty());
}

#[test]
fn an_unknown_operating_system_fails_with_a_hint() {
    let sandbox = Sandbox::new();
    sandbox.fake_uname("FreeBSD", "amd64");
    let run = sandbox.run(&["--print-target"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no shipit release build for the operating system `FreeBSD`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint: "));
}

#[test]
fn each_supported_machine_gets_its_release_target() {
    for (os, cpu, target) in [
        ("Linux", "x86_64", "x86_64-unknown-linux-musl"),
        ("Linux", "aarch64", "aarch64-unknown-linux-musl"),
        ("Linux", "arm64", "aarch64-unknown-linux-musl"),
        ("Darwin", "arm64", "aarch64-apple-darwin"),
        ("Darwin", "x86_64", "x86_64-apple-darwin"),
    ] {
        let sandbox = Sandbox::new();
        sandbox.fake_uname(os, cpu);
        let run = sandbox.run(&["--print-target"]);
        assert_eq!(run.code, 0, "{os} {cpu}: {}", run.stderr);
        assert_eq!(run.stdout.trim(), target, "{os} {cpu}");
    }
}

#[test]
fn this_machine_gets_the_static_musl_build_for_its_cpu() {
    let expected = match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "x86_64-unknown-linux-musl",
        ("linux", "aarch64") => "aarch64-unknown-linux-musl",
        ("macos", "x86_64") => "x86_64-apple-darwin",
        ("macos", "aarch64") => "aarch64-apple-darwin",
        (os, arch) => panic!("no release target for {os}/{arch}"),
    };
    assert_eq!(this_target(), expected);
}

#[test]
fn a_release_without_a_build_for_this_target_fails_naming_the_urls() {
    // Only a macOS build was published.
    let release = Release::new("v0.2.0", "aarch64-apple-darwin", "0.2.0");
    let server = Server::serve(release.root.path());
    let sandbox = Sandbox::new();
    sandbox.fake_uname("Linux", "x86_64");
    let run = sandbox.run(&[
        "--version",
        "v0.2.0",
        "--base-url",
        &server.url("v0.2.0"),
        "--to",
        sandbox.bin_dir().to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("error: could not download"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "hint: is v0.2.0 a published shipit release with a build for x86_64-unknown-linux-musl? Its files should be {}/shipit-x86_64-unknown-linux-musl.tar.gz",
            server.url("v0.2.0")
        )),
        "{}",
        run.stderr
    );
    assert!(sandbox.installed().is_empty());
}

#[test]
fn a_release_whose_binary_is_another_version_fails_and_installs_nothing() {
    let release = Release::new("v0.2.0", &this_target(), "0.1.9");
    let sandbox = Sandbox::new();
    let run = sandbox.run(&[
        "--version",
        "v0.2.0",
        "--base-url",
        &release.file_url(),
        "--to",
        sandbox.bin_dir().to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the release v0.2.0 holds `shipit 0.1.9`, not shipit 0.2.0"),
        "{}",
        run.stderr
    );
    assert!(sandbox.installed().is_empty());
}

#[test]
fn plain_http_is_refused_off_loopback_and_bad_input_exits_2() {
    let sandbox = Sandbox::new();
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "--version",
                "v0.2.0",
                "--base-url",
                "http://releases.example.com/v0.2.0",
            ],
            "refusing to download over plain http",
        ),
        (
            &["--version", "v0.2.0", "--base-url", "ftp://example.com/x"],
            "unsupported base URL",
        ),
        (&["--version", "main"], "`main` is not a release version"),
        (&["--frobnicate"], "unknown argument `--frobnicate`"),
    ];
    for (args, message) in cases {
        let run = sandbox.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("hint: "), "{args:?}: {}", run.stderr);
    }
    assert!(sandbox.installed().is_empty());
}

/// action.yml's default `version`: the action's own ref, when it is a release tag.
#[test]
fn only_release_tags_are_taken_as_versions_to_download() {
    let sandbox = Sandbox::new();
    for (reference, tag) in [
        ("v0.2.0", Some("v0.2.0")),
        ("refs/tags/v1.10.3", Some("v1.10.3")),
        ("v2.0.0-rc.1", Some("v2.0.0-rc.1")),
        ("v1", None),
        ("main", None),
        ("refs/heads/v0.2.0-fix", None),
        ("3f5c2a1e9b0d4c7f8a6b5e4d3c2b1a0f9e8d7c6b", None),
        ("", None),
    ] {
        let run = sandbox.run(&["--tag-from-ref", reference]);
        match tag {
            Some(tag) => {
                assert_eq!(run.code, 0, "{reference}");
                assert_eq!(run.stdout.trim(), tag, "{reference}");
            }
            None => {
                assert_eq!(run.code, 1, "{reference}");
                assert_eq!(run.stdout, "", "{reference}");
            }
        }
    }
}

/// What the script downloads is what the release pipeline builds and names.
#[test]
fn the_script_expects_what_the_cargo_dist_config_publishes() {
    let text = std::fs::read_to_string(script()).unwrap();
    let line = |prefix: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in install.sh"))
            .trim_matches('"')
            .to_string()
    };
    let script_targets: BTreeSet<String> =
        line("TARGETS=").split(' ').map(str::to_string).collect();

    let dist: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo_root().join("dist-workspace.toml")).unwrap())
            .unwrap();
    let dist = dist["dist"].as_table().unwrap();
    let dist_targets: BTreeSet<String> = dist["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert_eq!(script_targets, dist_targets);
    assert_eq!(dist["unix-archive"].as_str(), Some(".tar.gz"));
    // Unset means sha256, cargo-dist's default; anything else breaks the script.
    assert!(dist
        .get("checksum")
        .is_none_or(|c| c.as_str() == Some("sha256")));
    let ci = &dist["ci"];
    assert!(
        ci.as_str() == Some("github")
            || ci
                .as_array()
                .is_some_and(|a| a.iter().any(|c| c.as_str() == Some("github"))),
        "{ci:?}"
    );

    let cargo: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap()).unwrap();
    let repository = cargo["package"]["repository"].as_str().unwrap();
    assert_eq!(
        repository.strip_prefix("https://github.com/"),
        Some(line("DEFAULT_REPO=").as_str())
    );

    // The workflow is cargo-dist's own, generated from that config.
    let workflow =
        std::fs::read_to_string(repo_root().join(".github/workflows/release.yml")).unwrap();
    assert!(workflow.contains("autogenerated by dist"));
}
