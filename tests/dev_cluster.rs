//! `fjord dev-cluster` argument handling. Nothing here starts a node: every case is refused
//! before the first child process.

use std::process::{Command, Output, Stdio};

fn fjord(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fjord"));
    c.args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("FJORD_") {
            c.env_remove(k);
        }
    }
    c.output().unwrap()
}

/// Runs dev-cluster with `args` and a fresh data dir; it must exit 2 naming `needle`,
/// print nothing to stdout and create no node directory.
fn refused(args: &[&str], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cluster");
    let mut all = vec!["dev-cluster", "--data-dir", data.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = fjord(&all);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: stderr: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in: {err}"
    );
    assert!(out.stdout.is_empty(), "{args:?}: stdout: {:?}", out.stdout);
    assert!(!data.exists(), "{args:?}: created {}", data.display());
}

#[test]
fn node_count_outside_1_to_9_is_refused() {
    refused(&["--nodes", "0"], "--nodes must be between 1 and 9, got 0");
    refused(
        &["--nodes", "10"],
        "--nodes must be between 1 and 9, got 10",
    );
}

#[test]
fn ports_beyond_65535_are_refused() {
    refused(&["--base-port", "65500"], "--base-port 65500");
    refused(&["--nodes", "9", "--base-port", "0"], "--base-port 0");
}

#[test]
fn bad_overrides_are_refused_before_any_node_starts() {
    refused(&["--override", "log.retention.ms"], "expected key=value");
    refused(
        &["--override", "log.retension.ms=1"],
        "did you mean `log.retention.ms`",
    );
    refused(&["-o", "num.partitions=many"], "num.partitions");
}

#[test]
fn help_lists_the_options() {
    let out = fjord(&["dev-cluster", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in ["--nodes", "--base-port", "--data-dir", "--override"] {
        assert!(help.contains(opt), "{opt} missing from: {help}");
    }
    let top = fjord(&["--help"]);
    assert!(String::from_utf8_lossy(&top.stdout).contains("dev-cluster"));
}

#[test]
fn single_node_flags_do_not_mix_with_the_subcommand() {
    let out = fjord(&["--log-dirs", "x", "dev-cluster"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains("dev-cluster"), "stderr: {err}");
}
