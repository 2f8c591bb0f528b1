//! The HTTP server: viewer page, WHEP, `/snapshot.jpg`, `/healthz`, `/metrics` (the HTTP contract
//! in ARCHITECTURE.md).
//!
//! [`serve`]`(listener, app, opts, shutdown)` (in [`server`]) in the mini-redis shape: the caller
//! binds (tests use `127.0.0.1:0`); connections are capped (total and per address) and timed
//! (headers, idle), optionally over TLS ([`tls`]); every refusal is a 4xx/5xx with a plain-text
//! reason the operator can act on.
//!
//! WHEP requests are checked in order of cost: the bearer token (constant time, before the body
//! is read), the per-address offer rate ([`limit`]), the content type, then the body, read within
//! `http.body_timeout_ms` and `http.max_body_bytes`. Browsers may call WHEP from the node's own
//! page or from the origins in `http.cors_origins`; any other `Origin` is refused with 403.

pub mod limit;
pub mod metrics;
pub mod server;
pub mod tls;

pub use server::{ServeOptions, serve};
pub use tls::{Tls, TlsError};

use crate::stats::Stats;
use crate::webrtc::whep::{SessionError, Viewers};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use subtle::ConstantTimeEq;

const PAGE: &str = include_str!("page.html");

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Viewer sessions.
    pub viewers: Arc<Viewers>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// The media switches (`stream stop` shows as `paused`).
    pub control: Arc<crate::media::control::MediaControl>,
    /// WHIP publishing figures and the encoder's bitrate target.
    pub publish: Arc<crate::webrtc::whip::PublishStats>,
    /// Bearer token required on WHEP, if any (a reload may change it).
    pub token: Arc<std::sync::RwLock<Option<String>>>,
    /// Packets dropped for slow viewers.
    pub fanout: Arc<crate::media::SharedFanout>,
    /// Request limits and the CORS allow-list.
    pub limits: Arc<Limits>,
    /// The per-address offer rate limit.
    pub offers: Arc<limit::OfferLimiter>,
    /// `/snapshot.jpg`: the frame request, the JPEG encode and its cache (shared with the
    /// control socket's `snapshot`).
    pub snapshots: Arc<crate::media::snapshot::Snapshots>,
}

/// The request limits of `[http]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body.
    pub max_body: usize,
    /// Time allowed for a request body.
    pub body_timeout: Duration,
    /// Origins (`scheme://host[:port]`) allowed besides the node's own.
    pub cors_origins: Vec<String>,
}

impl Limits {
    /// The limits of `cfg`.
    pub fn from_config(cfg: &crate::config::HttpConfig) -> Self {
        Self {
            max_body: cfg.max_body_bytes,
            body_timeout: Duration::from_millis(cfg.body_timeout_ms),
            cors_origins: cfg.cors_origins.clone(),
        }
    }
}

/// Builds the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/snapshot.jpg", get(snapshot))
        .route("/whep", post(whep_post).options(preflight))
        .route(
            "/whep/{id}",
            axum::routing::delete(whep_delete)
                .options(preflight)
                .patch(whep_patch),
        )
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors))
        .with_state(state)
}

/// Whether a browser page from `origin` may call this node: its own origin (the `Host` it was
/// reached at) or one listed in `http.cors_origins`.
fn origin_allowed(origin: &str, host: Option<&str>, allowed: &[String]) -> bool {
    let own = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|h| host.is_some_and(|host| h.eq_ignore_ascii_case(host)));
    own || allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// CORS for every route: requests without `Origin` (curl, aiortc, ffmpeg) pass untouched; a
/// browser request from an allowed origin gets `Access-Control-Allow-Origin` naming it; one from
/// any other origin is refused with 403 unless it is a plain GET (which then gets no CORS header,
/// so the foreign page cannot read the answer).
async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(origin) = origin else {
        return next.run(req).await;
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    if !origin_allowed(&origin, host, &state.limits.cors_origins) {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            return next.run(req).await;
        }
        return text(
            StatusCode::FORBIDDEN,
            format!(
                "origin {origin} may not call this node: add it to http.cors_origins \
                 (the node's own page needs nothing)"
            ),
        );
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location"),
    );
    resp
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut body = msg.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn preflight() -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    h.insert("Accept-Post", HeaderValue::from_static("application/sdp"));
    resp
}

fn authorized(state: &AppState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let token = state
        .token
        .read()
        .map(|t| t.clone())
        .unwrap_or_else(|p| p.into_inner().clone());
    let Some(token) = token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| token_matches(g, &token)) {
        return Ok(());
    }
    let mut resp = text(
        StatusCode::UNAUTHORIZED,
        if given.is_some() {
            "wrong bearer token"
        } else {
            "this node needs a bearer token: send Authorization: Bearer <token>"
        },
    );
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Err(Box::new(resp))
}

