//! The HTTP server: viewer page, WHEP, `/healthz`, `/metrics` (the HTTP contract in ARCHITECTURE.md).
//!
//! `serve(listener, state, shutdown)` in the mini-redis shape: the caller binds (tests use
//! `127.0.0.1:0`), requests in flight are bounded, and every refusal is a 4xx/5xx with a
//! plain-text reason the operator can act on.

pub mod metrics;

use crate::stats::Stats;
use crate::webrtc::whep::{SessionError, Viewers};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
}

/// Builds the router; `max_body` bounds request bodies, `max_in_flight` concurrent requests.
pub fn router(state: AppState, max_body: usize, max_in_flight: usize) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/whep", post(whep_post).options(preflight))
        .route(
            "/whep/{id}",
            axum::routing::delete(whep_delete)
                .options(preflight)
                .patch(whep_patch),
        )
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            max_in_flight,
        ))
        .with_state(state)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

fn cors(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location"),
    );
    resp
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut body = msg.into();
    body.push('\n');
    cors(
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response(),
    )
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
    cors(resp)
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
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn whep_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    if let Err(resp) = authorized(&state, &headers) {
        return *resp;
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
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the offer is larger than this node accepts (http.max_body_bytes)",
            );
        }
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}"),
            );
        }
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
            cors(resp)
        }
        Err(SessionError::BadOffer(m)) => text(StatusCode::BAD_REQUEST, m),
        Err(e @ SessionError::Full(_)) => {
            let mut resp = text(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
            resp
        }
        Err(SessionError::Internal(m)) => {
            tracing::error!(error = %m, "WHEP session failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, m)
        }
    }
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
        cors(StatusCode::OK.into_response())
    } else {
        text(StatusCode::NOT_FOUND, format!("no session {id}"))
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
    cors((code, axum::Json(body)).into_response())
}
