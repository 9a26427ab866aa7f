//! `campaign run BRIEF.json`: one campaign, in process, with live per-agent progress on
//! stderr and a summary (or the run as JSON) on stdout.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use campaign_shared::domain::{
    Agent, Brief, Content, ExecutionMode, Outcome, Run, Scope, Status, Verdict,
};
use campaign_shared::runtime::local::{LocalApp, LocalConfig};
use campaign_shared::usecases;

/// Exit codes of `campaign run` (documented in the README).
pub mod exit {
    pub const SUCCESS: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const INVALID: u8 = 2;
    pub const PARTIAL: u8 = 3;
    pub const FAILURE: u8 = 4;
    pub const CANCELLED: u8 = 5;
    pub const AUDIT_PENDING: u8 = 6;
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub brief: Brief,
    pub mode: Option<ExecutionMode>,
    pub json: bool,
    pub config: LocalConfig,
}

/// The exit code that reports a run's end state.
pub fn exit_code(run: &Run) -> u8 {
    match (run.status, run.envelope.as_ref().map(|e| e.outcome)) {
        (Status::AuditPending, _) => exit::AUDIT_PENDING,
        (_, Some(Outcome::Success)) => exit::SUCCESS,
        (_, Some(Outcome::Partial)) => exit::PARTIAL,
        (_, Some(Outcome::Cancelled)) => exit::CANCELLED,
        (Status::Cancelled, _) => exit::CANCELLED,
        _ => exit::FAILURE,
    }
}

/// Runs one campaign to its end (or to audit-pending) and prints it. Returns the exit code.
pub async fn run(opts: RunOptions) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    let app = Arc::new(LocalApp::start(opts.config.clone()).await?);
    let mut brief = opts.brief;
    if let Some(m) = opts.mode {
        brief.execution_mode = m;
        brief.mode_defaulted = false;
    }
    let mut bus = app.bus.subscribe();
    let run_id = usecases::submit(&app.deps, brief, None).await?;
    let progress = Progress::new(run_id.to_string());
    let mut interrupted = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c, if !interrupted => {
                interrupted = true;
                progress.note("interrupted: cancelling the run (completed artifacts are kept)");
                if let Err(e) = usecases::cancel(&app.deps, run_id).await {
                    progress.note(&format!("cancel: {e}"));
                }
            }
            msg = bus.recv() => match msg {
                Ok(e) if e.run_id == run_id => {
                    progress.event(&e);
                    let parked = e.scope == Scope::Run && e.status == Status::AuditPending;
                    if (e.scope == Scope::Run && e.status.is_terminal()) || parked {
                        break;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let run = app.deps.store.get_run(run_id).await?;
                    if run.status.is_terminal() || run.status == Status::AuditPending {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
    progress.finish();
    let run = app.deps.store.get_run(run_id).await?;
    app.shutdown().await;
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&run)?);
    } else {
        print!("{}", summary(&run));
    }
    Ok(exit_code(&run))
}

/// The spinners on screen now, so log lines are written between their redraws.
static SPINNERS: std::sync::Mutex<Option<MultiProgress>> = std::sync::Mutex::new(None);

/// Log writer of the `campaign` command: stderr, suspending the spinners of a running
/// `campaign run` while a line is written, so logs never tear them.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let spinners = SPINNERS.lock().ok().and_then(|s| s.clone());
        match spinners {
            Some(m) => m.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Per-agent spinners on a terminal; plain lines otherwise (logs, CI).
struct Progress {
    multi: Option<MultiProgress>,
    bars: BTreeMap<Scope, ProgressBar>,
    run_id: String,
}

impl Progress {
    fn new(run_id: String) -> Self {
        let tty = std::io::stderr().is_terminal();
        let mut bars = BTreeMap::new();
        let multi = tty.then(MultiProgress::new);
        // Known to the log writer before the first spinner is drawn: a line logged while
        // the spinners are being set up is written around them too.
        if let Ok(mut s) = SPINNERS.lock() {
            s.clone_from(&multi);
        }
        if let Some(m) = &multi {
            let style = ProgressStyle::with_template("{spinner} {prefix:>8} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            for scope in [Scope::Run, Scope::Copy, Scope::Social, Scope::Visual] {
                let pb = m.add(ProgressBar::new_spinner());
                pb.set_style(style.clone());
                pb.set_prefix(scope.as_str());
                pb.set_message("queued");
                pb.enable_steady_tick(Duration::from_millis(100));
                bars.insert(scope, pb);
            }
        } else {
            eprintln!("run {run_id}: queued");
        }
        Progress {
            multi,
            bars,
            run_id,
        }
    }

    fn event(&self, e: &campaign_shared::domain::Event) {
        let mut msg = e.status.to_string();
        if let Some(d) = &e.detail {
            if let Some(err) = d.get("error").and_then(|x| x.get("message")) {
                msg.push_str(&format!(" — {}", err.as_str().unwrap_or_default()));
            }
            if let Some(v) = d.get("verdict").and_then(|v| v.as_str()) {
                msg.push_str(&format!(" (audit: {v})"));
            }
        }
        match self.bars.get(&e.scope) {
            Some(pb) => {
                pb.set_message(msg);
                if e.status.is_terminal() {
                    pb.finish();
                }
            }
            None => eprintln!("[{:>3}] {:<6} {}", e.seq, e.scope.as_str(), msg),
        }
    }

    fn note(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("run {}: {text}", self.run_id),
        }
    }

    fn finish(&self) {
        for pb in self.bars.values() {
            pb.finish();
        }
        if let Ok(mut s) = SPINNERS.lock() {
            *s = None;
        }
    }
}

