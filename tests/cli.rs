//! The `fjord` binary: settings from flags, environment and properties files, errors that
//! name the setting with exit code 2, and a clean exit 0 on SIGTERM.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fjord() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fjord"));
    c.env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("FJORD_") {
            c.env_remove(k);
        }
    }
    c
}

fn fails_with(cmd: &mut Command, needle: &str) {
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

#[test]
fn bad_settings_are_named_and_exit_2() {
    fails_with(fjord().args(["--num-partitions", "many"]), "num.partitions");
    fails_with(
        fjord().args(["--override", "log.retention.hours=1"]),
        "log.retention.hours",
    );
    fails_with(fjord().env("FJORD_NUM_PARTITIONS", "-3"), "num.partitions");
    fails_with(fjord().env("FJORD_NO_SUCH_SETTING", "1"), "no.such.setting");
    fails_with(fjord().args(["--listeners", "localhost:9092"]), "listeners");
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("server.properties");
    std::fs::write(&props, "# comment\nnum.partitions=3\nbogus.key=1\n").unwrap();
    fails_with(fjord().arg("--config").arg(&props), "bogus.key");
    fails_with(fjord().arg("--no-such-flag"), "--no-such-flag");
}

#[test]
fn starts_from_a_properties_file_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let props = dir.path().join("server.properties");
    std::fs::write(
        &props,
        format!(
            "listeners=PLAINTEXT://127.0.0.1:{port}\nlog.dirs={}\nnum.partitions=2\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = fjord()
        .arg("--config")
        .arg(&props)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "broker did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        dir.path().join("data").exists(),
        "log.dirs from the file is used"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "broker did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(status.code(), Some(0), "log: {log}");
    assert!(log.contains("store flushed"), "log: {log}");
}
