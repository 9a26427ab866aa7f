//! One test per semantic rule of the engine, with a scripted invoker (the engine is the
//! component under test here).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::*;

/// Scripted task behaviour by resource.
#[derive(Default)]
struct Script {
    calls: Mutex<Vec<(String, Value, Instant)>>,
    /// Resource → errors to return before succeeding (consumed one per call).
    fail_first: Mutex<HashMap<String, Vec<TaskError>>>,
    /// Resources that never answer.
    hang: Vec<String>,
}

#[async_trait]
impl TaskInvoker for Script {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        self.calls
            .lock()
            .unwrap()
            .push((resource.to_string(), input.clone(), Instant::now()));
        if self.hang.iter().any(|h| h == resource) {
            std::future::pending::<()>().await;
        }
        if let Some(errs) = self.fail_first.lock().unwrap().get_mut(resource)
            && !errs.is_empty()
        {
            return Err(errs.remove(0));
        }
        Ok(json!({ "from": resource, "got": input }))
    }
}

impl Script {
    fn hanging(resource: &str) -> Script {
        Script {
            hang: vec![resource.into()],
            ..Default::default()
        }
    }
    fn failing(resource: &str, errors: &[&str]) -> Script {
        let s = Script::default();
        s.fail_first.lock().unwrap().insert(
            resource.into(),
            errors
                .iter()
                .map(|e| TaskError {
                    error: (*e).into(),
                    cause: format!("{e} happened"),
                })
                .collect(),
        );
        s
    }
    fn count(&self, resource: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.0 == resource)
            .count()
    }
}

async fn run(def: Value, input: Value, script: Arc<Script>) -> Result<Value, ExecutionError> {
    let m = StateMachine::load("test-machine", &def.to_string())
        .unwrap()
        .with_time_scale(0.001);
    m.execute("exec-1", input, script, CancellationToken::new())
        .await
}

fn task(extra: Value) -> Value {
    let mut t = json!({"Type": "Task", "Resource": "R", "End": true});
    t.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    t
}

fn one(state: Value) -> Value {
    json!({"StartAt": "S", "States": {"S": state}})
}

#[tokio::test]
async fn a_task_result_replaces_the_input_by_default() {
    let out = run(
        one(task(json!({}))),
        json!({"a": 1}),
        Arc::new(Script::default()),
    )
    .await
    .unwrap();
    assert_eq!(out, json!({"from": "R", "got": {"a": 1}}));
}

#[tokio::test]
async fn result_path_null_keeps_the_input_and_a_nested_path_merges() {
    let out = run(
        one(task(json!({"ResultPath": null}))),
        json!({"a": 1}),
        Arc::new(Script::default()),
    )
    .await
    .unwrap();
    assert_eq!(out, json!({"a": 1}));
    let out = run(
        one(task(json!({"ResultPath": "$.r.x"}))),
        json!({"a": 1}),
        Arc::new(Script::default()),
    )
    .await
    .unwrap();
    assert_eq!(out["a"], 1);
    assert_eq!(out["r"]["x"]["from"], "R");
}

#[tokio::test]
async fn input_path_and_output_path_select() {
    let def = one(task(json!({"InputPath": "$.in", "OutputPath": "$.got"})));
    let out = run(
        def,
        json!({"in": {"k": "v"}, "other": 2}),
        Arc::new(Script::default()),
    )
    .await
    .unwrap();
    assert_eq!(out, json!({"k": "v"}));
}

#[tokio::test]
async fn parameters_take_paths_and_the_context_object() {
    let def = one(task(
        json!({"Parameters": {"id.$": "$.runId", "name.$": "$$.Execution.Name", "fixed": {"n": 1}}}),
    ));
    let s = Arc::new(Script::default());
    run(def, json!({"runId": "r1"}), s.clone()).await.unwrap();
    assert_eq!(
        s.calls.lock().unwrap()[0].1,
        json!({"id": "r1", "name": "exec-1", "fixed": {"n": 1}})
    );
}

#[tokio::test]
async fn each_attempt_reads_its_own_retry_count_from_the_context_object() {
    let def = one(task(json!({
        "Parameters": {
            "try.$": "$$.State.RetryCount",
            "state.$": "$$.State.Name",
            "input.$": "$$.Execution.Input.runId",
        },
        "Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 1, "MaxAttempts": 2}],
    })));
    let s = Arc::new(Script::failing("R", &["Transient", "Transient"]));
    run(def, json!({"runId": "r1"}), s.clone()).await.unwrap();
    let got: Vec<Value> = s
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.1.clone())
        .collect();
    let attempt = |n: u32| json!({"try": n, "state": "S", "input": "r1"});
    assert_eq!(got, vec![attempt(0), attempt(1), attempt(2)]);
}

