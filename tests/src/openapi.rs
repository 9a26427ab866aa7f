//! Checks answers against the OpenAPI document the server publishes (`GET /openapi.json`,
//! `shared/src/openapi.json`): the status must be documented for the route, the media type
//! too, and the body must validate against its schema (JSON Schema 2020-12, as OpenAPI 3.1
//! uses it). So the document cannot drift from what the server says.

use serde_json::{Value, json};

#[derive(Debug)]
pub struct Spec {
    doc: Value,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            doc: serde_json::from_str(campaign_shared::http::OPENAPI).expect("openapi.json"),
        }
    }
}

/// Compiled validators by schema (the document is compiled once per schema, not per check).
type Validators =
    std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<jsonschema::Validator>>>;

fn validators() -> &'static Validators {
    static CACHE: std::sync::OnceLock<Validators> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

impl Spec {
    /// The shared document (parsed once per process).
    pub fn shared() -> &'static Spec {
        static SPEC: std::sync::OnceLock<Spec> = std::sync::OnceLock::new();
        SPEC.get_or_init(Spec::default)
    }

    /// Errors of `value` against `schema`, resolved inside the document.
    fn errors(&self, schema: &Value, value: &Value) -> Vec<String> {
        let key = schema.to_string();
        let cached = validators().lock().unwrap().get(&key).cloned();
        let validator = match cached {
            Some(v) => v,
            None => {
                // The whole document as the root, so `#/components/…` references resolve.
                let mut root = self.doc.clone();
                root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
                root["allOf"] = json!([schema]);
                let v = std::sync::Arc::new(
                    jsonschema::validator_for(&root)
                        .unwrap_or_else(|e| panic!("the document's schema does not compile: {e}")),
                );
                validators().lock().unwrap().insert(key, v.clone());
                v
            }
        };
        validator
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    /// The documented route (`/campaigns/{runId}`) a request path (`/campaigns/01J…?x=1`)
    /// falls under, if any.
    pub fn route_of(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or_default();
        let parts: Vec<&str> = path.split('/').collect();
        self.doc["paths"].as_object()?.keys().find_map(|route| {
            let pattern: Vec<&str> = route.split('/').collect();
            let fits = pattern.len() == parts.len()
                && pattern
                    .iter()
                    .zip(&parts)
                    .all(|(p, a)| p == a || (p.starts_with('{') && !a.is_empty()));
            fits.then(|| route.clone())
        })
    }

    /// Checks an answer of the running server if its route is documented and it is JSON
    /// (or a 304): status, media type, body and documented headers.
    pub fn check_answer(
        &self,
        method: &str,
        path: &str,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &Value,
    ) {
        let Some(route) = self.route_of(path) else {
            return;
        };
        let json = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.contains("json"));
        if json || status == 304 {
            self.check_with_headers(method, &route, status, headers, body);
        }
    }

    /// Panics unless `value` is a valid `#/components/schemas/{name}`.
    pub fn check_schema(&self, name: &str, value: &Value) {
        let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        let errors = self.errors(&schema, value);
        assert!(
            errors.is_empty(),
            "not a valid {name}: {errors:#?}\n{value:#}"
        );
    }

    /// Panics unless the answer (`status`, `content_type`, `body`) to `method path` is one
    /// the document describes. `path` is the route as written in the document
    /// (`/campaigns/{runId}`).
    pub fn check(&self, method: &str, path: &str, status: u16, content_type: &str, body: &Value) {
        let op = &self.doc["paths"][path][method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} is not in the document");
        let response = &op["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {path} answered {status}, which the document does not list"
        );
        if status == 304 {
            return;
        }
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let content = &response["content"][media];
        assert!(
            content.is_object(),
            "{method} {path} {status} answered {media}, which the document does not list"
        );
        let errors = self.errors(&content["schema"], body);
        assert!(
            errors.is_empty(),
            "{method} {path} {status}: {errors:#?}\n{body:#}"
        );
    }

    /// [`Spec::check`], and every header the document gives this answer (`Retry-After`,
    /// `ETag`, …) is present with a value of its schema's type.
    pub fn check_with_headers(
        &self,
        method: &str,
        path: &str,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &Value,
    ) {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        self.check(method, path, status, content_type, body);
        let response =
            &self.doc["paths"][path][method.to_lowercase()]["responses"][status.to_string()];
        let Some(documented) = response["headers"].as_object() else {
            return;
        };
        for (name, h) in documented {
            let value = headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| {
                    panic!("{method} {path} {status}: the documented header {name} is missing")
                });
            let typed = match h["schema"]["type"].as_str() {
                Some("integer") => value
                    .parse::<i64>()
                    .map(|n| json!(n))
                    .unwrap_or(json!(value)),
                _ => json!(value),
            };
            let errors = self.errors(&h["schema"], &typed);
            assert!(
                errors.is_empty(),
                "{method} {path} {status}: header {name}: {value:?}: {errors:#?}"
            );
        }
    }
}
