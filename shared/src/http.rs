//! The HTTP API of ARCHITECTURE.md as an axum router over the use cases — the same routes
//! serve `campaign serve` locally and the `api` Lambda (through lambda_http) in AWS.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::domain::{BrandInput, BrandKit};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::domain::brief::{Oversize, Truncation};
use crate::domain::{Agent, Brief, BriefError, Event, RunId, Status};
use crate::errors::chain;
use crate::ports::{Deps, StoreError};
use crate::usecases::{self, AppError};

/// The OpenAPI 3.1 document of these routes.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Seconds a client is asked to wait after a 503 or 429.
pub const RETRY_AFTER_SECS: &str = "2";

/// Largest body read at all; briefs over 64 KiB get a 413 with guidance from the brief
/// parser, anything larger a plain 413.
pub const READ_LIMIT: usize = 1024 * 1024;

/// A live feed of one run's events (replay, then new ones, ending after the terminal
/// event) — what SSE streams. Local mode has one; in AWS clients use the WebSocket API.
pub trait LiveEvents: Send + Sync {
    fn subscribe(&self, run_id: RunId, after: u64) -> mpsc::Receiver<Event>;
}

#[derive(Clone)]
pub struct ApiState {
    pub deps: Deps,
    pub live: Option<Arc<dyn LiveEvents>>,
    /// Where clients subscribe to live events (`links.ws`): `/ws` locally, the WebSocket
    /// API's `wss://…/STAGE` URL on AWS.
    pub ws_url: String,
    /// Backpressure on new runs (429 + `Retry-After`); `None`: every request is admitted.
    pub admission: Option<Arc<dyn crate::ports::Admission>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

/// The routes of ARCHITECTURE.md (all but the WebSocket, which each deployment serves
/// its own way).
pub fn router(state: ApiState) -> Router {
    // The page is the same for every request: rendered once, shared as `Bytes`.
    let page = Bytes::from(dashboard_page(&state.ws_url));
    Router::new()
        .route("/campaigns", post(create).get(list))
        .route("/campaigns/{run_id}", get(get_run))
        .route("/campaigns/{run_id}/events", get(events))
        .route("/campaigns/{run_id}/cancel", post(cancel))
        .route("/campaigns/{run_id}/retry", post(retry))
        .route("/brands", post(create_brand).get(list_brands))
        .route(
            "/brands/{brand_id}",
            get(get_brand).put(replace_brand).delete(delete_brand),
        )
        .route(
            "/",
            get(move || async move { asset(page.clone(), "text/html; charset=utf-8") }),
        )
        .route(
            "/dashboard/app.js",
            get(|| async { asset(DASHBOARD_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/dashboard/app.css",
            get(|| async { asset(DASHBOARD_CSS, "text/css; charset=utf-8") }),
        )
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async {
            problem(
                StatusCode::NOT_FOUND,
                "Not Found",
                "no such route; see /openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(READ_LIMIT))
        .with_state(state)
}

/// The dashboard: one page, its script and its style, embedded in the binary (no build
/// step, nothing fetched from elsewhere at run time).
const DASHBOARD_HTML: &str = include_str!("dashboard/index.html");
const DASHBOARD_JS: &str = include_str!("dashboard/app.js");
const DASHBOARD_CSS: &str = include_str!("dashboard/app.css");

/// What the dashboard's responses allow: scripts and styles from this origin only (no
/// inline script, no eval), images from here or `data:` (the SVG previews), connections to
/// the API and a WebSocket, no plugins, no framing, no form posts elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A dashboard response with the security headers.
fn asset(body: impl Into<axum::body::Body>, content_type: &'static str) -> Response {
    let mut r = body.into().into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The page, told where this deployment's WebSocket is (`/ws` locally, the WebSocket
/// API's URL on AWS).
fn dashboard_page(ws_url: &str) -> String {
    let escaped = ws_url
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    DASHBOARD_HTML.replace("__WS_URL__", &escaped)
}

/// An RFC 9457 problem response.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    title: &'static str,
    detail: String,
    errors: Option<Value>,
    /// Seconds for `Retry-After` (503 and 429; default [`RETRY_AFTER_SECS`]).
    retry_after: Option<u64>,
}

pub fn problem(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Problem {
    Problem {
        status,
        title,
        detail: detail.into(),
        errors: None,
        retry_after: None,
    }
}

impl From<crate::ports::Busy> for Problem {
    fn from(b: crate::ports::Busy) -> Self {
        Problem {
            retry_after: Some(b.retry_after.as_secs_f64().ceil().max(1.0) as u64),
            ..problem(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests", b.reason)
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(errors) = self.errors {
            body["errors"] = errors;
        }
        let mut r = (self.status, Json(body)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        ) {
            // Worth trying again shortly: the store or the workflow service was unavailable,
            // or a limit was reached.
            let secs = match self.retry_after {
                Some(n) => HeaderValue::from(n),
                None => HeaderValue::from_static(RETRY_AFTER_SECS),
            };
            r.headers_mut().insert(header::RETRY_AFTER, secs);
        }
        r
    }
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound(id) => problem(
                StatusCode::NOT_FOUND,
                "Run not found",
                format!("no run with id {id}"),
            ),
            AppError::Missing(m) => problem(StatusCode::NOT_FOUND, "Not Found", m),
            AppError::Conflict(m) => problem(StatusCode::CONFLICT, "Conflict", m),
            AppError::Invalid(m) => problem(StatusCode::BAD_REQUEST, "Bad Request", m),
            AppError::Unavailable(cause) => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                chain(&*cause),
            ),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        AppError::from(e).into()
    }
}

impl From<BriefError> for Problem {
    fn from(e: BriefError) -> Self {
        match e {
            BriefError::TooLarge { .. } => problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Brief too large",
                e.to_string(),
            ),
            BriefError::Malformed(m) => problem(StatusCode::BAD_REQUEST, "Malformed JSON", m),
            BriefError::Invalid(v) => Problem {
                retry_after: None,
                status: StatusCode::BAD_REQUEST,
                title: "Invalid brief",
                detail: format!("the brief has {} problem(s)", v.len()),
                errors: Some(json!(v)),
            },
        }
    }
}

fn parse_run_id(raw: &str) -> Result<RunId, Problem> {
    RunId::parse(raw)
        .map_err(|e| problem(StatusCode::BAD_REQUEST, "Malformed run id", e.to_string()))
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Brief too large",
                format!(
                    "request body exceeds {} KiB; a brief is at most 64 KiB and its free-text fields at most 500 characters each",
                    READ_LIMIT / 1024
                ),
            )
        } else {
            problem(StatusCode::BAD_REQUEST, "Unreadable body", e.body_text())
        }
    })
}

fn accepted(run_id: RunId, ws_url: &str) -> Response {
    accepted_with(run_id, ws_url, &[])
}

/// The 202 of a new run, listing the free-text fields that were truncated, if any.
fn accepted_with(run_id: RunId, ws_url: &str, truncations: &[Truncation]) -> Response {
    let base = format!("/campaigns/{run_id}");
    let mut body = json!({
        "runId": run_id,
        "status": "queued",
        "links": {
            "self": base,
            "events": format!("{base}/events"),
            "cancel": format!("{base}/cancel"),
            "retry": format!("{base}/retry"),
            "ws": ws_url,
        }
    });
    if !truncations.is_empty() {
        body["truncations"] = json!(truncations);
    }
    let mut r = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&base) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Who is asking, as the deployment knows it (on AWS: the JWT's subject or the IAM caller,
/// else the source IP, from API Gateway's request context). A request extension; when
/// absent, [`client_key`] derives one from the request.
#[derive(Debug, Clone)]
pub struct ClientKey(pub String);

/// Who is asking, for the per-client rate: the bearer token's holder when there is one,
/// else the peer's address.
fn client_key(headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> String {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        use std::hash::Hasher;
        let mut h = fnv::FnvHasher::default();
        h.write(auth.as_bytes());
        return format!("auth:{:016x}", h.finish());
    }
    match peer {
        Some(addr) => format!("ip:{}", addr.ip()),
        None => "anonymous".into(),
    }
}

/// Admits a new run, or the 429 that says why not and when to come back. The guard is held
/// until the run's execution has started.
async fn admit(
    s: &ApiState,
    headers: &HeaderMap,
    peer: Peer,
    known: Option<axum::Extension<ClientKey>>,
) -> Result<Option<crate::ports::AdmissionGuard>, Problem> {
    match &s.admission {
        None => Ok(None),
        Some(a) => {
            let key = match known {
                Some(axum::Extension(k)) => k.0,
                None => client_key(headers, peer.map(|p| (p.0).0)),
            };
            Ok(Some(a.admit(&key).await?))
        }
    }
}

/// The peer's address when the server knows it (`campaign serve`; not behind lambda_http).
type Peer = Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateQuery {
    oversize: Option<String>,
}

async fn create(
    State(s): State<ApiState>,
    peer: Peer,
    known: Option<axum::Extension<ClientKey>>,
    headers: HeaderMap,
    q: Result<Query<CreateQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let Query(q) = q.map_err(|e| {
        problem(
            StatusCode::BAD_REQUEST,
            "Bad query",
            format!("{e}; allowed: oversize (reject | truncate)"),
        )
    })?;
    let oversize: Oversize = match q.oversize.as_deref() {
        None => Oversize::Reject,
        Some(o) => o
            .parse()
            .map_err(|e: String| problem(StatusCode::BAD_REQUEST, "Bad query", e))?,
    };
    let body = body_bytes(body)?;
    // A request that cannot succeed never claims its key.
    let (brief, truncations) = Brief::parse_with(&body, oversize)?;
    let scope = match oversize {
        Oversize::Reject => "campaigns",
        Oversize::Truncate => "campaigns?oversize=truncate",
    };
    let _admitted = admit(&s, &headers, peer, known).await?;
    let id = match idempotent(&s, &headers, scope, &body).await? {
        Some(claim) => usecases::submit_as(&s.deps, claim.run_id, brief, None).await?,
        None => usecases::submit(&s.deps, brief, None).await?,
    };
    Ok(accepted_with(id, &s.ws_url, &truncations))
}

/// Header of an idempotent POST (`POST /campaigns`, `POST …/retry`).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_TTL: time::Duration = time::Duration::hours(24);

/// With an `Idempotency-Key`: the key's claim, whose run id the request must create (the
/// same one again for a repeated request — creating it is idempotent, so a first attempt
/// that died half-way is completed, and a finished one answered as it was). The same key
/// with another request is refused with 422. Without the header: `None` (every request is
/// new; duplicate briefs make separate runs).
async fn idempotent(
    s: &ApiState,
    headers: &HeaderMap,
    scope: &str,
    body: &[u8],
) -> Result<Option<crate::ports::KeyClaim>, Problem> {
    let Some(raw) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            problem(
                StatusCode::BAD_REQUEST,
                "Bad Idempotency-Key",
                "Idempotency-Key must be 1–255 visible ASCII characters (a UUID is a good choice)",
            )
        })?;
    let fingerprint = {
        use std::hash::Hasher;
        let mut h = fnv::FnvHasher::default();
        h.write(scope.as_bytes());
        h.write(&[0]);
        h.write(body);
        format!("{:016x}", h.finish())
    };
    let now = s.deps.clock.now();
    let claim = s
        .deps
        .keys
        .claim_key(
            &format!("http:{scope}:{key}"),
            &fingerprint,
            RunId::new(),
            now,
            now + IDEMPOTENCY_TTL,
        )
        .await
        .map_err(AppError::from)?;
    if claim.fingerprint != fingerprint {
        return Err(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Idempotency-Key reused",
            format!(
                "the Idempotency-Key `{key}` was used for a different request (run {}); use a new key for a new request",
                claim.run_id
            ),
        ));
    }
    Ok(Some(claim))
}