/// Compares a presented token with the node's in constant time. Both are hashed first, so the
/// comparison time does not even depend on their lengths.
fn token_matches(given: &str, token: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(token.as_bytes()),
    );
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

async fn whep_post(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    if let Err(resp) = authorized(&state, headers) {
        return *resp;
    }
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>()
        && let Err(wait) = state.offers.check(peer.ip(), std::time::Instant::now())
    {
        state
            .stats
            .offers_rate_limited
            .fetch_add(1, Ordering::Relaxed);
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut resp = text(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many offers from {}: at most {} per second (http.offers_per_s); retry in \
                 {secs} s",
                peer.ip(),
                state.offers.per_second()
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ctype.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/sdp") {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type must be application/sdp (got `{}`): POST the SDP offer as the body",
                if ctype.is_empty() { "none" } else { ctype }
            ),
        );
    }
    let body = match read_body(&state.limits, headers, body).await {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let Ok(sdp) = String::from_utf8(body.to_vec()) else {
        return text(StatusCode::BAD_REQUEST, "the SDP offer is not UTF-8 text");
    };
    if !sdp.trim_start().starts_with("v=0") {
        return text(
            StatusCode::BAD_REQUEST,
            "the body is not an SDP offer (it must start with v=0)",
        );
    }
    match state.viewers.offer(sdp).await {
        Ok((id, answer)) => {
            let mut resp = (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/sdp")],
                answer,
            )
                .into_response();
            if let Ok(loc) = HeaderValue::from_str(&format!("/whep/{id}")) {
                resp.headers_mut().insert(header::LOCATION, loc);
            }
            resp
        }
        Err(SessionError::BadOffer(m)) => text(StatusCode::BAD_REQUEST, m),
        Err(e @ SessionError::Full(_)) => {
            let mut resp = text(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
            resp
        }
        Err(e @ SessionError::Busy(_)) => {
            let mut resp = text(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
        Err(SessionError::Internal(m)) => {
            tracing::error!(error = %m, "WHEP session failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, m)
        }
    }
}

/// Reads a request body within `limits` (size and time); the error is the answer to send.
async fn read_body(
    limits: &Limits,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, Box<Response>> {
    let too_large = || {
        Box::new(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the offer is larger than this node accepts ({} bytes, http.max_body_bytes)",
                limits.max_body
            ),
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(
        limits.body_timeout,
        axum::body::to_bytes(body, limits.max_body),
    )
    .await
    {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) if is_length_limit(&e) => Err(too_large()),
        Ok(Err(e)) => Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            format!("cannot read the body: {e}"),
        ))),
        Err(_) => Err(Box::new(text(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} ms (http.body_timeout_ms)",
                limits.body_timeout.as_millis()
            ),
        ))),
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = src {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        src = err.source();
    }
    false
}

async fn whep_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(resp) = authorized(&state, &headers) {
        return *resp;
    }
    if state.viewers.end(&id).await {
        StatusCode::OK.into_response()
    } else {
        text(StatusCode::NOT_FOUND, format!("no session {id}"))
    }
}

