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
        "sweeper" => campaign_sweeper::ENV,
        other => panic!("binary `{other}` has no known configuration: add it here"),
    }
}

/// The function packages' directories (`functions/` also holds their shared build script).
fn function_packages() -> Vec<PathBuf> {
    std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .collect()
}

/// Binary names of every function crate: `[[bin]]` names and `src/bin/*.rs`.
fn function_binaries() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for dir in function_packages() {
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
        pub package: String,
        pub bins: Vec<String>,
    }
    pub fn read(path: &std::path::Path) -> Manifest {
        let text = std::fs::read_to_string(path).unwrap();
        let (mut package, mut bins) = (String::new(), Vec::new());
        let mut section = String::new();
        for line in text.lines() {
            let l = line.trim();
            if l.starts_with('[') {
                section = l.to_string();
            } else if let Some(v) = l.strip_prefix("name = ") {
                let v = v.trim_matches('"').to_string();
                match section.as_str() {
                    "[[bin]]" => bins.push(v),
                    "[package]" => package = v,
                    _ => {}
                }
            }
        }
        Manifest { package, bins }
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
        .map(|r| r["Metadata"]["Binary"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(in_template, function_binaries());
}

/// `sam build` runs `make build-<resource>`: each recipe builds the function's binary from
/// its own package, so no other member's features (the CLI's embedded store) reach it, and
/// copies it where SAM packages it from.
#[test]
fn every_function_is_built_from_its_own_package() {
    let t = template();
    for (name, r) in functions(&t) {
        assert_eq!(r["Metadata"]["BuildMethod"], "makefile", "{name}");
        assert_eq!(
            r["Properties"]["CodeUri"], "../",
            "{name}: the Makefile is at the root"
        );
        let binary = r["Metadata"]["Binary"].as_str().unwrap();
        let package = package_of(binary);
        let out = std::process::Command::new("make")
            .args(["-n", &format!("build-{name}"), "ARTIFACTS_DIR=/artifacts"])
            .current_dir(root())
            .output()
            .expect("make runs");
        assert!(out.status.success(), "{name}: {out:?}");
        let recipe = String::from_utf8(out.stdout).unwrap();
        assert!(
            recipe.contains("cargo lambda build --release --arm64")
                && recipe.contains(&format!("--package {package} --bin {binary}\n")),
            "{name}: {recipe}"
        );
        assert!(
            recipe.contains(&format!(
                "cp target/lambda/{binary}/bootstrap /artifacts/bootstrap"
            )),
            "{name}: {recipe}"
        );
    }
}

/// Every function package links its binaries with the shared build script
/// (`functions/no-pie.rs`: position-dependent, for the cold start) — a new function too.
#[test]
fn every_function_package_uses_the_shared_build_script() {
    for dir in function_packages() {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let has_bins = !toml_like::read(&dir.join("Cargo.toml")).bins.is_empty()
            || dir.join("src/bin").is_dir();
        let uses = manifest
            .lines()
            .any(|l| l.trim() == r#"build = "../no-pie.rs""#);
        assert_eq!(uses, has_bins, "{}", dir.display());
    }
}

/// The package (`name` in its Cargo.toml) whose crate defines `binary`.
fn package_of(binary: &str) -> String {
    for dir in function_packages() {
        let manifest = toml_like::read(&dir.join("Cargo.toml"));
        let in_bin_dir = dir.join("src/bin").join(format!("{binary}.rs")).exists();
        if manifest.bins.iter().any(|b| b == binary) || in_bin_dir {
            return manifest.package;
        }
    }
    panic!("no package defines {binary}")
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
        let binary = r["Metadata"]["Binary"].as_str().unwrap();
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

fn asl() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("statemachine.asl.json")).unwrap())
        .unwrap()
}

/// Every Task state of the definition, Parallel branches and Map processors included:
/// (name, state).
fn tasks(states: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for (name, s) in states.as_object().unwrap() {
        if s["Type"] == "Task" {
            out.push((name.clone(), s.clone()));
        }
        for b in s["Branches"].as_array().into_iter().flatten() {
            out.extend(tasks(&b["States"]));
        }
        if s["Type"] == "Map" {
            out.extend(tasks(&s["ItemProcessor"]["States"]));
        }
    }
    out
}

/// The template resource a Task's `${…FunctionArn}` resolves to.
fn task_function<'t>(t: &'t Value, task: &serde_json::Value) -> (&'t Value, String) {
    let resource = task["Resource"].as_str().unwrap();
    let name = resource
        .trim_start_matches("${")
        .trim_end_matches('}')
        .trim_end_matches("Arn")
        .to_string();
    (&t["Resources"][name.as_str()], name)
}

