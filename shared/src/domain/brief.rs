//! The campaign brief: parsed from client JSON and validated against the contract in
//! ARCHITECTURE.md. Every violation is collected (not just the first), unknown fields are
//! rejected by name, text is trimmed and NFC-normalized, prohibited terms are normalized and
//! deduplicated.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

use super::agent::Agent;
use super::palette;

/// Largest accepted request body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Character limits (Unicode scalar values, after trimming and NFC) of the free-text fields.
pub const TEXT_FIELD_MAX: usize = 500;
pub const TONE_MAX: usize = 100;
pub const MAX_PROHIBITED_TERMS: usize = 100;
pub const PROHIBITED_TERM_MAX: usize = 64;
pub const MAX_TONE_ADJECTIVES: usize = 20;
pub const TONE_ADJECTIVE_MAX: usize = 40;
pub const MAX_PALETTE: usize = 12;

/// Accepted range and default of `constraints.maxLength.<agent>`, in characters.
///
/// * copy — the whole text (headline, body and call to action together);
/// * social — each post, hashtags included (280 is the common network limit);
/// * visual — the text printed on the poster (headline and subheadline together).
pub const fn max_length_range(agent: Agent) -> (usize, usize, usize) {
    match agent {
        Agent::Copy => (150, 5_000, 1_500),
        Agent::Social => (60, 280, 280),
        Agent::Visual => (40, 300, 140),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionMode {
    #[default]
    Parallel,
    Sequential,
    /// Parallel unless recent agent latency or throttling says otherwise (decided when the
    /// run is created; the run records the decision and why).
    Auto,
}

impl ExecutionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionMode::Parallel => "parallel",
            ExecutionMode::Sequential => "sequential",
            ExecutionMode::Auto => "auto",
        }
    }
}

impl std::str::FromStr for ExecutionMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "parallel" => Ok(Self::Parallel),
            "sequential" => Ok(Self::Sequential),
            "auto" => Ok(Self::Auto),
            other => Err(format!(
                "unknown execution mode `{other}`; allowed: parallel, sequential, auto"
            )),
        }
    }
}

/// Per-agent character limits; `None` means the agent's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaxLength {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub social: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visual: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraints {
    #[serde(default)]
    pub max_length: MaxLength,
    /// Normalized: trimmed, NFC, lowercase, inner whitespace collapsed, deduplicated, in the
    /// order first given.
    #[serde(default)]
    pub prohibited_terms: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrandGuidelines {
    #[serde(default)]
    pub tone_adjectives: Vec<String>,
    /// As given (trimmed; hex values upper-cased); resolve with [`palette::resolve`].
    #[serde(default)]
    pub palette: Vec<String>,
}

/// A validated brief. Construct with [`Brief::parse`] (client bytes) or
/// [`Brief::from_value`]; stored briefs round-trip through serde unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Brief {
    pub objective: String,
    pub audience: String,
    pub product: String,
    pub tone: String,
    #[serde(default)]
    pub constraints: Constraints,
    #[serde(default)]
    pub brand_guidelines: BrandGuidelines,
    #[serde(default)]
    pub execution_mode: ExecutionMode,
    /// The order agents run in sequentially (and are audited in): every agent once.
    #[serde(default = "default_priority")]
    pub priority: Vec<Agent>,
    /// The brand kit the brief draws on (`brandId`), merged into the guidelines and
    /// constraints when the run is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand_id: Option<String>,
    /// The version of that kit the run used (set by the server; a retry reuses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand_version: Option<u32>,
    /// The client did not choose `executionMode`: the server's default mode applies when
    /// the run is created (then this is cleared; stored briefs always say).
    #[serde(skip)]
    pub mode_defaulted: bool,
}

/// The default agent order: copy, social, visual.
pub fn default_priority() -> Vec<Agent> {
    Agent::ALL.to_vec()
}

impl Brief {
    /// The effective character limit for `agent`.
    pub fn max_length(&self, agent: Agent) -> usize {
        let given = match agent {
            Agent::Copy => self.constraints.max_length.copy,
            Agent::Social => self.constraints.max_length.social,
            Agent::Visual => self.constraints.max_length.visual,
        };
        given.unwrap_or(max_length_range(agent).2)
    }
}

/// What to do with a free-text field over its limit: refuse the brief with guidance (the
/// default), or cut the text at a word boundary and say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Oversize {
    #[default]
    Reject,
    Truncate,
}

impl std::str::FromStr for Oversize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reject" => Ok(Oversize::Reject),
            "truncate" => Ok(Oversize::Truncate),
            other => Err(format!(
                "oversize `{other}` is unknown; allowed: reject, truncate"
            )),
        }
    }
}

/// Largest body read when over-long fields are truncated: 1 MiB (the HTTP read limit).
pub const TRUNCATE_BODY_BYTES: usize = 1024 * 1024;