/// `GET /snapshot.jpg`: the latest picture, behind the same token as WHEP (it shows the picture).
/// Encoded on demand and cached for `http.snapshot_interval_ms` ([`crate::media::snapshot`]).
async fn snapshot(State(state): State<AppState>, headers: HeaderMap) -> Response {
    use crate::media::snapshot::SnapshotError;
    if let Err(resp) = authorized(&state, &headers) {
        return *resp;
    }
    if let Some(why) = crate::webrtc::relay::no_picture(&state.stats) {
        return text(StatusCode::NOT_IMPLEMENTED, why);
    }
    match state.snapshots.get(None).await {
        Ok(jpeg) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            Body::from(jpeg.bytes.clone()),
        )
            .into_response(),
        Err(e @ SnapshotError::NoFrame) => {
            let mut resp = text(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
        Err(e @ SnapshotError::Encode(_)) => {
            tracing::error!(error = %e, "snapshot failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

async fn whep_patch() -> Response {
    let mut resp = text(
        StatusCode::METHOD_NOT_ALLOWED,
        "trickle ICE is not needed: the answer carries every candidate",
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("DELETE, OPTIONS"));
    resp
}

async fn healthz(State(state): State<AppState>) -> Response {
    let s = &state.stats;
    let src = s.source();
    let since = s.since_last_frame();
    let status = match since {
        Some(d) if d.as_secs_f64() < 2.0 => "ok",
        Some(_) => "stalled",
        None => "starting",
    };
    // Frames flow but the camera is away: they are the "no signal" slate.
    let status = if status == "ok" && src.state != "running" {
        "no_signal"
    } else {
        status
    };
    // `sutantra stream stop`: no frames on purpose, which is not a stall.
    let status = if state.control.paused() {
        "paused"
    } else {
        status
    };
    let body = serde_json::json!({
        "status": status,
        "source": src.spec,
        "source_detail": src.description,
        "source_state": src.state,
        "width": src.width,
        "height": src.height,
        "fps": (s.fps() * 10.0).round() / 10.0,
        "fps_target": src.fps_target,
        "viewers": s.viewers.load(Ordering::Relaxed),
        "sessions": state.viewers.count(),
        // A relay's upstream (`whep:` source): state, RTT, loss; null for a camera.
        "upstream": s.upstream.json(),
        "viewers_max": state.viewers.max_viewers(),
        "frames_sent": s.frames_sent.load(Ordering::Relaxed),
        "frames_dropped": s.pool_dropped.load(Ordering::Relaxed),
        "packets_dropped": state.fanout.dropped(),
        "uptime_s": s.uptime().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
        "chain_height": s.chain.height(),
        "chain_halted": s.chain.halted.load(Ordering::Relaxed),
        "chain_error": s.chain.last_error(),
        "outbox_depth": s.chain.outbox_depth.load(Ordering::Relaxed),
        "stream_paused": state.control.paused(),
    });
    let code = if status == "stalled" || status == "no_signal" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state of a node whose encode thread is stood in for by the test.
    fn state(token: Option<&str>) -> AppState {
        let stats = Arc::new(Stats::new());
        let control = Arc::new(crate::media::control::MediaControl::default());
        let fanout = Arc::new(crate::media::SharedFanout::new(2, 16).expect("fan-out"));
        let cfg = crate::config::Config::default();
        AppState {
            viewers: Arc::new(Viewers::new(
                cfg.webrtc.clone(),
                fanout.clone(),
                stats.clone(),
            )),
            stats: stats.clone(),
            control: control.clone(),
            publish: Arc::new(crate::webrtc::whip::PublishStats::new(control.clone())),
            token: Arc::new(std::sync::RwLock::new(token.map(str::to_string))),
            fanout,
            limits: Arc::new(Limits::from_config(&cfg.http)),
            offers: Arc::new(limit::OfferLimiter::new(2, 8)),
            snapshots: Arc::new(
                crate::media::snapshot::Snapshots::new(control, stats, 80, Duration::from_secs(1))
                    .with_frame_wait(Duration::from_millis(100)),
            ),
        }
    }

    async fn get(state: &AppState, auth: Option<&str>) -> Response {
        use tower::ServiceExt as _;
        let mut req = Request::builder().uri("/snapshot.jpg");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        router(state.clone())
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    #[tokio::test]
    async fn snapshot_is_503_before_the_first_frame_then_a_jpeg_behind_the_token() {
        let state = state(Some("t0k"));
        let resp = get(&state, None).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(state.stats.snapshot_requests.load(Ordering::Relaxed), 0);
        // No frame: 503, Retry-After: 1, a plain-text reason.
        let resp = get(&state, Some("Bearer t0k")).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        assert!(
            resp.headers()[header::CONTENT_TYPE]
                .to_str()
                .is_ok_and(|t| t.starts_with("text/plain"))
        );
        let body = axum::body::to_bytes(resp.into_body(), 4096)
            .await
            .expect("body");
        assert!(String::from_utf8_lossy(&body).contains("no frame yet"));
        // The encode thread offers frames: a JPEG.
        let (control, stop) = (
            state.control.clone(),
            Arc::new(std::sync::atomic::AtomicBool::new(false)),
        );
        let feeding = stop.clone();
        let feeder = std::thread::spawn(move || {
            let frame = sutantra_hal::I420Frame::new(160, 120);
            while !feeding.load(Ordering::Relaxed) {
                control.snapshot.offer(&frame);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let resp = get(&state, Some("Bearer t0k")).await;
        stop.store(true, Ordering::Relaxed);
        feeder.join().expect("feeder");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "image/jpeg");
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        let mut d = jpeg_decoder::Decoder::new(&body[..]);
        d.decode().expect("a JPEG");
        let info = d.info().expect("info");
        assert_eq!((info.width, info.height), (160, 120));
    }

    #[test]
    fn tokens_compare_by_value() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cre", "s3cret"));
        assert!(!token_matches("s3cret ", "s3cret"));
        assert!(!token_matches("", "s3cret"));
    }

    #[test]
    fn own_origin_and_listed_origins_are_allowed() {
        let listed = vec!["https://viewer.example".to_string()];
        assert!(origin_allowed("http://board:8080", Some("board:8080"), &[]));
        assert!(origin_allowed(
            "https://BOARD:8443",
            Some("board:8443"),
            &[]
        ));
        assert!(!origin_allowed("http://evil:8080", Some("board:8080"), &[]));
        assert!(!origin_allowed("null", Some("board:8080"), &[]));
        assert!(!origin_allowed("http://board:8080", None, &[]));
        assert!(origin_allowed(
            "https://viewer.example",
            Some("board"),
            &listed
        ));
        assert!(!origin_allowed(
            "https://viewer.example.evil",
            Some("board"),
            &listed
        ));
    }
}