// ------------------------------------------------------------------------- brand library

fn brand_problem(e: BriefError) -> Problem {
    match Problem::from(e) {
        p if p.title == "Invalid brief" => Problem {
            title: "Invalid brand kit",
            detail: p.detail.replace("the brief has", "the brand kit has"),
            ..p
        },
        p if p.title == "Brief too large" => Problem {
            title: "Brand kit too large",
            ..p
        },
        p => p,
    }
}

fn check_brand_path(id: &str) -> Result<(), Problem> {
    crate::domain::brand::check_id(id)
        .map_err(|m| problem(StatusCode::BAD_REQUEST, "Malformed brand id", m))
}

/// A kit with its version as the `ETag`.
fn brand_response(status: StatusCode, kit: &BrandKit) -> Response {
    let mut r = (status, Json(kit)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", kit.version)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED
        && let Ok(v) = HeaderValue::from_str(&format!("/brands/{}", kit.brand_id))
    {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

async fn create_brand(
    State(s): State<ApiState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = body_bytes(body)?;
    let input = BrandInput::parse(&body).map_err(brand_problem)?;
    let kit = usecases::create_brand(&s.deps, input).await?;
    Ok(brand_response(StatusCode::CREATED, &kit))
}

async fn list_brands(State(s): State<ApiState>) -> Result<Response, Problem> {
    let kits = s.deps.brands.list_brands().await?;
    Ok(Json(json!({ "brands": kits })).into_response())
}

async fn get_brand(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Response, Problem> {
    check_brand_path(&id)?;
    match s.deps.brands.get_brand(&id).await? {
        Some(kit) => Ok(brand_response(StatusCode::OK, &kit)),
        None => Err(AppError::Missing(format!("no brand kit `{id}`")).into()),
    }
}

async fn replace_brand(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    check_brand_path(&id)?;
    let body = body_bytes(body)?;
    let input = BrandInput::parse(&body).map_err(brand_problem)?;
    let kit = usecases::replace_brand(&s.deps, &id, input).await?;
    Ok(brand_response(StatusCode::OK, &kit))
}

async fn delete_brand(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    check_brand_path(&id)?;
    s.deps
        .brands
        .delete_brand(&id)
        .await
        .map_err(AppError::from)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
    status: Option<String>,
}

async fn list(
    State(s): State<ApiState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(q) = q.map_err(|e| {
        problem(
            StatusCode::BAD_REQUEST,
            "Bad query",
            format!("{e}; allowed: limit (1–100), cursor, status"),
        )
    })?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "Bad query",
            format!("limit is {limit}; allowed: 1–100"),
        ));
    }
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(st) => Some(st.parse::<Status>().map_err(|e| {
            problem(
                StatusCode::BAD_REQUEST,
                "Bad query",
                format!(
                    "status: {e}; allowed: {}",
                    Status::ALL.map(Status::as_str).join(", ")
                ),
            )
        })?),
    };
    let page = s
        .deps
        .store
        .list_runs(limit, q.cursor.as_deref(), status)
        .await?;
    Ok(Json(json!({ "runs": page.runs, "nextCursor": page.next_cursor })).into_response())
}