#[tokio::test]
async fn a_parameter_path_that_matches_nothing_fails_the_execution_uncatchably() {
    let def = one(task(
        json!({"Parameters": {"id.$": "$.missing"}, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "S"}]}),
    ));
    let e = run(def, json!({}), Arc::new(Script::default()))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ExecutionError::Failed { ref error, .. } if error == "States.Runtime"),
        "{e:?}"
    );
}

#[tokio::test]
async fn result_selector_shapes_the_raw_result() {
    let def = one(task(
        json!({"ResultSelector": {"who.$": "$.from"}, "ResultPath": "$.sel"}),
    ));
    let out = run(def, json!({"a": 1}), Arc::new(Script::default()))
        .await
        .unwrap();
    assert_eq!(out, json!({"a": 1, "sel": {"who": "R"}}));
}

#[tokio::test]
async fn pass_states_inject_results() {
    let def = one(json!({"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.p", "End": true}));
    assert_eq!(
        run(def, json!({"a": 0}), Arc::new(Script::default()))
            .await
            .unwrap(),
        json!({"a": 0, "p": {"x": 1}})
    );
}

fn choice(choices: Value, default: Option<&str>) -> Value {
    let mut c = json!({"Type": "Choice", "Choices": choices});
    if let Some(d) = default {
        c["Default"] = json!(d);
    }
    json!({"StartAt": "C", "States": {
        "C": c,
        "A": {"Type": "Pass", "Result": "A", "End": true},
        "B": {"Type": "Pass", "Result": "B", "End": true}
    }})
}

#[tokio::test]
async fn choice_takes_the_first_matching_rule_or_the_default() {
    let def = choice(
        json!([{"Variable": "$.mode", "StringEquals": "seq", "Next": "A"}]),
        Some("B"),
    );
    assert_eq!(
        run(
            def.clone(),
            json!({"mode": "seq"}),
            Arc::new(Script::default())
        )
        .await
        .unwrap(),
        json!("A")
    );
    assert_eq!(
        run(def, json!({"mode": "par"}), Arc::new(Script::default()))
            .await
            .unwrap(),
        json!("B")
    );
}

#[tokio::test]
async fn choice_operators_compose() {
    let rules = json!([{
        "And": [
            {"Variable": "$.n", "NumericGreaterThanEquals": 3},
            {"Not": {"Variable": "$.flag", "BooleanEquals": true}},
            {"Or": [{"Variable": "$.s", "IsString": true}, {"Variable": "$.absent", "IsPresent": true}]}
        ],
        "Next": "A"
    }]);
    let def = choice(rules, Some("B"));
    let s = Arc::new(Script::default());
    assert_eq!(
        run(
            def.clone(),
            json!({"n": 3, "flag": false, "s": "x"}),
            s.clone()
        )
        .await
        .unwrap(),
        json!("A")
    );
    assert_eq!(
        run(
            def.clone(),
            json!({"n": 2, "flag": false, "s": "x"}),
            s.clone()
        )
        .await
        .unwrap(),
        json!("B")
    );
    assert_eq!(
        run(def, json!({"n": 5, "flag": true, "s": "x"}), s)
            .await
            .unwrap(),
        json!("B")
    );
}

#[tokio::test]
async fn no_matching_choice_without_default_fails_with_no_choice_matched() {
    let def = choice(
        json!([{"Variable": "$.mode", "StringEquals": "x", "Next": "A"}]),
        None,
    );
    let e = run(def, json!({"mode": "y"}), Arc::new(Script::default()))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ExecutionError::Failed { ref error, .. } if error == "States.NoChoiceMatched")
    );
}

fn parallel(extra: Value) -> Value {
    let mut p = json!({"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "A", "End": true}}},
        {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "B", "End": true}}}
    ]});
    p.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    one(p)
}

#[tokio::test]
async fn parallel_output_is_the_branch_outputs_in_branch_order() {
    let out = run(
        parallel(json!({})),
        json!({"x": 1}),
        Arc::new(Script::default()),
    )
    .await
    .unwrap();
    assert_eq!(out[0]["from"], "A");
    assert_eq!(out[1]["from"], "B");
    assert_eq!(out[1]["got"], json!({"x": 1}));
}

