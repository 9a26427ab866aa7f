//! The dashboard's browser tests: Debian's Chromium driven by `playwright-core` (npm), both
//! installed here when missing — `npm ci` for `node_modules`, `apt-get install chromium` —
//! so `cargo test` on a fresh clone runs them like the test script does. A missing tool
//! that cannot be installed fails the test with what to do; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The project root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub const CHROMIUM: &str = "/usr/bin/chromium";

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Installs what the browser tests need, once per test process.
pub fn ensure_tools() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let root = root();
        if !root
            .join("node_modules/playwright-core/package.json")
            .exists()
        {
            run(
                Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(&root),
                "npm ci (playwright-core for the dashboard's browser tests)",
            );
        }
        if !Path::new(CHROMIUM).exists() {
            // Debian's chromium; root is needed, as on the project's machines and CI.
            let apt = |args: &[&str]| {
                let mut c = Command::new("apt-get");
                c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
                c
            };
            let installed = apt(&["install", "-y", "--no-install-recommends", "chromium"])
                .output()
                .is_ok_and(|o| o.status.success());
            if !installed {
                run(&mut apt(&["update"]), "apt-get update");
                run(
                    &mut apt(&["install", "-y", "--no-install-recommends", "chromium"]),
                    "apt-get install chromium (as root), for the dashboard's browser tests",
                );
            }
        }
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing after installing chromium"
        );
    });
}

/// Runs one scenario of `tests/browser/dashboard.mjs` against `base` (a server's URL);
/// panics with the script's output when it fails. `env` adds variables (other servers).
pub fn scenario(name: &str, base: &str, env: &[(&str, &str)]) -> String {
    ensure_tools();
    let root = root();
    let shots = root.join("target/dashboard-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let out = Command::new("node")
        .arg(root.join("tests/browser/dashboard.mjs"))
        .args([name, base])
        .envs(env.iter().copied())
        .env("CHROMIUM", CHROMIUM)
        .env("SCREENSHOT_DIR", &shots)
        .current_dir(&root)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "browser scenario `{name}` failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
