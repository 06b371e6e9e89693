//! A private Docker daemon for the tests (Debian's docker.io, installed by
//! scripts/install-test-deps.sh), started with the flags that leave the host's network alone
//! (no bridge, no iptables, no ip_forward) and its own socket, exec root and data root, so that
//! it never meets another daemon on the machine. Stopped by its PID when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{repo_path, run_ok};

/// Debian's CLI, the daemon's own version (the host may have a newer, different one first on
/// PATH).
const DOCKER: &str = "/usr/bin/docker";

pub struct Docker {
    child: Child,
    pub host: String,
    pub data_root: PathBuf,
    log: PathBuf,
    /// Socket, exec root and daemon log: short paths (unix sockets are limited to 108 bytes).
    _run: tempfile::TempDir,
    _data: Option<tempfile::TempDir>,
    /// Held while a kept data root is in use: one daemon per data root, whichever worktree runs.
    _lock: Option<std::fs::File>,
}

/// The data root kept between runs (base images, the image build's cargo cache), shared by every
/// checkout on the machine so that only the first build anywhere compiles all crates.
pub fn shared_data_root() -> PathBuf {
    std::env::var_os("LOGPORT_TEST_DOCKER_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/logport-test-docker"))
}

impl Docker {
    /// A daemon whose data root is `data_root` (kept between runs: images and build caches
    /// survive), or a fresh temp dir with `None`.
    pub fn start(data_root: Option<&Path>) -> Docker {
        for tool in ["dockerd", DOCKER, "containerd", "runc"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .stdout(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false),
                "`{tool}` is not installed: run scripts/install-test-deps.sh (installs Debian's docker.io)"
            );
        }
        let run = tempfile::Builder::new()
            .prefix("lpd")
            .tempdir_in("/tmp")
            .unwrap();
        let (data_root, data, lock) = match data_root {
            Some(p) => {
                std::fs::create_dir_all(p).unwrap();
                let lock = std::fs::File::create(p.with_extension("lock")).unwrap();
                // Waits while another test run (another checkout) has a daemon on this root.
                lock.lock().unwrap();
                (p.to_path_buf(), None, Some(lock))
            }
            None => {
                let d = tempfile::tempdir().unwrap();
                (d.path().to_path_buf(), Some(d), None)
            }
        };
        let sock = run.path().join("d.sock");
        let log = run.path().join("dockerd.log");
        let child = Command::new("dockerd")
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--ip-forward=false",
            ])
            .arg("--data-root")
            .arg(&data_root)
            .arg("--exec-root")
            .arg(run.path().join("x"))
            .arg("--pidfile")
            .arg(run.path().join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start dockerd");
        let mut d = Docker {
            child,
            host: format!("unix://{}", sock.display()),
            data_root,
            log,
            _run: run,
            _data: data,
            _lock: lock,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = d.child.try_wait().unwrap() {
                panic!("dockerd exited with {status} while starting:\n{}", d.log());
            }
            if d.cmd()
                .arg("info")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer within 30s:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Containers a killed earlier run left in a kept data root would clash by name.
        let stale = run_ok(d.cmd().args(["ps", "-aq"]));
        if !stale.trim().is_empty() {
            run_ok(d.cmd().args(["rm", "-f"]).args(stale.split_whitespace()));
        }
        d
    }

    /// `docker` talking to this daemon.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.env("DOCKER_HOST", &self.host);
        c
    }

    /// Makes the local base images (`busybox`, `debian`, `rust`) this daemon lacks.
    pub fn base_images(&self, which: &[&str]) {
        run_ok(
            Command::new(repo_path("scripts/docker-base-images.sh"))
                .args(which)
                .env("DOCKER_HOST", &self.host),
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        // Containers first (a running one would keep its mounts), then the daemon by its PID.
        if let Ok(out) = self.cmd().args(["ps", "-q"]).output() {
            let ids = String::from_utf8_lossy(&out.stdout).to_string();
            if !ids.trim().is_empty() {
                let _ = self
                    .cmd()
                    .args(["rm", "-f"])
                    .args(ids.split_whitespace())
                    .output();
            }
        }
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
