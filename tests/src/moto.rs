//! A moto server (DynamoDB, SQS, Step Functions emulator) for the AWS adapter tests:
//! started once per test binary on a free loopback port from the project's virtualenv
//! (`.venv`, installed by `scripts/test.sh`), wiped between tests.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard, OnceCell};

#[derive(Debug)]
pub struct Moto {
    pub endpoint: String,
    _child: Child,
}

static MOTO: OnceCell<Moto> = OnceCell::const_new();
static EXCLUSIVE: Mutex<()> = Mutex::const_new(());
/// Where moto's Step Functions engine sends Lambda invocations (`MOTO_PORT`), if set
/// before the server starts.
static LAMBDA_PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();

/// Routes every `lambda:invoke` of executed state machines to `port` on loopback (moto
/// calls `http://localhost:$MOTO_PORT/2015-03-31/functions/NAME/invocations`). Must be
/// called before the first [`fresh`] of this process.
pub fn route_lambda_to(port: u16) {
    assert!(
        MOTO.get().is_none() && LAMBDA_PORT.set(port).is_ok(),
        "route_lambda_to must be called once, before moto starts"
    );
}

/// `.venv/bin/moto_server`, installed first if missing (plain `cargo test` on a fresh clone:
/// the same venv and pinned versions `scripts/test.sh` installs). An install that fails
/// fails the test loudly; nothing is skipped.
fn moto_server_path() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let bin = root.join(".venv/bin/moto_server");
    if !bin.exists() {
        let run = |cmd: &mut Command| {
            let status = cmd
                .current_dir(&root)
                .status()
                .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (Python 3 is needed)"));
            assert!(status.success(), "{cmd:?} failed: {status}");
        };
        if !root.join(".venv/bin/python").exists() {
            run(Command::new("python3").args(["-m", "venv", ".venv"]));
        }
        run(Command::new(root.join(".venv/bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            "requirements-test.txt",
        ]));
    }
    assert!(
        bin.exists(),
        "{} is still missing after installing",
        bin.display()
    );
    bin
}

async fn start() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The shell keeps moto alive exactly as long as this test process: when the process
    // exits its end of the pipe closes, `read` returns and moto is killed.
    let lambda = LAMBDA_PORT
        .get()
        .map(|p| format!("MOTO_PORT={p} "))
        .unwrap_or_default();
    let script = format!(
        "{lambda}'{}' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & pid=$!; read _; kill $pid",
        moto_server_path().display()
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn moto_server");
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http
            .get(format!("{endpoint}/moto-api/"))
            .send()
            .await
            .is_ok()
        {
            return Moto {
                endpoint,
                _child: child,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("moto_server did not start on {endpoint}");
}

/// The shared server, wiped, held exclusively by the caller until the guard drops.
pub async fn fresh() -> (&'static Moto, MutexGuard<'static, ()>) {
    let guard = EXCLUSIVE.lock().await;
    let moto = MOTO.get_or_init(start).await;
    reqwest::Client::new()
        .post(format!("{}/moto-api/reset", moto.endpoint))
        .send()
        .await
        .expect("moto reset");
    (moto, guard)
}

/// Switches on execution of state machines (Pass, Task, Choice, Parallel, Retry, Catch…).
/// Only state machines created afterwards are executed.
pub async fn execute_state_machines(moto: &Moto) {
    let r = reqwest::Client::new()
        .post(format!("{}/moto-api/config", moto.endpoint))
        .json(&serde_json::json!({ "stepfunctions": { "execute_state_machine": true } }))
        .send()
        .await
        .expect("moto config");
    assert!(r.status().is_success(), "moto config: {}", r.status());
}

/// SDK configuration pointed at moto, with dummy credentials.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "moto",
        ))
        .load()
        .await
}