#[tokio::test]
async fn a_failing_branch_fails_the_parallel_and_stops_its_siblings() {
    let mut s = Script::failing("A", &["Boom"]);
    s.hang = vec!["B".into()];
    let s = Arc::new(s);
    let started = Instant::now();
    let e = run(parallel(json!({})), json!({}), s.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(e, ExecutionError::Failed { ref error, .. } if error == "Boom"),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the hanging sibling must have been dropped"
    );
}

#[tokio::test]
async fn a_parallel_state_can_catch_a_branch_failure() {
    let s = Arc::new(Script::failing("A", &["Boom"]));
    let mut def = parallel(
        json!({"Catch": [{"ErrorEquals": ["Boom"], "ResultPath": "$.err", "Next": "After"}]}),
    );
    def["States"]["S"].as_object_mut().unwrap().remove("End");
    def["States"]["S"]["Next"] = json!("Unused");
    def["States"]["Unused"] = json!({"Type": "Succeed"});
    def["States"]["After"] = json!({"Type": "Pass", "End": true});
    let out = run(def, json!({"k": 1}), s).await.unwrap();
    assert_eq!(out["err"]["Error"], "Boom");
    assert_eq!(out["k"], 1);
}

#[tokio::test]
async fn retry_repeats_up_to_max_attempts_with_growing_intervals() {
    let s = Arc::new(Script::failing(
        "R",
        &["Transient", "Transient", "Transient"],
    ));
    let def = one(task(
        json!({"Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 10, "BackoffRate": 3.0, "MaxAttempts": 3}]}),
    ));
    run(def, json!({}), s.clone()).await.unwrap();
    let calls = s.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 4);
    // Scaled 10 ms, 30 ms, 90 ms: each wait at least its interval, and growing.
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1].2 - w[0].2).collect();
    assert!(
        gaps[0] >= Duration::from_millis(10)
            && gaps[1] >= Duration::from_millis(30)
            && gaps[2] >= Duration::from_millis(90),
        "{gaps:?}"
    );
}

