//! The `campaign` command as a user runs it: the real binary, its arguments, stdin, exit
//! codes, and what it writes where.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::Write;
use std::process::{Command, Output, Stdio};

use campaign_tests::runtime_api::binary;
use serde_json::Value;

fn campaign(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let mut cmd = Command::new(binary("campaign"));
    cmd.args(args)
        .env("CAMPAIGN_DB", &db)
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

const BRIEF: &str = include_str!("../../examples/brief.json");

#[test]
fn a_brief_can_come_from_stdin() {
    let out = campaign(&["run", "-", "--json"], Some(BRIEF.as_bytes()), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["status"], "completed");
    assert_eq!(run["brief"]["product"], "Aurora e-bike");
    // An invalid brief on stdin is refused with the reasons, exit code 2.
    let out = campaign(&["run", "-"], Some(b"{\"objective\": 1}"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("objective"));
}

#[test]
fn modes_are_a_closed_set_named_in_the_error() {
    let out = campaign(
        &["run", "-", "--mode", "sequential", "--json"],
        Some(BRIEF.as_bytes()),
        &[],
    );
    assert!(out.status.success());
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["executionMode"], "sequential");
    let out = campaign(&["run", "-", "--mode", "fast"], Some(BRIEF.as_bytes()), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("parallel") && err.contains("sequential"),
        "{err}"
    );
}

#[test]
fn help_lists_the_environment_variables() {
    for args in [&["--help"][..], &["run", "--help"], &["serve", "--help"]] {
        let out = campaign(args, None, &[]);
        let help = String::from_utf8_lossy(&out.stdout);
        for var in [
            "CAMPAIGN_DB",
            "CAMPAIGN_ADDR",
            "CAMPAIGN_LOG",
            "CAMPAIGN_TIME_SCALE",
            "NO_COLOR",
        ] {
            assert!(
                help.contains(var),
                "{args:?} does not mention {var}:\n{help}"
            );
        }
    }
}

#[test]
fn output_that_is_not_a_terminal_has_no_colors() {
    // A failing agent logs a warning; stderr is a pipe here, so no escape codes, and the
    // same with NO_COLOR on a terminal (checked by the flag's handling, not a tty here).
    for env in [&[][..], &[("NO_COLOR", "1")][..]] {
        let out = campaign(
            &["run", "-", "--fault", "social=error"],
            Some(BRIEF.as_bytes()),
            &[&[("CAMPAIGN_LOG", "warn")][..], env].concat(),
        );
        assert_eq!(out.status.code(), Some(3), "partial run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("agent failed"), "{err}");
        assert!(!err.contains('\u{1b}'), "escape codes in {err:?}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains('\u{1b}'));
    }
}

/// `campaign run` on a real pseudo-terminal (util-linux `script`), 120×60, with a failing
/// agent that logs a warning while the spinners turn: the raw bytes and the screen a
/// terminal would show (rendered by `vt100`).
fn on_a_terminal(env: &[(&str, &str)]) -> (String, vt100::Parser) {
    let dir = tempfile::tempdir().unwrap();
    let brief = dir.path().join("brief.json");
    std::fs::write(&brief, BRIEF).unwrap();
    let inner = format!(
        "stty cols 120 rows 60; exec '{}' run '{}' --fault social=error --fault copy=slow:600ms --fault visual=slow:600ms",
        binary("campaign").display(),
        brief.display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &inner, "/dev/null"])
        .env("CAMPAIGN_DB", dir.path().join("c.db"))
        .env("CAMPAIGN_LOG", "warn")
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .expect("util-linux `script` runs a command on a pseudo-terminal");
    assert_eq!(out.status.code(), Some(3), "partial run: {out:?}");
    // Taller than the terminal, so nothing the run printed scrolls off the rendering.
    let mut screen = vt100::Parser::new(1000, 120, 0);
    screen.process(&out.stdout);
    (String::from_utf8_lossy(&out.stdout).to_string(), screen)
}

#[test]
fn on_a_terminal_logs_never_tear_the_spinners_and_no_color_turns_colors_off() {
    let sgr = regex::Regex::new("\u{1b}\\[[0-9;]*m").unwrap();
    let (raw, screen) = on_a_terminal(&[]);
    // The spinners were drawn (a terminal), and the warning is colored.
    assert!(raw.contains("generating"), "{raw:?}");
    assert!(sgr.is_match(&raw), "no colors on a terminal: {raw:?}");
    // The warning has a row of its own on the screen: no spinner drawn into it or over it.
    let rows: Vec<String> = screen.screen().rows(0, 120).collect();
    let logged: Vec<&String> = rows
        .iter()
        .filter(|r| r.contains("WARN") && r.contains("agent failed run_id="))
        .collect();
    assert_eq!(logged.len(), 1, "{rows:#?}");
    for spinner_text in [
        "queued",
        "generating",
        "generated",
        "completed",
        "   copy ",
        " social ",
        " visual ",
    ] {
        assert!(
            !logged[0].contains(spinner_text),
            "a spinner tore the log line: {:?}\n{rows:#?}",
            logged[0]
        );
    }
    // Every agent's spinner ended on its own row.
    for agent in ["copy", "social", "visual"] {
        assert!(
            rows.iter()
                .any(|r| r.contains(agent) && !r.contains("agent failed")),
            "{agent}: {rows:#?}"
        );
    }
    // NO_COLOR: the same run on a terminal without a single color code.
    let (raw, _) = on_a_terminal(&[("NO_COLOR", "1")]);
    assert!(raw.contains("agent failed"), "{raw:?}");
    assert!(!sgr.is_match(&raw), "colors despite NO_COLOR: {raw:?}");
}

#[test]
fn an_over_long_field_is_refused_or_truncated_with_a_warning() {
    let mut brief: Value = serde_json::from_str(BRIEF).unwrap();
    brief["product"] = Value::String("Aurora e-bike with a very long name ".repeat(20));
    let body = brief.to_string();
    let out = campaign(&["run", "-"], Some(body.as_bytes()), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("product") && err.contains("--oversize truncate"),
        "{err}"
    );
    let out = campaign(
        &["run", "-", "--oversize", "truncate", "--json"],
        Some(body.as_bytes()),
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: product truncated at a word boundary: 719 →"),
        "{err}"
    );
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(run["brief"]["product"].as_str().unwrap().chars().count() <= 500);
}