/// A free-text field that was cut to its limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Truncation {
    pub field: String,
    /// Characters sent (after trimming and normalization).
    pub length: usize,
    /// Characters kept.
    pub truncated_to: usize,
}

/// The first `max` characters of `t`, cut back to the last word boundary when that does
/// not leave it empty, without trailing whitespace.
pub fn cut_at_word(t: &str, max: usize) -> String {
    let Some((end, next)) = t.char_indices().nth(max) else {
        return t.to_string();
    };
    let head = &t[..end];
    let cut = if next.is_whitespace() {
        head
    } else {
        match head.rfind(char::is_whitespace) {
            Some(i) if !head[..i].trim().is_empty() => &head[..i],
            _ => head,
        }
    };
    cut.trim_end().to_string()
}

/// One violated rule: the JSON path of the field and what is wrong / allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BriefError {
    #[error("request body is {size} bytes; the limit is {limit} bytes. {guidance}")]
    TooLarge {
        size: usize,
        limit: usize,
        guidance: String,
    },
    #[error("request body is not valid JSON: {0}")]
    Malformed(String),
    #[error("the brief has {} problem(s): {}", .0.len(), summarize(.0))]
    Invalid(Vec<Violation>),
}

fn summarize(v: &[Violation]) -> String {
    v.iter()
        .map(|v| format!("{}: {}", v.field, v.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl BriefError {
    pub fn violations(&self) -> &[Violation] {
        match self {
            BriefError::Invalid(v) => v,
            _ => &[],
        }
    }
}

impl Brief {
    /// Parses and validates a request body.
    pub fn parse(body: &[u8]) -> Result<Brief, BriefError> {
        Brief::parse_with(body, Oversize::Reject).map(|(b, _)| b)
    }

    /// [`Brief::parse`], with over-long free-text fields cut at a word boundary when
    /// `oversize` says so (bodies up to [`TRUNCATE_BODY_BYTES`] are then read); the cuts
    /// are returned beside the brief.
    pub fn parse_with(
        body: &[u8],
        oversize: Oversize,
    ) -> Result<(Brief, Vec<Truncation>), BriefError> {
        let limit = match oversize {
            Oversize::Reject => MAX_BODY_BYTES,
            Oversize::Truncate => TRUNCATE_BODY_BYTES,
        };
        if body.len() > limit {
            return Err(BriefError::TooLarge {
                size: body.len(),
                limit,
                guidance: oversize_guidance(body),
            });
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|e| BriefError::Malformed(e.to_string()))?;
        Brief::from_value_with(&value, oversize)
    }

    /// Validates an already-parsed JSON value.
    pub fn from_value(value: &Value) -> Result<Brief, BriefError> {
        Brief::from_value_with(value, Oversize::Reject).map(|(b, _)| b)
    }

    /// [`Brief::from_value`] with the choice for over-long free-text fields.
    pub fn from_value_with(
        value: &Value,
        oversize: Oversize,
    ) -> Result<(Brief, Vec<Truncation>), BriefError> {
        let mut v = Validator {
            oversize,
            ..Validator::default()
        };
        let Some(obj) = value.as_object() else {
            v.push(
                "$",
                format!("the brief must be a JSON object, got {}", kind(value)),
            );
            return Err(BriefError::Invalid(v.errors));
        };
        v.unknown(
            "",
            obj,
            &[
                "objective",
                "audience",
                "product",
                "tone",
                "constraints",
                "brandGuidelines",
                "executionMode",
                "priority",
                "brandId",
                "parentRunId",
                "brandVersion",
            ],
        );
        if obj.contains_key("parentRunId") {
            v.push(
                "parentRunId",
                "is set by the retry route (POST /campaigns/{runId}/retry); clients must not send it",
            );
        }
        if obj.contains_key("brandVersion") {
            v.push(
                "brandVersion",
                "is set by the server (the version of the brand kit `brandId` names when the run is created); clients must not send it",
            );
        }
        let priority = v.priority(obj.get("priority"));
        let brand_id = v.brand_id(obj.get("brandId"));
        let objective = v.text(obj, "objective", TEXT_FIELD_MAX);
        let audience = v.text(obj, "audience", TEXT_FIELD_MAX);
        let product = v.text(obj, "product", TEXT_FIELD_MAX);
        let tone = v.text(obj, "tone", TONE_MAX);
        let constraints = v.constraints(obj.get("constraints"));
        let brand_guidelines = v.brand(obj.get("brandGuidelines"));
        let mode_defaulted = matches!(obj.get("executionMode"), None | Some(Value::Null));
        let execution_mode = match obj.get("executionMode") {
            None | Some(Value::Null) => ExecutionMode::Parallel,
            Some(Value::String(s)) => match s.trim().parse() {
                Ok(m) => m,
                Err(_) => {
                    v.push(
                        "executionMode",
                        format!("`{s}` is not an execution mode; allowed: \"parallel\" (default), \"sequential\", \"auto\""),
                    );
                    ExecutionMode::Parallel
                }
            },
            Some(other) => {
                v.push(
                    "executionMode",
                    format!(
                        "must be a string (\"parallel\", \"sequential\" or \"auto\"), got {}",
                        kind(other)
                    ),
                );
                ExecutionMode::Parallel
            }
        };
        if !v.errors.is_empty() {
            return Err(BriefError::Invalid(v.errors));
        }
        Ok((
            Brief {
                objective,
                audience,
                product,
                tone,
                constraints,
                brand_guidelines,
                execution_mode,
                priority,
                brand_id,
                brand_version: None,
                mode_defaulted,
            },
            v.truncations,
        ))
    }
}

/// Trims and NFC-normalizes text.
pub fn normalize_text(s: &str) -> String {
    // Line breaks are newlines: a CRLF or a lone CR (Windows, old Mac text) becomes LF.
    let s = s.trim();
    if s.contains('\r') {
        s.replace("\r\n", "\n").replace('\r', "\n").nfc().collect()
    } else {
        s.nfc().collect()
    }
}

/// A character no free-text field of a brief may hold: the C0 controls but tab, newline and
/// carriage return (which becomes a newline), DEL, the C1 controls, and the noncharacters
/// U+FFFE and U+FFFF — none is text, and XML 1.0 (the SVG preview) forbids most of them.
/// Unpaired surrogates never get this far: JSON parsing refuses them.
pub fn is_forbidden_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{7F}'..='\u{9F}'
        | '\u{FFFE}' | '\u{FFFF}')
}

/// The first forbidden character of `s` and its position (1-based, in characters), in the
/// words of a 400.
fn forbidden_char_message(s: &str) -> Option<String> {
    let (i, c) = s.chars().enumerate().find(|(_, c)| is_forbidden_char(*c))?;
    Some(format!(
        "contains the control character U+{:04X} at character {}; allowed: printable text, tabs and line breaks (control characters are refused, not removed)",
        c as u32,
        i + 1
    ))
}

/// Normalizes a prohibited term: trimmed, NFC, lowercase, inner whitespace collapsed.
pub fn normalize_term(s: &str) -> String {
    let nfc: String = s.nfc().collect::<String>().to_lowercase();
    nfc.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<Violation>,
    oversize: Oversize,
    truncations: Vec<Truncation>,
}

impl Validator {
    /// A free-text field over its limit: cut at a word boundary (and recorded) when asked
    /// to truncate, else a violation with the way out. Returns what is kept.
    fn too_long(&mut self, field: &str, t: String, max: usize) -> String {
        let n = t.chars().count();
        match self.oversize {
            Oversize::Truncate => {
                let kept = cut_at_word(&t, max);
                self.truncations.push(Truncation {
                    field: field.to_string(),
                    length: n,
                    truncated_to: kept.chars().count(),
                });
                kept
            }
            Oversize::Reject => {
                self.push(
                    field,
                    format!(
                        "is {n} characters long; allowed: 1–{max} characters (or ask to truncate it at a word boundary: POST /campaigns?oversize=truncate, campaign run --oversize truncate)"
                    ),
                );
                String::new()
            }
        }
    }

    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Violation {
            field: field.into(),
            message: message.into(),
        });
    }

    fn unknown(&mut self, prefix: &str, obj: &Map<String, Value>, allowed: &[&str]) {
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) {
                // An empty key still needs a visible name (found by fuzzing).
                let shown = if key.is_empty() { "\"\"" } else { key.as_str() };
                self.push(
                    join(prefix, shown),
                    format!(
                        "unknown field `{key}`; allowed here: {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn text(&mut self, obj: &Map<String, Value>, name: &str, max: usize) -> String {
        match obj.get(name) {
            None | Some(Value::Null) => {
                self.push(name, format!("is required: a string of 1–{max} characters"));
                String::new()
            }
            Some(Value::String(s)) => {
                if let Some(msg) = forbidden_char_message(s) {
                    self.push(name, msg);
                    return String::new();
                }
                let t = normalize_text(s);
                let n = t.chars().count();
                if n == 0 {
                    self.push(
                        name,
                        format!("must not be empty or blank; allowed: 1–{max} characters"),
                    );
                } else if n > max {
                    return self.too_long(name, t, max);
                }
                t
            }
            Some(other) => {
                self.push(
                    name,
                    format!(
                        "must be a string of 1–{max} characters, got {}",
                        kind(other)
                    ),
                );
                String::new()
            }
        }
    }

    fn object<'a>(&mut self, field: &str, v: Option<&'a Value>) -> Option<&'a Map<String, Value>> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                self.push(field, format!("must be an object, got {}", kind(other)));
                None
            }
        }
    }

    fn string_list<'a>(
        &mut self,
        field: &str,
        v: Option<&'a Value>,
        max_items: usize,
    ) -> Vec<(String, Result<&'a str, String>)> {
        let mut out = Vec::new();
        match v {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                if items.len() > max_items {
                    self.push(
                        field,
                        format!("has {} entries; allowed: at most {max_items}", items.len()),
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    let path = format!("{field}[{i}]");
                    match item {
                        Value::String(s) => match forbidden_char_message(s) {
                            Some(msg) => out.push((path, Err(msg))),
                            None => out.push((path, Ok(s.as_str()))),
                        },
                        other => {
                            out.push((path, Err(format!("must be a string, got {}", kind(other)))))
                        }
                    }
                }
            }
            Some(other) => self.push(
                field,
                format!(
                    "must be an array of strings (at most {max_items}), got {}",
                    kind(other)
                ),
            ),
        }
        out
    }

    fn constraints(&mut self, v: Option<&Value>) -> Constraints {
        let mut c = Constraints::default();
        let Some(obj) = self.object("constraints", v) else {
            return c;
        };
        self.unknown("constraints", obj, &["maxLength", "prohibitedTerms"]);
        if let Some(ml) = self.object("constraints.maxLength", obj.get("maxLength")) {
            self.unknown("constraints.maxLength", ml, &["copy", "social", "visual"]);
            for agent in Agent::ALL {
                let field = format!("constraints.maxLength.{}", agent.as_str());
                let (min, max, default) = max_length_range(agent);
                let parsed = match ml.get(agent.as_str()) {
                    None | Some(Value::Null) => None,
                    Some(Value::Number(n)) => match n.as_u64() {
                        Some(n) if (min as u64..=max as u64).contains(&n) => Some(n as usize),
                        _ => {
                            self.push(
                                field,
                                format!("is {n}; allowed: an integer from {min} to {max} (default {default})"),
                            );
                            None
                        }
                    },
                    Some(other) => {
                        self.push(
                            field,
                            format!("must be an integer from {min} to {max} (default {default}), got {}", kind(other)),
                        );
                        None
                    }
                };
                match agent {
                    Agent::Copy => c.max_length.copy = parsed,
                    Agent::Social => c.max_length.social = parsed,
                    Agent::Visual => c.max_length.visual = parsed,
                }
            }
        }
        let terms = self.string_list(
            "constraints.prohibitedTerms",
            obj.get("prohibitedTerms"),
            MAX_PROHIBITED_TERMS,
        );
        for (path, raw) in terms {
            let raw = match raw {
                Ok(raw) => raw,
                Err(msg) => {
                    self.push(path, msg);
                    continue;
                }
            };
            let t = normalize_term(raw);
            let n = t.chars().count();
            if n == 0 {
                self.push(
                    path,
                    format!("must not be blank; allowed: 1–{PROHIBITED_TERM_MAX} characters"),
                );
            } else if n > PROHIBITED_TERM_MAX {
                self.push(
                    path,
                    format!("is {n} characters long; allowed: 1–{PROHIBITED_TERM_MAX} characters"),
                );
            } else if !t.chars().any(char::is_alphanumeric) {
                self.push(path, "must contain at least one letter or digit");
            } else if !c.prohibited_terms.contains(&t) {
                c.prohibited_terms.push(t);
            }
        }
        c
    }

    /// `priority`: agent names, each at most once; the agents not named follow in the
    /// default order (copy, social, visual).
    fn priority(&mut self, v: Option<&Value>) -> Vec<Agent> {
        let mut order = Vec::new();
        let allowed = "allowed: an array naming copy, social and visual, each at most once (default [\"copy\", \"social\", \"visual\"])";
        match v {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let path = format!("priority[{i}]");
                    match item.as_str().map(str::parse::<Agent>) {
                        Some(Ok(a)) if order.contains(&a) => {
                            self.push(path, format!("names `{a}` a second time; {allowed}"))
                        }
                        Some(Ok(a)) => order.push(a),
                        Some(Err(_)) => self.push(
                            path,
                            format!(
                                "`{}` is not an agent; {allowed}",
                                item.as_str().unwrap_or_default()
                            ),
                        ),
                        None => self.push(
                            path,
                            format!("must be a string, got {}; {allowed}", kind(item)),
                        ),
                    }
                }
            }
            Some(other) => self.push(
                "priority",
                format!("must be an array, got {}; {allowed}", kind(other)),
            ),
        }
        for a in Agent::ALL {
            if !order.contains(&a) {
                order.push(a);
            }
        }
        order
    }

    /// `brandId`: the id of a brand kit (see `/brands`).
    fn brand_id(&mut self, v: Option<&Value>) -> Option<String> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match super::brand::check_id(s) {
                Ok(()) => Some(s.clone()),
                Err(m) => {
                    self.push("brandId", m);
                    None
                }
            },
            Some(other) => {
                self.push(
                    "brandId",
                    format!(
                        "must be a string (a brand kit id from GET /brands), got {}",
                        kind(other)
                    ),
                );
                None
            }
        }
    }

    fn brand(&mut self, v: Option<&Value>) -> BrandGuidelines {
        let mut b = BrandGuidelines::default();
        let Some(obj) = self.object("brandGuidelines", v) else {
            return b;
        };
        self.unknown("brandGuidelines", obj, &["toneAdjectives", "palette"]);
        let adjectives = self.string_list(
            "brandGuidelines.toneAdjectives",
            obj.get("toneAdjectives"),
            MAX_TONE_ADJECTIVES,
        );
        for (path, raw) in adjectives {
            let raw = match raw {
                Ok(raw) => raw,
                Err(msg) => {
                    self.push(path, msg);
                    continue;
                }
            };
            let mut t = normalize_text(raw);
            let n = t.chars().count();
            if n > TONE_ADJECTIVE_MAX {
                t = self.too_long(&path, t, TONE_ADJECTIVE_MAX);
            }
            if t.is_empty() {
                if n == 0 {
                    self.push(
                        path,
                        format!("is 0 characters long; allowed: 1–{TONE_ADJECTIVE_MAX} characters"),
                    );
                }
            } else if !b.tone_adjectives.iter().any(|a| a.eq_ignore_ascii_case(&t)) {
                b.tone_adjectives.push(t);
            }
        }
        let colors = self.string_list("brandGuidelines.palette", obj.get("palette"), MAX_PALETTE);
        for (path, raw) in colors {
            match raw.and_then(palette::parse_color) {
                Ok(c) => b.palette.push(c.given),
                Err(msg) => self.push(path, msg),
            }
        }
        b
    }
}