fn tag<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    match v {
        Value::Tagged(t) if t.tag == name => Some(&t.value),
        _ => None,
    }
}

#[test]
fn every_task_outlasts_its_lambda_by_five_seconds_and_every_task_is_caught() {
    let t = template();
    let default = t["Globals"]["Function"]["Timeout"].as_u64().unwrap();
    let all = tasks(&asl()["States"]);
    assert!(all.len() >= 10, "found {} tasks", all.len());
    for (name, task) in all {
        let (function, fname) = task_function(&t, &task);
        let lambda = function["Properties"]["Timeout"]
            .as_u64()
            .unwrap_or(default);
        let task_timeout = task["TimeoutSeconds"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} has no TimeoutSeconds"));
        assert!(
            task_timeout >= lambda + 5,
            "{name}: TimeoutSeconds {task_timeout} must be at least {fname}'s Timeout {lambda} + 5 s"
        );
        // A Task that can time out must be caught, or States.Timeout fails the execution.
        let caught = task["Catch"].as_array().into_iter().flatten().any(|c| {
            c["ErrorEquals"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "States.ALL" || e == "States.Timeout")
        });
        assert!(caught, "{name} does not catch States.Timeout");
    }
}

#[test]
fn every_task_retries_the_lambda_service_errors() {
    const LAMBDA_ERRORS: [&str; 5] = [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Lambda.ClientExecutionTimeoutException",
    ];
    for (name, task) in tasks(&asl()["States"]) {
        let retried: BTreeSet<&str> = task["Retry"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["ErrorEquals"].as_array().unwrap().iter())
            .filter_map(|e| e.as_str())
            .collect();
        for e in LAMBDA_ERRORS {
            assert!(retried.contains(e), "{name} does not retry {e}");
        }
    }
}

#[test]
fn the_template_names_no_aws_domain_by_hand() {
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).unwrap();
    for (i, line) in text.lines().enumerate() {
        assert!(
            !line.contains("amazonaws.com"),
            "line {}: use ${{AWS::URLSuffix}}: {line}",
            i + 1
        );
    }
}

#[test]
fn only_events_from_the_projects_source_start_runs() {
    let t = template();
    let pattern = &t["Resources"]["TriggerFunction"]["Properties"]["Events"]["CampaignRequested"]["Properties"]
        ["Pattern"];
    assert_eq!(pattern["detail-type"][0], "CampaignRequested");
    let source = tag(&pattern["source"][0], "!Ref").expect("source filtered by a parameter");
    assert_eq!(source, "CampaignEventSource");
    assert!(t["Parameters"]["CampaignEventSource"]["Default"].is_string());
}

