//! The SAM template and the code agree: every function binary has a resource and vice
//! versa, every `${…}` of the ASL is substituted, and every environment variable a
//! function's typed config reads is set on that function (and nothing unknown is set).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use campaign_shared::adapters::aws::config::VARIABLES;
use campaign_shared::domain::Agent;
use campaign_shared::usecases::TaskFunction;
use serde_yaml_ng::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// The environment each binary's typed config reads, from the functions' own constants.
fn env_of(binary: &str) -> &'static [&'static str] {
    match binary {
        "api" => campaign_api::ENV,
        "copy-agent" => campaign_tasks::env(TaskFunction::Agent(Agent::Copy)),
        "social-agent" => campaign_tasks::env(TaskFunction::Agent(Agent::Social)),
        "visual-agent" => campaign_tasks::env(TaskFunction::Agent(Agent::Visual)),
        "audit" => campaign_tasks::env(TaskFunction::Audit),
        "finalize" => campaign_tasks::env(TaskFunction::Finalize),
        "notifier" => campaign_notifier::ENV,
        "ws" => campaign_ws::ENV,
        "execution-events" => campaign_execution_events::ENV,
        "trigger" => campaign_trigger::ENV,
        "deferred-audit" => campaign_deferred_audit::ENV,
        other => panic!("binary `{other}` has no known configuration: add it here"),
    }
}

/// Binary names of every function crate: `[[bin]]` names and `src/bin/*.rs`.
fn function_binaries() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("functions")).unwrap() {
        let dir = entry.unwrap().path();
        let manifest: toml_like::Manifest = toml_like::read(&dir.join("Cargo.toml"));
        out.extend(manifest.bins);
        if let Ok(bins) = std::fs::read_dir(dir.join("src/bin")) {
            for b in bins {
                let p = b.unwrap().path();
                out.insert(p.file_stem().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// Just enough of Cargo.toml: the `name` of each `[[bin]]`.
mod toml_like {
    pub struct Manifest {
        pub bins: Vec<String>,
    }
    pub fn read(path: &std::path::Path) -> Manifest {
        let text = std::fs::read_to_string(path).unwrap();
        let mut bins = Vec::new();
        let mut in_bin = false;
        for line in text.lines() {
            let l = line.trim();
            if l.starts_with('[') {
                in_bin = l == "[[bin]]";
            } else if in_bin && let Some(v) = l.strip_prefix("name = ") {
                bins.push(v.trim_matches('"').to_string());
            }
        }
        Manifest { bins }
    }
}

fn functions(t: &Value) -> BTreeMap<String, &Value> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(k, r)| (k.as_str().unwrap().to_string(), r))
        .collect()
}

#[test]
fn every_function_binary_has_a_resource_and_every_resource_a_binary() {
    let t = template();
    let in_template: BTreeSet<String> = functions(&t)
        .values()
        .map(|r| {
            r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(in_template, function_binaries());
    for (name, r) in functions(&t) {
        assert_eq!(r["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
    }
}

#[test]
fn every_substitution_in_the_asl_is_defined_and_every_definition_is_used() {
    let t = template();
    let asl = std::fs::read_to_string(root().join("statemachine.asl.json")).unwrap();
    let used: BTreeSet<String> = regex::Regex::new(r"\$\{([A-Za-z0-9]+)\}")
        .unwrap()
        .captures_iter(&asl)
        .map(|c| c[1].to_string())
        .collect();
    let sm = &t["Resources"]["StateMachine"]["Properties"];
    assert_eq!(sm["DefinitionUri"], "../statemachine.asl.json");
    let defined: BTreeSet<String> = sm["DefinitionSubstitutions"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(used, defined);
    let by_code: BTreeSet<String> = TaskFunction::ALL
        .iter()
        .map(|f| f.substitution().to_string())
        .collect();
    assert_eq!(
        used, by_code,
        "the local engine resolves exactly these resources"
    );
}

#[test]
fn every_variable_a_function_reads_is_set_on_it_and_nothing_unknown_is() {
    let t = template();
    let known: BTreeSet<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
    for (name, r) in functions(&t) {
        let binary = r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        let set: BTreeSet<String> = r["Properties"]["Environment"]["Variables"]
            .as_mapping()
            .map(|m| m.keys().map(|k| k.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        let reads: BTreeSet<String> = env_of(binary).iter().map(|s| s.to_string()).collect();
        assert_eq!(
            set, reads,
            "{name} ({binary}): template sets {set:?}, config reads {reads:?}"
        );
        for v in &set {
            assert!(
                known.contains(v.as_str()),
                "{name} sets {v}, which no config documents"
            );
        }
    }
}

#[test]
fn every_function_follows_the_deployment_rules() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"][0], "arm64");
    assert_eq!(globals["Tracing"], "Active");
    for (name, r) in functions(&t) {
        let p = &r["Properties"];
        assert!(
            p.get("Runtime").is_none() && p.get("Architectures").is_none(),
            "{name} overrides the globals"
        );
        // Bounded log retention: each function logs to its own group with a retention.
        let Value::Tagged(group) = &p["LoggingConfig"]["LogGroup"] else {
            panic!("{name} has no log group")
        };
        let group = group.value.as_str().unwrap();
        let retention = &t["Resources"][group]["Properties"]["RetentionInDays"];
        assert!(!retention.is_null(), "{name}: {group} has no retention");
        assert!(
            p["Policies"].is_sequence(),
            "{name} has no policy of its own"
        );
    }
}