/// The run, with an `ETag` of its representation: a client polling with `If-None-Match`
/// gets `304 Not Modified` until something changed.
async fn get_run(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let run = s.deps.store.get_run(parse_run_id(&id)?).await?;
    let body = serde_json::to_vec(&run).map_err(|e| {
        problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            e.to_string(),
        )
    })?;
    let etag = entity_tag(&body);
    let cache = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, "no-cache".to_string()),
    ];
    if none_match(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    Ok((
        StatusCode::OK,
        cache,
        [(header::CONTENT_TYPE, "application/json".to_string())],
        body,
    )
        .into_response())
}

/// A strong entity tag of a representation (FNV-1a 64 of its bytes).
fn entity_tag(body: &[u8]) -> String {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(body);
    format!("\"{:016x}\"", h.finish())
}

/// `If-None-Match` (RFC 9110 §13.1.2, weak comparison): `*` or a listed tag matches.
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    after: Option<u64>,
}

async fn events(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let id = parse_run_id(&id)?;
    let Query(q) = q.map_err(|e| {
        problem(
            StatusCode::BAD_REQUEST,
            "Bad query",
            format!("{e}; allowed: after (a seq, ≥ 0)"),
        )
    })?;
    // A reconnecting EventSource sends the id (the seq) of the last event it received.
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    problem(
                        StatusCode::BAD_REQUEST,
                        "Bad Last-Event-ID",
                        "Last-Event-ID must be the seq of an event (a whole number)",
                    )
                })?,
        ),
    };
    let after = last_event_id.or(q.after).unwrap_or(0);
    let wants_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if wants_sse {
        // Refuse an unknown run up front rather than opening an empty stream.
        s.deps.store.get_run(id).await?;
        let Some(live) = &s.live else {
            return Err(problem(
                StatusCode::NOT_ACCEPTABLE,
                "Not Acceptable",
                "this deployment does not stream events over SSE; use the WebSocket API or poll with ?after=",
            ));
        };
        let rx = live.subscribe(id, after);
        let stream = ReceiverStream::new(rx).map(|e| {
            SseEvent::default()
                .id(e.seq.to_string())
                .event(match e.kind {
                    crate::domain::EventType::RunStatus => "run.status",
                    crate::domain::EventType::AgentStatus => "agent.status",
                })
                .json_data(&e)
        });
        return Ok(Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let events = s.deps.store.events(id, after).await?;
    let next_after = events.last().map(|e| e.seq).unwrap_or(after);
    Ok(Json(json!({ "events": events, "nextAfter": next_after })).into_response())
}

async fn cancel(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Response, Problem> {
    let run = usecases::cancel(&s.deps, parse_run_id(&id)?).await?;
    Ok(Json(run).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    agents: Option<Vec<Agent>>,
}

async fn retry(
    State(s): State<ApiState>,
    peer: Peer,
    known: Option<axum::Extension<ClientKey>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let id = parse_run_id(&id)?;
    let body = body_bytes(body)?;
    let agents = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<RetryBody>(&body)
            .map_err(|e| {
                problem(
                    StatusCode::BAD_REQUEST,
                    "Bad retry request",
                    format!("{e}; expected an empty body or {{\"agents\": [\"copy\"|\"social\"|\"visual\", …]}}"),
                )
            })?
            .agents
    };
    let _admitted = admit(&s, &headers, peer, known).await?;
    let new_id = match idempotent(&s, &headers, &format!("retry:{id}"), &body).await? {
        Some(claim) => usecases::retry_as(&s.deps, id, agents, claim.run_id).await?,
        None => usecases::retry(&s.deps, id, agents).await?,
    };
    Ok(accepted(new_id, &s.ws_url))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_and_throttled_answers_say_when_to_retry() {
        for status in [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::TOO_MANY_REQUESTS,
        ] {
            let r = problem(status, "Busy", "later").into_response();
            assert_eq!(r.headers()[header::RETRY_AFTER], RETRY_AFTER_SECS);
        }
        let r = problem(StatusCode::CONFLICT, "Conflict", "no").into_response();
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_a_star() {
        let tag = entity_tag(b"{}");
        let mut h = HeaderMap::new();
        assert!(!none_match(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&h, &tag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{tag}")).unwrap(),
        );
        assert!(none_match(&h, &tag));
        assert_ne!(entity_tag(b"{}"), entity_tag(b"{ }"));
    }
}
