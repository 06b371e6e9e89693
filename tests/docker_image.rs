//! The image: builds the Dockerfile offline (scripts/docker-image.sh: local base images, vendored
//! crates, BuildKit cache mounts kept in a shared daemon data root, so only the first build on a
//! machine compiles everything), runs the gateway container, has another container log to it through
//! Docker's fluentd and gelf drivers, reads the events back with `logport read` inside the
//! gateway's container, and stops it with `docker stop`: the gateway drains and exits 0.

mod common;

use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use common::docker::Docker;
use common::*;

const IMAGE: &str = "logport:test";

/// A port free for TCP and UDP now (the gateway runs on the host's network: no bridge here).
fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[test]
fn the_image_builds_offline_runs_healthy_takes_docker_logs_and_drains_on_docker_stop() {
    // Kept between runs and checkouts: the base images and the builder's cargo cache.
    let docker = Docker::start(Some(&common::docker::shared_data_root()));
    docker.base_images(&["busybox"]);

    let started = Instant::now();
    run_ok(
        std::process::Command::new(repo_path("scripts/docker-image.sh"))
            .arg(IMAGE)
            .env("DOCKER_HOST", &docker.host),
    );
    let build_secs = started.elapsed().as_secs_f64();
    let size: u64 = run_ok(
        docker
            .cmd()
            .args(["image", "inspect", "-f", "{{.Size}}", IMAGE]),
    )
    .trim()
    .parse()
    .unwrap();
    let user = run_ok(
        docker
            .cmd()
            .args(["image", "inspect", "-f", "{{.Config.User}}", IMAGE]),
    );
    assert_eq!(user.trim(), "logport", "the image runs as non-root");

    let (admin, forward, gelf) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logport.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "/var/lib/logport"
[admin]
address = "127.0.0.1:{admin}"
[[listener]]
name = "forward"
protocol = "forward"
transport = "tcp"
address = "127.0.0.1:{forward}"
[listener.forward]
join_partials = true
[[listener]]
name = "gelf"
protocol = "gelf"
transport = "udp"
address = "127.0.0.1:{gelf}"
"#
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    run_ok(
        docker
            .cmd()
            .args(["run", "-d", "--name", "logport", "--network", "host"])
            .args(["--health-interval", "1s", "--health-start-period", "1s"])
            .args(["-e", &format!("LOGPORT_ADMIN_PORT={admin}")])
            .arg("-v")
            .arg(format!("{}:/etc/logport/logport.toml:ro", config.display()))
            .arg(IMAGE),
    );
    let logs = || {
        let out = docker.cmd().args(["logs", "logport"]).output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let inspect = |format: &str| {
        run_ok(docker.cmd().args(["inspect", "-f", format, "logport"]))
            .trim()
            .to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while inspect("{{.State.Health.Status}}") != "healthy" {
        assert!(
            Instant::now() < deadline,
            "not healthy in 30s: {}\n{}",
            inspect("{{json .State.Health}}"),
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let long = "y".repeat(20_000);
    for (name, driver, opts) in [
        (
            "app-fluentd",
            "fluentd",
            vec![
                format!("fluentd-address=127.0.0.1:{forward}"),
                "env=MARATHON_APP_ID".into(),
            ],
        ),
        (
            "app-gelf",
            "gelf",
            vec![
                format!("gelf-address=udp://127.0.0.1:{gelf}"),
                "env=MARATHON_APP_ID".into(),
            ],
        ),
    ] {
        let mut cmd = docker.cmd();
        cmd.args(["run", "--rm", "--network", "none", "--name", name])
            .args([
                "-e",
                "MARATHON_APP_ID=/shop/web",
                "-e",
                &format!("LONG={long}"),
            ])
            .args(["--log-driver", driver]);
        for o in &opts {
            cmd.args(["--log-opt", o]);
        }
        cmd.args([
            "local/busybox",
            "sh",
            "-c",
            &format!(r#"for i in 1 2 3; do echo "{name} $i"; done; echo "$LONG""#),
        ]);
        run_ok(&mut cmd);
    }

    // Read back inside the gateway's container, from its data volume.
    let deadline = Instant::now() + Duration::from_secs(20);
    let events: Vec<serde_json::Value> = loop {
        let out = run_ok(docker.cmd().args([
            "exec",
            "logport",
            "logport",
            "read",
            "--data-dir",
            "/var/lib/logport",
            "--from-start",
            "-n",
            "1000",
            "--app",
            "/shop/web",
        ]));
        let events: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // fluentd: 3 lines + 1 joined long line; gelf: 3 lines + the long line's 2 pieces.
        if events.len() >= 9 || Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let messages: Vec<&str> = events
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default())
        .collect();
    for name in ["app-fluentd", "app-gelf"] {
        for i in 1..=3 {
            let line = format!("{name} {i}");
            assert_eq!(
                messages.iter().filter(|m| **m == line).count(),
                1,
                "{line} once in {messages:?}"
            );
        }
    }
    assert_eq!(
        messages.iter().filter(|m| **m == long).count(),
        1,
        "the fluentd long line joined"
    );
    assert_eq!(events.len(), 9, "{messages:?}");

    let stop = Instant::now();
    run_ok(docker.cmd().args(["stop", "-t", "30", "logport"]));
    let stop_secs = stop.elapsed().as_secs_f64();
    let logs = run_ok(docker.cmd().args(["logs", "logport"]));
    assert_eq!(
        inspect("{{.State.ExitCode}}"),
        "0",
        "docker stop: the gateway exits 0\n{logs}"
    );
    assert!(
        stop_secs < 10.0,
        "drained in {stop_secs:.1}s, not killed after the timeout"
    );
    run_ok(docker.cmd().args(["rm", "logport"]));
    eprintln!(
        "image {IMAGE}: {:.1} MB, built in {build_secs:.1}s; docker stop took {stop_secs:.1}s",
        size as f64 / 1e6
    );
}