/// Says which field made an oversized body too large, when the body is JSON at all.
fn oversize_guidance(body: &[u8]) -> String {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return format!(
            "Send a JSON brief of at most {} KiB; free-text fields take at most {TEXT_FIELD_MAX} characters each.",
            MAX_BODY_BYTES / 1024
        );
    };
    let mut largest: Option<(String, usize)> = None;
    fn walk(path: &str, v: &Value, largest: &mut Option<(String, usize)>) {
        let size = serde_json::to_string(v).map(|s| s.len()).unwrap_or(0);
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| walk(&join(path, k), v, largest)),
            Value::Array(a) if size > 1024 && a.len() > 1 => {
                if largest.as_ref().is_none_or(|(_, n)| size > *n) {
                    *largest = Some((path.to_string(), size));
                }
            }
            _ => {
                if largest.as_ref().is_none_or(|(_, n)| size > *n) {
                    *largest = Some((path.to_string(), size));
                }
            }
        }
    }
    for (k, v) in &obj {
        walk(k, v, &mut largest);
    }
    match largest {
        Some((field, size)) => {
            let limit = match field.as_str() {
                "objective" | "audience" | "product" => format!("{TEXT_FIELD_MAX} characters"),
                "tone" => format!("{TONE_MAX} characters"),
                f if f.starts_with("constraints.prohibitedTerms") => format!(
                    "{MAX_PROHIBITED_TERMS} terms of at most {PROHIBITED_TERM_MAX} characters"
                ),
                f if f.starts_with("brandGuidelines.toneAdjectives") => format!(
                    "{MAX_TONE_ADJECTIVES} adjectives of at most {TONE_ADJECTIVE_MAX} characters"
                ),
                f if f.starts_with("brandGuidelines.palette") => {
                    format!("{MAX_PALETTE} colors")
                }
                _ => "no such field in a brief".to_string(),
            };
            format!("The largest field is `{field}` ({size} bytes); its limit is {limit}.")
        }
        None => format!(
            "Send a JSON brief of at most {} KiB.",
            MAX_BODY_BYTES / 1024
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "objective": "Drive sign-ups for the spring launch",
            "audience": "Urban commuters aged 25-40",
            "product": "Aurora e-bike",
            "tone": "energetic",
        })
    }

    fn errors(v: Value) -> Vec<Violation> {
        match Brief::from_value(&v) {
            Err(BriefError::Invalid(v)) => v,
            other => panic!("expected violations, got {other:?}"),
        }
    }

    fn fields(v: Value) -> Vec<String> {
        errors(v).into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_minimal_brief_is_accepted_with_defaults() {
        let b = Brief::from_value(&valid()).unwrap();
        assert_eq!(b.execution_mode, ExecutionMode::Parallel);
        assert_eq!(b.max_length(Agent::Social), 280);
        assert_eq!(b.max_length(Agent::Copy), 1_500);
        assert!(b.constraints.prohibited_terms.is_empty());
    }

    #[test]
    fn every_missing_required_field_is_reported() {
        let f = fields(json!({}));
        assert_eq!(f, vec!["objective", "audience", "product", "tone"]);
    }

    #[test]
    fn a_control_character_in_any_free_text_field_is_refused_naming_field_and_position() {
        let mut v = valid();
        v["product"] = json!("Lamp\u{0}X");
        v["tone"] = json!("warm\u{1b}[31m");
        v["constraints"] = json!({"prohibitedTerms": ["ok", "bad\u{ffff}"]});
        v["brandGuidelines"] =
            json!({"toneAdjectives": ["\u{85}bold"], "palette": ["deep\u{7f} navy"]});
        let e = errors(v);
        let by_field: Vec<(&str, &str)> = e
            .iter()
            .map(|v| (v.field.as_str(), v.message.as_str()))
            .collect();
        assert_eq!(
            by_field.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
            [
                "product",
                "tone",
                "constraints.prohibitedTerms[1]",
                "brandGuidelines.toneAdjectives[0]",
                "brandGuidelines.palette[0]"
            ]
        );
        assert!(
            by_field[0].1.contains("U+0000 at character 5"),
            "{}",
            by_field[0].1
        );
        assert!(by_field[1].1.contains("U+001B at character 5"));
        assert!(by_field[2].1.contains("U+FFFF at character 4"));
        assert!(by_field[3].1.contains("U+0085 at character 1"));
        assert!(by_field[4].1.contains("U+007F at character 5"));
        assert!(
            by_field
                .iter()
                .all(|(_, m)| m.contains("refused, not removed"))
        );
    }

    #[test]
    fn over_long_text_is_refused_with_the_way_out_or_cut_at_a_word_boundary_when_asked() {
        let mut v = valid();
        let long = "word ".repeat(150); // 750 characters, trimmed to 749
        v["objective"] = json!(long);
        v["tone"] = json!("x".repeat(120));
        v["brandGuidelines"] =
            json!({"toneAdjectives": ["remarkably and wonderfully optimistic mood"]});
        let e = errors(v.clone());
        assert_eq!(
            e.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(),
            ["objective", "tone", "brandGuidelines.toneAdjectives[0]"]
        );
        assert!(
            e[0].message.contains("?oversize=truncate"),
            "{}",
            e[0].message
        );

        let (b, cuts) = Brief::from_value_with(&v, Oversize::Truncate).unwrap();
        assert_eq!(
            b.objective.chars().count(),
            499,
            "cut before the word that crossed 500"
        );
        assert!(b.objective.ends_with("word"));
        assert_eq!(b.tone, "x".repeat(100), "one long word is cut hard");
        assert_eq!(
            b.brand_guidelines.tone_adjectives,
            ["remarkably and wonderfully optimistic"]
        );
        assert_eq!(
            cuts,
            [
                Truncation {
                    field: "objective".into(),
                    length: 749,
                    truncated_to: 499
                },
                Truncation {
                    field: "tone".into(),
                    length: 120,
                    truncated_to: 100
                },
                Truncation {
                    field: "brandGuidelines.toneAdjectives[0]".into(),
                    length: 42,
                    truncated_to: 37
                },
            ]
        );
        // Identifiers are never cut: a prohibited term over its limit is still refused.
        v["constraints"] = json!({"prohibitedTerms": ["t".repeat(70)]});
        let Err(BriefError::Invalid(e)) = Brief::from_value_with(&v, Oversize::Truncate) else {
            panic!("a long prohibited term must be refused")
        };
        assert_eq!(e[0].field, "constraints.prohibitedTerms[0]");
    }

    #[test]
    fn a_body_over_64_kib_is_read_when_truncating() {
        let mut v = valid();
        v["objective"] = json!("lamp ".repeat(20_000));
        let body = serde_json::to_vec(&v).unwrap();
        assert!(matches!(
            Brief::parse(&body),
            Err(BriefError::TooLarge { .. })
        ));
        let (b, cuts) = Brief::parse_with(&body, Oversize::Truncate).unwrap();
        assert!(b.objective.chars().count() <= TEXT_FIELD_MAX);
        assert_eq!(cuts[0].field, "objective");
    }

    #[test]
    fn tabs_and_line_breaks_are_text_and_carriage_returns_become_newlines() {
        let mut v = valid();
        v["objective"] = json!("Line one\r\nLine two\rLine three\tend");
        let b = Brief::from_value(&v).unwrap();
        assert_eq!(b.objective, "Line one\nLine two\nLine three\tend");
    }

    #[test]
    fn text_is_trimmed_and_nfc_normalized() {
        let mut v = valid();
        v["product"] = json!("  Cafe\u{301} Noir  ");
        let b = Brief::from_value(&v).unwrap();
        assert_eq!(b.product, "Caf\u{e9} Noir");
    }

    #[test]
    fn blank_text_is_rejected() {
        let mut v = valid();
        v["objective"] = json!("   ");
        let e = errors(v);
        assert_eq!(e[0].field, "objective");
        assert!(e[0].message.contains("1–500"), "{}", e[0].message);
    }

    #[test]
    fn text_longer_than_500_characters_is_rejected_counting_characters_not_bytes() {
        let mut v = valid();
        v["audience"] = json!("é".repeat(500));
        assert!(Brief::from_value(&v).is_ok());
        v["audience"] = json!("é".repeat(501));
        let e = errors(v);
        assert_eq!(e[0].field, "audience");
        assert!(e[0].message.contains("501 characters"));
    }

    #[test]
    fn tone_is_limited_to_100_characters() {
        let mut v = valid();
        v["tone"] = json!("x".repeat(101));
        assert_eq!(fields(v), vec!["tone"]);
    }

    #[test]
    fn a_non_string_field_names_its_type() {
        let mut v = valid();
        v["product"] = json!(42);
        let e = errors(v);
        assert!(e[0].message.contains("got a number"));
    }

    #[test]
    fn unknown_fields_are_rejected_by_name_at_every_level() {
        let mut v = valid();
        v["budget"] = json!(10);
        v["constraints"] = json!({"maxLength": {"tiktok": 100}, "wordCount": 3});
        v["brandGuidelines"] = json!({"font": "Inter"});
        let f = fields(v);
        assert!(f.contains(&"budget".to_string()));
        assert!(f.contains(&"constraints.wordCount".to_string()));
        assert!(f.contains(&"constraints.maxLength.tiktok".to_string()));
        assert!(f.contains(&"brandGuidelines.font".to_string()));
    }

    #[test]
    fn an_empty_key_is_reported_with_a_visible_name() {
        let mut v = valid();
        v[""] = json!(1);
        let e = errors(v);
        assert_eq!(e[0].field, "\"\"");
        assert!(!e[0].message.is_empty());
    }

    #[test]
    fn every_violation_is_listed_not_just_the_first() {
        let v = json!({"objective": "", "tone": 3, "executionMode": "fast", "extra": true});
        let f = fields(v);
        assert_eq!(f.len(), 6, "{f:?}");
    }

    #[test]
    fn max_length_must_lie_in_the_documented_range() {
        let mut v = valid();
        v["constraints"] = json!({"maxLength": {"social": 281, "copy": 10, "visual": "long"}});
        let e = errors(v);
        assert_eq!(e.len(), 3);
        assert!(
            e.iter().any(|e| e.field == "constraints.maxLength.social"
                && e.message.contains("from 60 to 280"))
        );
    }

    #[test]
    fn max_length_within_range_is_kept() {
        let mut v = valid();
        v["constraints"] = json!({"maxLength": {"social": 120}});
        let b = Brief::from_value(&v).unwrap();
        assert_eq!(b.max_length(Agent::Social), 120);
    }

    #[test]
    fn prohibited_terms_are_normalized_and_deduplicated() {
        let mut v = valid();
        v["constraints"] =
            json!({"prohibitedTerms": [" FREE ", "free", "Cheap   Deal", "cheap deal"]});
        let b = Brief::from_value(&v).unwrap();
        assert_eq!(b.constraints.prohibited_terms, vec!["free", "cheap deal"]);
    }

    #[test]
    fn prohibited_terms_are_limited_in_count_and_length() {
        let mut v = valid();
        let many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
        v["constraints"] = json!({"prohibitedTerms": many});
        assert_eq!(fields(v.clone()), vec!["constraints.prohibitedTerms"]);
        v["constraints"] = json!({"prohibitedTerms": ["x".repeat(65), "", 7, "--"]});
        assert_eq!(
            fields(v),
            vec![
                "constraints.prohibitedTerms[0]",
                "constraints.prohibitedTerms[1]",
                "constraints.prohibitedTerms[2]",
                "constraints.prohibitedTerms[3]"
            ]
        );
    }

    #[test]
    fn tone_adjectives_are_limited_to_twenty() {
        let mut v = valid();
        let many: Vec<String> = (0..21).map(|i| format!("adj{i}")).collect();
        v["brandGuidelines"] = json!({"toneAdjectives": many});
        assert_eq!(fields(v), vec!["brandGuidelines.toneAdjectives"]);
    }

    #[test]
    fn palette_accepts_color_words_hex_and_descriptors_and_rejects_the_rest() {
        let mut v = valid();
        v["brandGuidelines"] = json!({"palette": [
            "teal", "#ff8800", "Navy Blue", "#12345", "deep navy", "warm sunset orange",
            "muted sage", "x".repeat(41), "42"
        ]});
        let e = errors(v);
        let f: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            f,
            vec![
                "brandGuidelines.palette[3]",
                "brandGuidelines.palette[7]",
                "brandGuidelines.palette[8]"
            ]
        );
        assert!(e.iter().all(|e| e.message.contains("allowed")));
    }

    #[test]
    fn palette_is_limited_to_twelve_colors() {
        let mut v = valid();
        v["brandGuidelines"] = json!({"palette": vec!["red"; 13]});
        assert_eq!(fields(v), vec!["brandGuidelines.palette"]);
    }

    #[test]
    fn execution_mode_defaults_to_parallel_and_accepts_sequential() {
        let mut v = valid();
        v["executionMode"] = json!("sequential");
        assert_eq!(
            Brief::from_value(&v).unwrap().execution_mode,
            ExecutionMode::Sequential
        );
        v["executionMode"] = json!("turbo");
        let e = errors(v);
        assert!(e[0].message.contains("allowed"));
    }

    #[test]
    fn parent_run_id_is_refused_from_clients() {
        let mut v = valid();
        v["parentRunId"] = json!("01J00000000000000000000000");
        assert_eq!(fields(v), vec!["parentRunId"]);
    }

    #[test]
    fn a_non_object_body_is_rejected() {
        assert_eq!(fields(json!([1, 2])), vec!["$"]);
    }

    #[test]
    fn malformed_json_is_reported_as_such() {
        assert!(matches!(
            Brief::parse(b"{nope"),
            Err(BriefError::Malformed(_))
        ));
    }

    #[test]
    fn a_brief_longer_than_64_kib_is_rejected_with_guidance() {
        let mut v = valid();
        v["objective"] = json!("x".repeat(70_000));
        let body = serde_json::to_vec(&v).unwrap();
        match Brief::parse(&body) {
            Err(BriefError::TooLarge {
                limit, guidance, ..
            }) => {
                assert_eq!(limit, 65_536);
                assert!(guidance.contains("`objective`"), "{guidance}");
                assert!(guidance.contains("500 characters"), "{guidance}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stored_brief_round_trips_through_serde() {
        let mut v = valid();
        v["constraints"] = json!({"prohibitedTerms": ["free"], "maxLength": {"copy": 800}});
        v["brandGuidelines"] = json!({"palette": ["teal"], "toneAdjectives": ["bold"]});
        let mut b = Brief::from_value(&v).unwrap();
        assert!(b.mode_defaulted, "the client chose no mode");
        // What is stored says the mode the server applied.
        b.mode_defaulted = false;
        let back: Brief = serde_json::from_value(serde_json::to_value(&b).unwrap()).unwrap();
        assert_eq!(b, back);
        assert_eq!(
            Brief::from_value(&serde_json::to_value(&b).unwrap()).unwrap(),
            b
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null)),
            ".{0,80}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("objective".to_string()),
                        Just("audience".to_string()),
                        Just("product".to_string()),
                        Just("tone".to_string()),
                        Just("constraints".to_string()),
                        Just("maxLength".to_string()),
                        Just("prohibitedTerms".to_string()),
                        Just("brandGuidelines".to_string()),
                        Just("palette".to_string()),
                        Just("toneAdjectives".to_string()),
                        Just("executionMode".to_string()),
                        "[a-z]{0,8}",
                    ],
                    inner,
                    0..8
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics_and_every_rejection_is_explained(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            match Brief::parse(&bytes) {
                Ok(_) => {}
                Err(BriefError::Invalid(v)) => prop_assert!(!v.is_empty() && v.iter().all(|v| !v.field.is_empty() && !v.message.is_empty())),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn validating_arbitrary_json_never_panics_and_accepted_briefs_are_within_limits(v in arb_json()) {
            match Brief::from_value(&v) {
                Ok(b) => {
                    for t in [&b.objective, &b.audience, &b.product] {
                        prop_assert!((1..=TEXT_FIELD_MAX).contains(&t.chars().count()));
                    }
                    prop_assert!(b.constraints.prohibited_terms.len() <= MAX_PROHIBITED_TERMS);
                    // Validation is idempotent: a stored brief validates to itself.
                    prop_assert_eq!(Brief::from_value(&serde_json::to_value(&b).unwrap()).unwrap(), b);
                }
                Err(BriefError::Invalid(v)) => prop_assert!(v.iter().all(|v| !v.message.is_empty())),
                Err(e) => prop_assert!(false, "unexpected error kind {e}"),
            }
        }
    }
}