#[tokio::test]
async fn retry_gives_up_after_max_attempts_and_zero_means_never() {
    let s = Arc::new(Script::failing("R", &["Transient"; 5]));
    let def = one(task(
        json!({"Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 1, "MaxAttempts": 2}]}),
    ));
    let e = run(def, json!({}), s.clone()).await.unwrap_err();
    assert!(matches!(e, ExecutionError::Failed { ref error, .. } if error == "Transient"));
    assert_eq!(s.count("R"), 3);
    let s = Arc::new(Script::failing("R", &["Transient"]));
    let def = one(task(
        json!({"Retry": [{"ErrorEquals": ["Transient"], "MaxAttempts": 0}]}),
    ));
    assert!(run(def, json!({}), s.clone()).await.is_err());
    assert_eq!(s.count("R"), 1);
}

#[tokio::test]
async fn only_matching_retriers_apply_and_each_counts_its_own_attempts() {
    let s = Arc::new(Script::failing("R", &["A", "B", "A"]));
    let def = one(task(json!({"Retry": [
        {"ErrorEquals": ["A"], "IntervalSeconds": 1, "MaxAttempts": 2},
        {"ErrorEquals": ["B"], "IntervalSeconds": 1, "MaxAttempts": 1}
    ]})));
    run(def, json!({}), s.clone()).await.unwrap();
    assert_eq!(s.count("R"), 4);
    let s = Arc::new(Script::failing("R", &["Other"]));
    let def = one(task(
        json!({"Retry": [{"ErrorEquals": ["A"], "MaxAttempts": 3}]}),
    ));
    assert!(run(def, json!({}), s.clone()).await.is_err());
    assert_eq!(s.count("R"), 1);
}

#[tokio::test]
async fn catch_puts_error_and_cause_at_its_result_path_on_the_raw_input() {
    let s = Arc::new(Script::failing("R", &["AgentFailed"]));
    let def = json!({"StartAt": "S", "States": {
        "S": {"Type": "Task", "Resource": "R", "InputPath": "$.only", "End": true,
              "Catch": [{"ErrorEquals": ["Nope"], "Next": "X"}, {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "H"}]},
        "X": {"Type": "Fail", "Error": "Wrong"},
        "H": {"Type": "Pass", "End": true}
    }});
    let out = run(def, json!({"only": {}, "runId": "r"}), s)
        .await
        .unwrap();
    assert_eq!(out["runId"], "r");
    assert_eq!(
        out["error"],
        json!({"Error": "AgentFailed", "Cause": "AgentFailed happened"})
    );
}

#[tokio::test]
async fn a_result_path_that_cannot_be_placed_is_retried_then_caught_on_the_raw_input() {
    let s = Arc::new(Script::default());
    let def = json!({"StartAt": "S", "States": {
        "S": {"Type": "Task", "Resource": "R", "ResultPath": "$.x.y", "End": true,
              "Retry": [{"ErrorEquals": ["States.ResultPathMatchFailure"], "IntervalSeconds": 1, "MaxAttempts": 1}],
              "Catch": [{"ErrorEquals": ["States.ResultPathMatchFailure"], "ResultPath": "$.error", "Next": "H"}]},
        "H": {"Type": "Pass", "End": true}
    }});
    let out = run(def, json!({"x": 5, "runId": "r"}), s.clone())
        .await
        .unwrap();
    assert_eq!(s.count("R"), 2);
    assert_eq!(out["x"], 5);
    assert_eq!(out["runId"], "r");
    assert_eq!(out["error"]["Error"], "States.ResultPathMatchFailure");
}

#[tokio::test]
async fn task_failed_matches_task_errors_but_not_timeouts() {
    let s = Arc::new(Script::failing("R", &["Custom"]));
    let def = json!({"StartAt": "S", "States": {
        "S": {"Type": "Task", "Resource": "R", "End": true, "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "H"}]},
        "H": {"Type": "Pass", "Result": "caught", "End": true}
    }});
    assert_eq!(
        run(def.clone(), json!({}), s).await.unwrap(),
        json!("caught")
    );
    let hang = Script::hanging("R");
    let mut def = def;
    def["States"]["S"]["TimeoutSeconds"] = json!(1);
    let e = run(def, json!({}), Arc::new(hang)).await.unwrap_err();
    assert!(
        matches!(e, ExecutionError::Failed { ref error, .. } if error == "States.Timeout"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_task_timeout_is_states_timeout_and_can_be_retried() {
    let s = Script::hanging("R");
    let s = Arc::new(s);
    let def = one(task(
        json!({"TimeoutSeconds": 5, "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 2}]}),
    ));
    let e = run(def, json!({}), s.clone()).await.unwrap_err();
    assert!(matches!(e, ExecutionError::Failed { ref error, .. } if error == "States.Timeout"));
    assert_eq!(s.count("R"), 3);
}

#[tokio::test]
async fn the_machine_timeout_ends_the_execution() {
    let s = Script::hanging("R");
    let mut def = one(task(json!({})));
    def["TimeoutSeconds"] = json!(2);
    let e = run(def, json!({}), Arc::new(s)).await.unwrap_err();
    assert!(matches!(e, ExecutionError::Failed { ref error, .. } if error == "States.Timeout"));
}

#[tokio::test]
async fn cancelling_mid_task_returns_promptly() {
    let s = Script::hanging("R");
    let m = StateMachine::load("test-machine", &one(task(json!({}))).to_string()).unwrap();
    let token = CancellationToken::new();
    let t2 = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        t2.cancel();
    });
    let started = Instant::now();
    let e = m
        .execute("x", json!({}), Arc::new(s), token)
        .await
        .unwrap_err();
    assert_eq!(e, ExecutionError::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn fail_states_end_with_their_error_and_cause() {
    let def = one(json!({"Type": "Fail", "Error": "Nope", "Cause": "because"}));
    let e = run(def, json!({}), Arc::new(Script::default()))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ExecutionError::Failed {
            error: "Nope".into(),
            cause: "because".into()
        }
    );
}

#[tokio::test]
async fn endless_loops_are_cut_off() {
    let def = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A"}}});
    let e = run(def, json!({}), Arc::new(Script::default()))
        .await
        .unwrap_err();
    assert!(matches!(e, ExecutionError::Failed { ref error, .. } if error == "States.Runtime"));
}

fn load_err(def: Value) -> LoadError {
    StateMachine::load("test-machine", &def.to_string()).unwrap_err()
}

#[test]
fn unsupported_constructs_are_refused_at_load_naming_state_and_construct() {
    let e = load_err(one(json!({"Type": "Map", "End": true, "ItemProcessor": {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "P", "States": {"P": {"Type": "Succeed"}}
    }})));
    assert_eq!(e.state.as_deref(), Some("S"));
    assert!(e.to_string().contains("INLINE"), "{e}");
    let e = load_err(one(json!({"Type": "Map", "End": true})));
    assert!(e.to_string().contains("ItemProcessor"), "{e}");
    let e = load_err(one(json!({"Type": "Wait", "Seconds": 1, "End": true})));
    assert!(e.to_string().contains("`Wait`"));
    let e = load_err(one(task(json!({"HeartbeatSeconds": 5}))));
    assert!(e.to_string().contains("`HeartbeatSeconds`"), "{e}");
    let e = load_err(one(task(
        json!({"Parameters": {"x.$": "States.Format('{}', $.a)"}}),
    )));
    assert!(e.to_string().contains("States.Format"), "{e}");
    let e = load_err(one(task(
        json!({"Retry": [{"ErrorEquals": ["X"], "JitterStrategy": "FULL"}]}),
    )));
    assert!(e.to_string().contains("JitterStrategy"), "{e}");
    let e = load_err(choice(
        json!([{"Variable": "$.s", "StringMatches": "a*", "Next": "A"}]),
        None,
    ));
    assert!(e.to_string().contains("StringMatches"), "{e}");
    let e = load_err(
        json!({"StartAt": "S", "QueryLanguage": "JSONata", "States": {"S": {"Type": "Succeed"}}}),
    );
    assert!(e.to_string().contains("QueryLanguage"), "{e}");
}

#[test]
fn fields_of_the_wrong_type_or_out_of_range_are_refused_not_defaulted() {
    let retry = |r: Value| one(task(json!({ "Retry": [r] })));
    for (bad, names) in [
        (
            json!({"ErrorEquals": ["X"], "MaxAttempts": "three"}),
            "MaxAttempts",
        ),
        (
            json!({"ErrorEquals": ["X"], "MaxAttempts": -1}),
            "MaxAttempts",
        ),
        (
            json!({"ErrorEquals": ["X"], "MaxAttempts": 1.5}),
            "MaxAttempts",
        ),
        (
            json!({"ErrorEquals": ["X"], "BackoffRate": 0.5}),
            "BackoffRate",
        ),
        (
            json!({"ErrorEquals": ["X"], "BackoffRate": "2"}),
            "BackoffRate",
        ),
        (
            json!({"ErrorEquals": ["X"], "IntervalSeconds": 0}),
            "IntervalSeconds",
        ),
        (
            json!({"ErrorEquals": ["X"], "IntervalSeconds": 0.5}),
            "IntervalSeconds",
        ),
        (
            json!({"ErrorEquals": ["X"], "MaxDelaySeconds": -3}),
            "MaxDelaySeconds",
        ),
    ] {
        let e = load_err(retry(bad.clone()));
        assert_eq!(e.state.as_deref(), Some("S"), "{bad}");
        assert!(
            e.to_string().contains(&format!("Retry[0]: {names}")),
            "{bad}: {e}"
        );
    }
    for (bad, names) in [
        (json!({"Type": "Pass", "End": "yes"}), "End"),
        (json!({"Type": "Pass", "Next": 7}), "Next"),
        (
            json!({"Type": "Task", "Resource": 1, "End": true}),
            "Resource",
        ),
        (
            json!({"Type": "Task", "Resource": "R", "End": true, "TimeoutSeconds": 2.5}),
            "TimeoutSeconds",
        ),
        (json!({"Type": "Fail", "Error": 42}), "Error"),
        (
            json!({"Type": "Pass", "End": true, "Comment": ["a"]}),
            "Comment",
        ),
    ] {
        let e = load_err(one(bad.clone()));
        assert!(e.to_string().contains(names), "{bad}: {e}");
    }
    let e = load_err(json!({"StartAt": "S", "Comment": 1, "States": {"S": {"Type": "Succeed"}}}));
    assert!(e.to_string().contains("Comment"), "{e}");
    let e = load_err(one(task(
        json!({"Retry": [{"ErrorEquals": ["X"], "Comment": {}}]}),
    )));
    assert!(e.to_string().contains("Retry[0]: Comment"), "{e}");
    let e = load_err(one(task(
        json!({"Catch": [{"ErrorEquals": ["X"], "Next": false}]}),
    )));
    assert!(e.to_string().contains("Catch[0]: Next"), "{e}");
    // Absent, a retrier's fields take AWS's documented defaults (1 s, 3 attempts, ×2).
    StateMachine::load(
        "test-machine",
        &retry(json!({"ErrorEquals": ["X"]})).to_string(),
    )
    .unwrap();
}

#[test]
fn broken_transitions_are_refused_at_load() {
    let e = load_err(json!({"StartAt": "S", "States": {"S": {"Type": "Pass", "Next": "Nowhere"}}}));
    assert!(e.to_string().contains("Nowhere"));
    let e = load_err(json!({"StartAt": "Missing", "States": {"S": {"Type": "Succeed"}}}));
    assert!(e.to_string().contains("Missing"));
    let e = load_err(one(json!({"Type": "Pass"})));
    assert!(e.to_string().contains("Next or End"));
}

#[test]
fn the_project_state_machine_loads_and_names_its_resources() {
    let m =
        StateMachine::load("campaign-flow", include_str!("../../statemachine.asl.json")).unwrap();
    assert_eq!(
        m.task_resources(),
        vec![
            "${AuditFunctionArn}",
            "${CopyAgentFunctionArn}",
            "${FinalizeFunctionArn}",
            "${SocialAgentFunctionArn}",
            "${VisualAgentFunctionArn}"
        ]
    );
}

fn map_over_agents(extra: Value) -> Value {
    let mut m = json!({
        "Type": "Map",
        "ItemsPath": "$.order",
        "ItemSelector": { "runId.$": "$.runId", "agent.$": "$$.Map.Item.Value", "at.$": "$$.Map.Item.Index" },
        "MaxConcurrency": 1,
        "ItemProcessor": {
            "ProcessorConfig": { "Mode": "INLINE" },
            "StartAt": "Pick",
            "States": {
                "Pick": { "Type": "Choice", "Choices": [
                    { "Variable": "$.agent", "StringEquals": "b", "Next": "B" }
                ], "Default": "A" },
                "A": { "Type": "Task", "Resource": "A", "End": true },
                "B": { "Type": "Task", "Resource": "B", "End": true }
            }
        },
        "ResultPath": "$.results",
        "End": true
    });
    m.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    one(m)
}

#[tokio::test]
async fn an_inline_map_runs_its_items_in_order_one_at_a_time_with_the_item_in_context() {
    let script = Arc::new(Script::default());
    let out = run(
        map_over_agents(json!({})),
        json!({"runId": "r1", "order": ["b", "a", "b"]}),
        script.clone(),
    )
    .await
    .unwrap();
    let calls = script.calls.lock().unwrap().clone();
    let seen: Vec<(String, Value)> = calls.iter().map(|c| (c.0.clone(), c.1.clone())).collect();
    assert_eq!(
        seen,
        [
            (
                "B".to_string(),
                json!({"runId": "r1", "agent": "b", "at": 0})
            ),
            (
                "A".to_string(),
                json!({"runId": "r1", "agent": "a", "at": 1})
            ),
            (
                "B".to_string(),
                json!({"runId": "r1", "agent": "b", "at": 2})
            ),
        ]
    );
    assert_eq!(out["results"].as_array().unwrap().len(), 3);
    assert_eq!(out["results"][1]["from"], "A");
    assert_eq!(out["order"], json!(["b", "a", "b"]));
}

#[tokio::test]
async fn a_failing_item_fails_the_map_which_its_catch_handles_and_later_items_do_not_run() {
    let script = Arc::new(Script::failing("A", &["Boom"]));
    let out = run(
        map_over_agents(json!({
            "Catch": [{ "ErrorEquals": ["Boom"], "ResultPath": "$.error", "Next": "After" }],
            "End": null
        }))
        .pipe_after(),
        json!({"runId": "r1", "order": ["a", "b"]}),
        script.clone(),
    )
    .await
    .unwrap();
    assert_eq!(out["error"]["Error"], "Boom");
    assert_eq!(script.count("B"), 0, "the second item never ran");
}

#[tokio::test]
async fn a_map_over_something_not_an_array_is_a_runtime_error() {
    let e = run(
        map_over_agents(json!({})),
        json!({"runId": "r1", "order": "a"}),
        Arc::new(Script::default()),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, ExecutionError::Failed { ref error, ref cause } if error == "States.Runtime" && cause.contains("not an array")),
        "{e:?}"
    );
}

trait PipeAfter {
    fn pipe_after(self) -> Value;
}

impl PipeAfter for Value {
    /// Makes state `S` go on to a final `After` (removing its `End`).
    fn pipe_after(mut self) -> Value {
        let s = self["States"]["S"].as_object_mut().unwrap();
        s.remove("End");
        s.insert("Next".into(), json!("After"));
        self["States"]["After"] = json!({"Type": "Pass", "End": true});
        self
    }
}
