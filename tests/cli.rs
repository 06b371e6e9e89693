//! The command line: help on every command, config checking with located errors, startup
//! errors, and `logport read`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn logport(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_logport"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["check-config", "--help"],
        &["read", "--help"],
    ] {
        let out = logport(args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: logport"), "{args:?}: {text}");
    }
    let read = String::from_utf8_lossy(&logport(&["read", "--help"]).stdout).into_owned();
    for flag in ["--data-dir", "--app", "--follow", "--from-start"] {
        assert!(read.contains(flag), "{read}");
    }
}

#[test]
fn check_config_prints_the_effective_config_or_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[[listener]]\nprotocol = \"syslog\"\ntransport = \"udp\"\naddress = \"127.0.0.1:5514\"\n",
    )
    .unwrap();
    let out = logport(&["check-config", good.to_str().unwrap()]);
    assert!(out.status.success());
    let effective = String::from_utf8_lossy(&out.stdout);
    assert!(
        effective.contains("max_connections = 10000")
            && effective.contains("in_flight_bytes = \"256MiB\""),
        "{effective}"
    );
    // The printed config is itself a valid config.
    let again = dir.path().join("again.toml");
    std::fs::write(&again, effective.as_bytes()).unwrap();
    assert!(logport(&["check-config", again.to_str().unwrap()])
        .status
        .success());

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "data_dir = \"x\"\n\n[[listener]]\nprotocol = \"syslog\"\ntransport = \"udp\"\naddress = \"127.0.0.1:5514\"\ntimezone = \"Nowhere/Land\"\n").unwrap();
    for args in [
        vec!["check-config", bad.to_str().unwrap()],
        vec!["run", "--config", bad.to_str().unwrap()],
    ] {
        let out = logport(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("bad.toml, line 7")
                && err.contains("listener[0].timezone")
                && err.contains("Nowhere/Land"),
            "{err}"
        );
    }
    let missing = logport(&["check-config", "/no/such/file.toml"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/file.toml"));
}

#[test]
fn startup_errors_say_what_and_where() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\n[admin]\naddress = \"127.0.0.1:0\"\n[[listener]]\nname = \"main\"\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n", dir.path().join("d").display())).unwrap();
    let out = logport(&["run", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listener `main`")
            && err.contains(&format!("127.0.0.1:{port}"))
            && err.contains("in use"),
        "{err}"
    );
}

#[test]
fn a_second_gateway_on_the_same_data_dir_is_refused() {
    let gw = Gateway::start(SYSLOG_TCP, "");
    let config = gw.dir.path().join("second.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\n[admin]\naddress = \"127.0.0.1:0\"\n[[listener]]\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:0\"\n", gw.data_dir().display())).unwrap();
    let out = logport(&["run", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&gw.store_dir().display().to_string()) && err.to_lowercase().contains("lock"),
        "{err}"
    );
}

#[test]
fn read_filters_by_app_takes_the_last_n_and_follows() {
    let gw = Gateway::start(SYSLOG_TCP, "");
    let mut s = std::net::TcpStream::connect(gw.addr()).unwrap();
    for i in 0..30 {
        let app = if i % 3 == 0 { "alpha" } else { "beta" };
        let line = format!("<13>1 - - {app} - - - n{i}");
        write!(s, "{} {line}", line.len()).unwrap();
    }
    drop(s);
    gw.wait_for_events(30, Duration::from_secs(10));
    let data = gw.data_dir();
    let read = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["read", "--data-dir", data.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = logport(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["message"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(
        read(&[]),
        (20..30).map(|i| format!("n{i}")).collect::<Vec<_>>()
    );
    assert_eq!(read(&["-n", "3"]), ["n27", "n28", "n29"]);
    assert_eq!(read(&["--from-start"]).len(), 30);
    assert_eq!(read(&["--app", "alpha", "-n", "2"]), ["n24", "n27"]);
    assert_eq!(read(&["--app", "alpha", "--from-start"]).len(), 10);
    // The config file can name the data dir instead.
    let out = logport(&[
        "read",
        "--config",
        gw.dir.path().join("logport.toml").to_str().unwrap(),
        "-n",
        "1",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("n29"));

    // --follow: the event sent after the reader started must appear. `--from-start --app`
    // makes the result independent of when the reader got going.
    let mut follower = Command::new(env!("CARGO_BIN_EXE_logport"))
        .args([
            "read",
            "--follow",
            "--from-start",
            "--app",
            "gamma",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        let _ = tx.send(line);
    });
    // Usually the reader is at the end and waiting by now, which is what --follow is for.
    std::thread::sleep(Duration::from_millis(500));
    let mut s = std::net::TcpStream::connect(gw.addr()).unwrap();
    let line = "<13>1 - - gamma - - - followed";
    write!(s, "{} {line}", line.len()).unwrap();
    drop(s);
    let first = rx.recv_timeout(Duration::from_secs(10));
    let _ = follower.kill();
    let _ = follower.wait();
    let first = first.expect("the follower printed nothing within 10s");
    assert!(first.contains("followed"), "{first}");
}
