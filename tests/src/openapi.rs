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

impl Spec {
    /// Errors of `value` against `schema`, resolved inside the document.
    fn errors(&self, schema: &Value, value: &Value) -> Vec<String> {
        // The whole document as the root, so `#/components/…` references resolve.
        let mut root = self.doc.clone();
        root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        root["allOf"] = json!([schema]);
        let validator = jsonschema::validator_for(&root)
            .unwrap_or_else(|e| panic!("the document's schema does not compile: {e}"));
        validator
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
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