/// The readable summary printed on stdout.
pub fn summary(run: &Run) -> String {
    let mut out = String::new();
    let outcome = run
        .envelope
        .as_ref()
        .map(|e| format!("{:?}", e.outcome).to_lowercase())
        .unwrap_or_else(|| "—".into());
    out.push_str(&format!(
        "Campaign {}  status: {}  outcome: {}  mode: {}  iteration: {}\n",
        run.run_id,
        run.status,
        outcome,
        run.execution_mode.as_str(),
        run.iteration
    ));
    if let Some(d) = &run.mode_decision {
        out.push_str(&format!(
            "Mode: auto chose {} — {}\n",
            d.mode.as_str(),
            d.reason
        ));
    }
    if run.execution_mode == campaign_shared::domain::ExecutionMode::Sequential {
        let order: Vec<&str> = run.brief.priority.iter().map(|a| a.as_str()).collect();
        out.push_str(&format!("Order: {}\n", order.join(" → ")));
    }
    if let (Some(id), Some(v)) = (&run.brief.brand_id, run.brief.brand_version) {
        out.push_str(&format!("Brand kit: {id} v{v}\n"));
    }
    if let Some(ms) = run.timings.total_ms {
        out.push_str(&format!(
            "Timings: total {ms} ms, first artifact {} ms, audit {} ms\n",
            run.timings.time_to_first_artifact_ms.unwrap_or(0),
            run.timings.audit_latency_ms.unwrap_or(0)
        ));
    }
    for agent in Agent::ALL {
        let st = &run.agents[&agent];
        out.push_str(&format!("\n== {agent} ({}", st.status));
        if let Some(err) = &st.error {
            out.push_str(&format!(": {} — {}", err.code, err.message));
        }
        out.push_str(")\n");
        let Some(a) = st
            .artifact_id
            .and_then(|id| run.artifacts.iter().find(|a| a.artifact_id == id))
        else {
            continue;
        };
        out.push_str(&format!(
            "artifact {}  tags: {}\n",
            a.artifact_id,
            a.tags.join(", ")
        ));
        match &a.content {
            Content::Copy(c) => {
                out.push_str(&format!(
                    "{}\n\n{}\n\n{}\n",
                    c.headline, c.body, c.call_to_action
                ));
            }
            Content::Social(s) => {
                for p in &s.posts {
                    out.push_str(&format!("[{}] {}\n", p.network, p.text));
                }
            }
            Content::Visual(v) => {
                out.push_str(&format!("{} — {}\nlayout: {}\nimagery: {}\ntypography: {}\npalette: {}\nSVG preview: {} bytes\n",
                    v.headline, v.subheadline, v.layout, v.imagery, v.typography,
                    v.palette.iter().map(|p| format!("{} ({})", p.hex, p.role)).collect::<Vec<_>>().join(", "),
                    v.svg.len()));
            }
        }
        if let Some(report) = &a.audit {
            let verdict = match report.verdict {
                Verdict::Pass => "pass",
                Verdict::Warn => "warn",
                Verdict::Fail => "fail",
            };
            out.push_str(&format!("audit: {verdict}"));
            for f in &report.findings {
                out.push_str(&format!("\n  - {:?} {}: {}", f.severity, f.rule, f.message));
            }
            out.push('\n');
        }
    }
    if let Some(env) = &run.envelope {
        for r in &env.reasons {
            out.push_str(&format!("\nreason: {} {}", r.code, r.message));
        }
        if let Some(retry) = &env.retry {
            out.push_str(&format!(
                "\nretry: POST {} re-runs {}\n",
                retry.href,
                retry
                    .agents
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if run.status == Status::AuditPending {
        out.push_str("\naudit pending: the audit was unavailable; it runs again on the next `campaign serve` or `campaign run` with the same --db\n");
    }
    out
}
