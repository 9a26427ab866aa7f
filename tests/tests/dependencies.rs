//! What gets compiled where: the Lambda binaries carry neither the embedded store (rusqlite)
//! nor the SDK's legacy HTTP stack (hyper 0.14, rustls 0.21, ring), and the workspace has one
//! version of the crates that were duplicated.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::Command;

fn tree(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "-e", "normal", "--prefix", "none"])
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn lambda_binaries_carry_no_embedded_store_and_no_legacy_http_stack() {
    for package in [
        "campaign-tasks",
        "campaign-api",
        "campaign-notifier",
        "campaign-ws",
        "campaign-trigger",
        "campaign-execution-events",
        "campaign-deferred-audit",
        "campaign-sweeper",
    ] {
        let deps = tree(&["-p", package]);
        for unwanted in [
            "rusqlite ",
            "hyper v0.14",
            "rustls v0.21",
            "ring v",
            "h2 v0.3",
        ] {
            assert!(
                !deps.lines().any(|l| l.starts_with(unwanted)),
                "{package} depends on {unwanted}"
            );
        }
        assert!(deps.lines().any(|l| l.starts_with("aws-sdk-dynamodb ")));
    }
}

/// One crypto library in the whole workspace, with every feature on (the `campaign`
/// command's OpenAI-compatible and Bedrock generators included): aws-lc-rs, never ring.
#[test]
fn nothing_compiles_a_second_crypto_library() {
    let deps = tree(&["--workspace", "--all-features"]);
    assert!(
        !deps.lines().any(|l| l.starts_with("ring v")),
        "ring is in the tree"
    );
    assert!(deps.lines().any(|l| l.starts_with("aws-lc-rs v")));
}

#[test]
fn one_version_of_the_http_and_websocket_stacks() {
    let dups = tree(&["--workspace", "--duplicates"]);
    for name in [
        "hyper ",
        "rustls ",
        "tungstenite ",
        "tokio-tungstenite ",
        "h2 ",
        "http ",
    ] {
        let versions: std::collections::BTreeSet<&str> = dups
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        assert!(versions.len() <= 1, "{name}: {versions:?}");
    }
}
