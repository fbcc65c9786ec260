//! Demo mode (`Config::demo`): the chat page at `/demo`, built from `web/demo` into `web/demo/dist` and
//! embedded in the binary, and `POST /demo/usersig`, which hands a UserSig for any user but the app's
//! admins to anyone who asks. Off, every path under `/demo` is 404 ([`closed`]).
//!
//! The page is the files of `web/demo/dist`, committed, so building the server needs no npm; `npm run
//! check` in `web/demo` rebuilds them and fails if they differ from the committed ones.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use duet_core::Core;
use duet_proto::demo::{PATH, Refusal, USERSIG_PATH, UserSigAnswer, UserSigRequest};

use crate::throttle::Throttle;

/// How long a demo UserSig is valid: a day, enough for a session; the page asks again after a reload.
const EXPIRE_SECS: i64 = 86_400;

/// The page's policy: everything from this server only; the WebSocket (`ws:`/`wss:`, which `'self'`
/// does not cover in every browser); images also as `data:` and `blob:` (previews of a picked file).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   media-src 'self' blob:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// One embedded file of the page.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! dist {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/demo/dist/", $name))
    };
}

/// The page's files: `web/demo/dist`, a fixed list (`web/demo/build.mjs` writes exactly these).
const ASSETS: &[Asset] = &[
    Asset { name: "index.html", content_type: "text/html; charset=utf-8", body: dist!("index.html") },
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: dist!("app.js") },
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", body: dist!("app.css") },
];

#[derive(Clone)]
struct DemoState {
    core: Arc<Core>,
    throttle: Arc<Throttle>,
    /// The app's SDKAppID and secret key, which demo UserSigs are signed with.
    sdkappid: u64,
    secret_key: Arc<str>,
}

/// `/demo`, `/demo/`, `/demo/<file>` and `POST /demo/usersig`; any other path under `/demo` is 404.
pub(crate) fn router(core: Arc<Core>, throttle: Arc<Throttle>, sdkappid: u64, secret_key: &str) -> Router {
    Router::new()
        .route(PATH, axum::routing::get(page))
        .route(&format!("{PATH}/"), axum::routing::get(page))
        .route(USERSIG_PATH, axum::routing::post(usersig))
        .route(&format!("{PATH}/{{*file}}"), axum::routing::get(file))
        .with_state(DemoState { core, throttle, sdkappid, secret_key: secret_key.into() })
}

/// Demo mode off: every path under `/demo` is 404 (rather than the REST API's answer to an unknown path).
pub(crate) fn closed() -> Router {
    let gone = || axum::routing::any(|| async { StatusCode::NOT_FOUND });
    Router::new().route(PATH, gone()).route(&format!("{PATH}/"), gone()).route(&format!("{PATH}/{{*path}}"), gone())
}

async fn page() -> Response {
    serve(&ASSETS[0])
}

async fn file(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => serve(asset),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn serve(asset: &Asset) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            // A new binary may bring a new page: always revalidate.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        asset.body,
    )
        .into_response()
}

async fn usersig(
    State(s): State<DemoState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let refuse = |status: StatusCode, error: String| {
        let body = serde_json::to_vec(&Refusal { error }).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))], body)
            .into_response()
    };
    if let Err(wait) = s.throttle.demo_usersig(peer.ip()) {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return refuse(StatusCode::TOO_MANY_REQUESTS, format!("too many UserSigs asked for; retry in {secs} s"));
    }
    let Ok(body) = body else {
        return refuse(StatusCode::BAD_REQUEST, "the request's body could not be read".into());
    };
    let request: UserSigRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "expected {\"userID\": \"...\"}".into()),
    };
    let user = request.user_id;
    if let Err(why) = duet_proto::rest::validate_user_id(&user) {
        return refuse(StatusCode::BAD_REQUEST, why);
    }
    if s.core.accounts().is_admin(&user) {
        return refuse(StatusCode::FORBIDDEN, format!("{user:?} is an app admin: demo mode gives no admin UserSigs"));
    }
    let sig =
        duet_core::usersig::generate(&s.secret_key, s.sdkappid, &user, s.core.clock().now_secs(), EXPIRE_SECS, None);
    tracing::info!(user = %user, peer = %peer.ip(), "demo mode handed out a UserSig");
    let answer = UserSigAnswer { sdkappid: s.sdkappid, user_id: user, user_sig: sig, expire_secs: EXPIRE_SECS };
    let body = serde_json::to_vec(&answer).unwrap_or_default();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))], body).into_response()
}
