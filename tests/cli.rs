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
        fjord().args(["--override", "log.retention.hours=soon"]),
        "log.retention.hours",
    );
    // A typo names the setting it probably meant.
    fails_with(
        fjord().args(["--override", "log.retension.hours=1"]),
        "did you mean `log.retention.hours`",
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

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Kafka 4.3's shipped `config/server.properties` (KRaft, combined broker and controller)
/// starts a node unchanged but for the data dir and the two ports, which a test may not
/// take from the machine. Kafka's settings that mean nothing here are accepted and named in
/// the log; the controller listener is not bound.
#[test]
fn kafkas_shipped_server_properties_start_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let (port, controller) = (free_port(), free_port());
    let props = dir.path().join("server.properties");
    std::fs::write(
        &props,
        format!(
            "process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=localhost:{controller}
listeners=PLAINTEXT://:{port},CONTROLLER://:{controller}
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:{port},CONTROLLER://localhost:{controller}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs={}
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
",
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
        if let Some(s) = child.try_wait().unwrap() {
            let mut log = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut log)
                .unwrap();
            panic!("broker exited with {s}: {log}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "broker did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        TcpStream::connect(("127.0.0.1", controller)).is_err(),
        "the controller listener is not a broker listener"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(status.code(), Some(0), "log: {log}");
    assert!(
        log.contains("setting `num.io.threads` is accepted and has no effect"),
        "log: {log}"
    );
    assert!(
        log.contains(
            "setting `controller.quorum.bootstrap.servers` is accepted but has no effect yet"
        ),
        "log: {log}"
    );
}

/// The container image reads KAFKA_* variables as the apache/kafka image does.
#[test]
fn kafka_environment_variables_with_kafka_env() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    fails_with(
        fjord()
            .arg("--kafka-env")
            .env("KAFKA_NUM_PARTITIONS", "many"),
        "KAFKA_NUM_PARTITIONS",
    );
    let mut child = fjord()
        .arg("--kafka-env")
        .env("KAFKA_LISTENERS", format!("PLAINTEXT://127.0.0.1:{port}"))
        .env("KAFKA_LOG_DIRS", dir.path().join("kdata"))
        .env("KAFKA_HEAP_OPTS", "-Xmx1G")
        .env("KAFKA_PROCESS_ROLES", "broker,controller")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "broker exited");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "broker did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dir.path().join("kdata").exists());
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