#[test]
fn eventbridge_invoked_functions_keep_failed_events_and_a_sweeper_reconciles_runs() {
    let t = template();
    for (name, r) in functions(&t) {
        let events = r["Properties"]["Events"].as_mapping();
        let by_eventbridge = events
            .into_iter()
            .flatten()
            .any(|(_, e)| e["Type"] == "EventBridgeRule");
        if by_eventbridge {
            let on_failure =
                &r["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
            assert_eq!(on_failure["Type"], "SQS", "{name} loses failed events");
        }
    }
    let sweeper = &t["Resources"]["SweeperFunction"]["Properties"];
    assert_eq!(sweeper["Events"]["Sweep"]["Type"], "ScheduleV2");
    // The schedule asks for a default sweep (the function reads its payload).
    assert_eq!(sweeper["Events"]["Sweep"]["Properties"]["Input"], "{}");
}

#[test]
fn no_function_reserves_concurrency_and_queue_consumers_cap_it_in_their_mapping() {
    let t = template();
    for (name, r) in functions(&t) {
        assert!(
            r["Properties"]["ReservedConcurrentExecutions"].is_null(),
            "{name}: reserved concurrency fails deploys on low-quota accounts"
        );
        for (_, e) in r["Properties"]["Events"].as_mapping().into_iter().flatten() {
            if e["Type"] == "SQS" {
                let p = &e["Properties"];
                assert!(
                    p["ScalingConfig"]["MaximumConcurrency"].as_u64().is_some(),
                    "{name}: SQS mapping without MaximumConcurrency"
                );
                assert_eq!(p["FunctionResponseTypes"][0], "ReportBatchItemFailures");
            }
        }
    }
}

#[test]
fn logs_queues_and_stages_deploy_on_a_fresh_account() {
    let t = template();
    let res = &t["Resources"];
    // Step Functions log groups under the vended-logs prefix.
    let group = tag(
        &res["StateMachineLogs"]["Properties"]["LogGroupName"],
        "!Sub",
    )
    .unwrap();
    assert!(
        group
            .as_str()
            .unwrap()
            .starts_with("/aws/vendedlogs/states/")
    );
    // Every queue an EventBridge rule sends its failed deliveries to has a policy (without
    // one EventBridge cannot write to it, and the check below would pass on nothing).
    let mut guarded = std::collections::BTreeSet::new();
    for (_, r) in res.as_mapping().unwrap() {
        if r["Type"] == "AWS::SQS::QueuePolicy" {
            for q in r["Properties"]["Queues"].as_sequence().unwrap() {
                guarded.insert(tag(q, "!Ref").unwrap().as_str().unwrap().to_string());
            }
        }
    }
    let mut dead_letter_queues = 0;
    for (name, r) in res.as_mapping().unwrap() {
        let Some(events) = r["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, e) in events {
            let arn = &e["Properties"]["DeadLetterConfig"]["Arn"];
            if arn.is_null() {
                continue;
            }
            let queue = tag(arn, "!GetAtt").unwrap().as_str().unwrap().to_string();
            let queue = queue.trim_end_matches(".Arn").to_string();
            assert!(
                guarded.contains(&queue),
                "{name:?}: the dead-letter queue {queue} has no queue policy"
            );
            dead_letter_queues += 1;
        }
    }
    assert!(dead_letter_queues > 0, "no rule has a dead-letter queue");
    // Queue policies admit their sender only from the expected source.
    for (name, r) in res.as_mapping().unwrap() {
        if r["Type"] != "AWS::SQS::QueuePolicy" {
            continue;
        }
        for st in r["Properties"]["PolicyDocument"]["Statement"]
            .as_sequence()
            .unwrap()
        {
            assert!(
                !st["Condition"]["ArnEquals"]["aws:SourceArn"].is_null(),
                "{name:?}: a service principal without aws:SourceArn"
            );
        }
    }
    // WebSocket access logs need the account's API Gateway logging role (optional).
    assert_eq!(res["ApiGatewayAccount"]["Type"], "AWS::ApiGateway::Account");
    assert_eq!(
        res["ApiGatewayAccount"]["Condition"],
        "CreateApiGatewayAccount"
    );
    let description = tag(&res["WebSocketStage"]["Properties"]["Description"], "!If").unwrap();
    assert_eq!(description[0], "CreateApiGatewayAccount");
    // The status queue keeps each run's events in order.
    assert_eq!(res["StatusQueue"]["Properties"]["FifoQueue"], true);
    assert_eq!(
        res["StatusDeadLetterQueue"]["Properties"]["FifoQueue"],
        true
    );
}

#[test]
fn the_listing_index_projects_exactly_the_run_summary() {
    use campaign_shared::adapters::aws::dynamodb::RUN_SUMMARY_ATTRIBUTES;
    let t = template();
    let gsis = t["Resources"]["Table"]["Properties"]["GlobalSecondaryIndexes"]
        .as_sequence()
        .unwrap();
    let gsi1 = gsis.iter().find(|g| g["IndexName"] == "gsi1").unwrap();
    assert_eq!(gsi1["Projection"]["ProjectionType"], "INCLUDE");
    let projected: Vec<&str> = gsi1["Projection"]["NonKeyAttributes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(projected, RUN_SUMMARY_ATTRIBUTES);
}

#[test]
fn the_http_api_chooses_iam_or_jwt_per_route_without_sam_auth() {
    let t = template();
    let res = t["Resources"].as_mapping().unwrap();
    assert!(
        res.values()
            .all(|r| r["Type"] != "AWS::Serverless::HttpApi"),
        "SAM's HttpApi rejects an Fn::If DefaultAuthorizer"
    );
    let routes: Vec<&Value> = res
        .values()
        .filter(|r| {
            r["Type"] == "AWS::ApiGatewayV2::Route"
                && r["Properties"]["ApiId"]
                    == t["Resources"]["CreateCampaignRoute"]["Properties"]["ApiId"]
        })
        .collect();
    let keys: BTreeSet<&str> = routes
        .iter()
        .map(|r| r["Properties"]["RouteKey"].as_str().unwrap())
        .collect();
    for key in [
        "POST /campaigns",
        "POST /brands",
        "GET /brands",
        "GET /brands/{brandId}",
        "PUT /brands/{brandId}",
        "DELETE /brands/{brandId}",
    ] {
        assert!(keys.contains(key), "no route {key}: {keys:?}");
    }
    assert_eq!(routes.len(), 14);
    for r in routes {
        let key = r["Properties"]["RouteKey"].as_str().unwrap();
        if key == "GET /" || key == "GET /dashboard/{asset}" {
            // The dashboard's page and assets: public, no data in them.
            assert_eq!(r["Properties"]["AuthorizationType"], "NONE", "{key}");
            continue;
        }
        let auth = tag(&r["Properties"]["AuthorizationType"], "!If").unwrap();
        assert_eq!(auth[1], "JWT");
        assert_eq!(auth[2], "AWS_IAM");
    }
}

#[test]
fn the_dashboard_and_metric_alarms_are_built_on_the_metrics_the_code_emits() {
    use campaign_shared::observe;
    let t = template();
    let body = tag(
        &t["Resources"]["Dashboard"]["Properties"]["DashboardBody"],
        "!Sub",
    )
    .unwrap()
    .as_str()
    .unwrap()
    .replace("${AWS::Region}", "us-east-1");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("the dashboard is JSON");
    let mut named = BTreeSet::new();
    for w in doc["widgets"].as_array().unwrap() {
        for m in w["properties"]["metrics"].as_array().unwrap() {
            if m[0] == observe::NAMESPACE {
                named.insert(m[1].as_str().unwrap().to_string());
            }
        }
    }
    for m in observe::METRICS {
        assert!(named.contains(m), "the dashboard does not show {m}");
    }
    // The seed's rates are shown as rates: failures per agent and cancellations, each an
    // expression over the metrics' ids.
    let expressions: Vec<String> = doc["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["properties"]["metrics"].as_array().unwrap().clone())
        .filter_map(|m| m[0]["expression"].as_str().map(str::to_string))
        .collect();
    for rate in ["fc", "fs", "fv", "rc"] {
        assert!(
            expressions
                .iter()
                .any(|e| e.contains(&format!("FILL({rate}, 0) /"))),
            "no rate over {rate}: {expressions:?}"
        );
    }
    for (name, r) in t["Resources"].as_mapping().unwrap() {
        if r["Type"] == "AWS::CloudWatch::Alarm"
            && r["Properties"]["Namespace"] == observe::NAMESPACE
        {
            let metric = r["Properties"]["MetricName"].as_str().unwrap();
            assert!(
                observe::METRICS.contains(&metric),
                "{name:?} alarms on {metric}, which no code emits"
            );
        }
    }
    // JSON logs at INFO for every function (Lambda's advanced logging controls).
    let logging = &t["Globals"]["Function"]["LoggingConfig"];
    assert_eq!(logging["LogFormat"], "JSON");
    assert_eq!(logging["ApplicationLogLevel"], "INFO");
}

#[test]
fn browsers_of_the_configured_origins_may_call_the_http_api() {
    let t = template();
    let cors = tag(
        &t["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"],
        "!If",
    )
    .expect("CORS is chosen by a condition");
    assert_eq!(cors[0], "HasCors");
    assert_eq!(
        tag(&cors[1]["AllowOrigins"], "!Ref").unwrap(),
        "CorsAllowedOrigins"
    );
    let allowed: Vec<&str> = cors[1]["AllowHeaders"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    for h in [
        "idempotency-key",
        "if-none-match",
        "last-event-id",
        "authorization",
    ] {
        assert!(allowed.contains(&h), "{h} not allowed");
    }
    // Every method a route answers may be called from the dashboard's origin.
    let methods: Vec<&str> = cors[1]["AllowMethods"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let mut routes = 0;
    for (name, r) in t["Resources"].as_mapping().unwrap() {
        if r["Type"] != "AWS::ApiGatewayV2::Route"
            || r["Properties"]["ApiId"]
                != t["Resources"]["HttpApiIntegration"]["Properties"]["ApiId"]
        {
            continue;
        }
        let key = r["Properties"]["RouteKey"].as_str().unwrap();
        let method = key.split_whitespace().next().unwrap();
        assert!(
            methods.contains(&method),
            "{name:?} ({key}): {method} is not in the CORS AllowMethods {methods:?}"
        );
        routes += 1;
    }
    assert!(routes >= 14, "{routes} HTTP routes");
    assert_eq!(t["Parameters"]["CorsAllowedOrigins"]["Default"], "");
}

#[test]
fn only_the_agent_functions_may_invoke_a_model_and_only_the_configured_one() {
    let t = template();
    for (name, r) in functions(&t) {
        let text = serde_yaml_ng::to_string(&r["Properties"]["Policies"]).unwrap();
        let agent = ["Copy", "Social", "Visual"]
            .into_iter()
            .find(|a| name == format!("{a}AgentFunction"));
        let Some(agent) = agent else {
            assert!(!text.contains("bedrock:"), "{name} may call Bedrock");
            continue;
        };
        let param = format!("{agent}ModelId");
        assert_eq!(
            t["Parameters"][param.as_str()]["Default"],
            "",
            "{param}: built-in by default"
        );
        let model_id = &r["Properties"]["Environment"]["Variables"]["BEDROCK_MODEL_ID"];
        assert_eq!(
            tag(model_id, "Ref").and_then(Value::as_str),
            Some(param.as_str()),
            "{name}"
        );
        // The grant exists only when a model is configured, and names only that model.
        let conditional = r["Properties"]["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|p| tag(p, "If"))
            .find(|f| f[0] == format!("{agent}UsesBedrock").as_str())
            .unwrap_or_else(|| panic!("{name}: no conditional Bedrock statement"));
        let grant = serde_yaml_ng::to_string(&conditional[1]).unwrap();
        assert!(
            grant.contains("bedrock:InvokeModelWithResponseStream"),
            "{grant}"
        );
        let resources: Vec<&str> = conditional[1]["Statement"][0]["Resource"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|r| tag(r, "Sub").and_then(Value::as_str).unwrap())
            .collect();
        assert!(!resources.is_empty());
        for arn in resources {
            assert!(
                arn.ends_with(&format!("/${{{param}}}")) && !arn.contains('*'),
                "{name}: {arn}"
            );
        }
        let unconditional: String = r["Properties"]["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|p| tag(p, "If").is_none())
            .map(|p| serde_yaml_ng::to_string(p).unwrap())
            .collect();
        assert!(!unconditional.contains("bedrock:"), "{name}");
    }
}
