//! The Tencent-compatible REST API: `/v4/<service>/<command>?sdkappid=&identifier=&usersig=...`.
//!
//! Every request, whatever its path, method or body, is answered with HTTP 200 and a JSON body carrying
//! `ActionStatus`, `ErrorCode` and `ErrorInfo`, as Tencent's gateway does. The pipeline:
//! resolve the command → check `sdkappid` → verify the admin's UserSig → parse the body as JSON
//! (whatever the Content-Type) → run the command ([`run`]).
//!
//! One module per Tencent service, named after its path, with one `async fn` per command (parse the
//! typed request, call the domain, shape Tencent's reply): [`login`] (`im_open_login_svc`), [`profile`],
//! [`openim`], [`recentcontact`], [`sns`], [`msgsvc`] (`open_msg_svc`), [`openconfigsvr`] (the global
//! mute). [`error`] maps domain and authentication errors to Tencent's
//! codes, in one place.

mod duet;
pub(crate) mod error;
mod login;
mod msgsvc;
mod openconfigsvr;
mod openim;
mod profile;
mod recentcontact;
mod sns;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use duet_core::Core;
use duet_proto::rest::response::Reply;
use duet_proto::rest::{AuthParams, Command, Service};
use duet_proto::{ApiError, code};
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

use crate::throttle::Throttle;

/// The largest request body read; bigger ones are refused before parsing.
const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone)]
struct RestState {
    core: Arc<Core>,
    /// What `duet/status` reads.
    ops: Arc<crate::ops::Ops>,
    throttle: Arc<Throttle>,
    /// Where the download URLs put in sent messages point.
    urls: crate::media::Urls,
    /// The hourly message-log files.
    msglog: Arc<crate::msglog::MsgLog>,
}

/// The REST router: every path lands in [`dispatch`], so unknown paths get Tencent's error body.
/// `media_public_url` is `[media] public_url`, the base of the download URLs put in messages; without
/// it they are built from the request's `Host`, with `https://` when `tls` (the server serves TLS).
pub(crate) fn router(
    core: Arc<Core>,
    ops: Arc<crate::ops::Ops>,
    throttle: Arc<Throttle>,
    msglog: Arc<crate::msglog::MsgLog>,
    media_public_url: Option<&str>,
    tls: bool,
) -> Router {
    let state = RestState { core, ops, throttle, urls: crate::media::Urls::new(media_public_url, tls), msglog };
    Router::new().fallback(dispatch).layer(axum::extract::DefaultBodyLimit::max(MAX_BODY)).with_state(state)
}

/// A JSON response body, always with HTTP 200.
pub(crate) struct Json(Vec<u8>);

impl Json {
    pub fn ok<T: Serialize>(body: T, service: Service) -> Json {
        Json::encode(&Reply::ok(body, service.has_error_display()))
    }

    pub fn fail(err: &ApiError, service: Option<Service>) -> Json {
        Json::encode(&Reply::fail(err, service.is_some_and(Service::has_error_display)))
    }

    /// A reply with a non-standard `ActionStatus` (batchsendmsg's `SomeError`).
    pub fn with_status<T: Serialize>(status: &'static str, body: T, service: Service) -> Json {
        let mut reply = Reply::ok(body, service.has_error_display());
        reply.action_status = status;
        Json::encode(&reply)
    }

    fn encode<T: Serialize>(reply: &T) -> Json {
        // Serializing our own reply types cannot fail: no maps with non-string keys, no failing impls.
        Json(
            serde_json::to_vec(reply).unwrap_or_else(|_| {
                br#"{"ActionStatus":"FAIL","ErrorInfo":"internal error","ErrorCode":60008}"#.to_vec()
            }),
        )
    }
}

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))], self.0).into_response()
    }
}

/// Answers one call, in a `rest` span (`request_id`, `command`, `user`: [`crate::logs`]), and logs it
/// once answered: one `info` line with its command, code, status and duration (from the body read to
/// the answer). Never the query string: it holds the UserSig.
async fn dispatch(
    State(RestState { core, ops, throttle, urls, msglog }): State<RestState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = std::time::Instant::now();
    let request_id = crate::logs::request_id(&headers);
    let resolved = resolve(uri.path());
    let params = auth_params(uri.query().unwrap_or(""));
    // The path named a command (and is then `/v4/<service>/<command>`); the identifier is a valid UserID.
    let command = resolved.is_ok().then(|| uri.path()["/v4/".len()..].trim_end_matches('/'));
    let identifier = params.identifier.as_deref().filter(|id| duet_proto::rest::validate_user_id(id).is_ok());
    let span = tracing::info_span!("rest", %request_id, command, user = identifier);
    let service = resolved.as_ref().ok().map(|&(svc, _)| svc);
    let result = async {
        let (svc, command) = resolved?;
        let caller = authenticate(&core, &throttle, peer.ip(), svc, &params)?;
        let body = body.map_err(|e| too_large(svc, &e))?;
        let body = duet_proto::rest::parse_body(svc, &body)?;
        let media_base = urls.base(&headers, &uri);
        let ctx = Ctx {
            core: &core,
            ops: &ops,
            msglog: &msglog,
            media_base: &media_base,
            caller: &caller,
            service: svc,
            command,
        };
        run(ctx, &body).await
    }
    .instrument(span.clone())
    .await;
    let (json, code) = match result {
        Ok(json) => (json, 0),
        Err(err) => {
            tracing::debug!(parent: &span, path = uri.path(), code = err.code, info = %err.info, "rest request refused");
            (Json::fail(&err, service), err.code)
        }
    };
    let mut response = json.into_response();
    crate::logs::echo_request_id(response.headers_mut(), &request_id);
    let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let status = response.status().as_u16();
    tracing::info!(%request_id, command, code, status, duration_us, identifier, "rest call");
    let name = command.unwrap_or("unknown").to_owned();
    metrics::histogram!("duet_rest_request_seconds", "command" => name.clone()).record(started.elapsed());
    metrics::counter!("duet_rest_requests_total", "command" => name, "code" => code.to_string()).increment(1);
    response
}

/// What a command's handler is given besides its body.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    core: &'a Core,
    ops: &'a crate::ops::Ops,
    msglog: &'a crate::msglog::MsgLog,
    /// The base of the download URLs put in sent messages (and of the message log's).
    media_base: &'a str,
    /// The app admin making the call (the URL's `identifier`).
    caller: &'a str,
    service: Service,
    command: Command,
}

impl Ctx<'_> {
    /// Maps a domain error to this command's wire code ([`error::core`]).
    fn fail(self) -> impl Fn(duet_core::Error) -> ApiError + Copy + use<> {
        let Ctx { command, service, .. } = self;
        move |e| error::core(command, service, e)
    }

    /// A successful reply of this command's service.
    fn ok<T: Serialize>(self, body: T) -> Result<Json, ApiError> {
        Ok(Json::ok(body, self.service))
    }
}

/// Runs a command with its handler. The match has no catch-all arm: a new [`Command`] does not compile
/// until it has a handler here.
async fn run(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    match ctx.command {
        Command::AccountImport => login::account_import(ctx, body).await,
        Command::MultiAccountImport => login::multiaccount_import(ctx, body).await,
        Command::AccountDelete => login::account_delete(ctx, body).await,
        Command::AccountCheck => login::account_check(ctx, body).await,
        Command::Kick => login::kick(ctx, body).await,
        Command::PortraitSet => profile::portrait_set(ctx, body).await,
        Command::PortraitGet => profile::portrait_get(ctx, body).await,
        Command::SendMsg => openim::sendmsg(ctx, body).await,
        Command::BatchSendMsg => openim::batchsendmsg(ctx, body).await,
        Command::ImportMsg => openim::importmsg(ctx, body).await,
        Command::AdminGetRoamMsg => openim::admin_getroammsg(ctx, body).await,
        Command::AdminMsgWithdraw => openim::admin_msgwithdraw(ctx, body).await,
        Command::AdminSetMsgRead => openim::admin_set_msg_read(ctx, body).await,
        Command::C2cMsgReadReceipt => openim::c2c_msg_read_receipt(ctx, body).await,
        Command::ModifyC2cMsg => openim::modify_c2c_msg(ctx, body).await,
        Command::DeleteC2cMsgRamble => openim::delete_c2c_msg_ramble(ctx, body).await,
        Command::GetC2cUnreadMsgNum => openim::get_c2c_unread_msg_num(ctx, body).await,
        Command::QueryOnlineStatus => openim::query_online_status(ctx, body).await,
        Command::RecentContactGetList => recentcontact::get_list(ctx, body).await,
        Command::RecentContactDelete => recentcontact::delete(ctx, body).await,
        Command::MarkContact => recentcontact::mark_contact(ctx, body).await,
        Command::FriendAdd => sns::friend_add(ctx, body).await,
        Command::FriendImport => sns::friend_import(ctx, body).await,
        Command::FriendUpdate => sns::friend_update(ctx, body).await,
        Command::FriendDelete => sns::friend_delete(ctx, body).await,
        Command::FriendDeleteAll => sns::friend_delete_all(ctx, body).await,
        Command::FriendCheck => sns::friend_check(ctx, body).await,
        Command::FriendGet => sns::friend_get(ctx, body).await,
        Command::FriendGetList => sns::friend_get_list(ctx, body).await,
        Command::BlackListAdd => sns::black_list_add(ctx, body).await,
        Command::BlackListDelete => sns::black_list_delete(ctx, body).await,
        Command::BlackListGet => sns::black_list_get(ctx, body).await,
        Command::BlackListCheck => sns::black_list_check(ctx, body).await,
        Command::GetHistory => msgsvc::get_history(ctx, body).await,
        Command::SetNoSpeaking => openconfigsvr::setnospeaking(ctx, body).await,
        Command::GetNoSpeaking => openconfigsvr::getnospeaking(ctx, body).await,
        Command::Status => duet::status(ctx).await,
    }
}

/// Finds the command served at `path`: `/v4/<service>/<command>`.
fn resolve(path: &str) -> Result<(Service, Command), ApiError> {
    let unknown = || ApiError::new(code::RESOURCE_ERROR, format!("no such API: {path}; check the request URL"));
    let rest = path.strip_prefix("/v4/").ok_or_else(unknown)?;
    let (service, command) = rest.trim_end_matches('/').split_once('/').ok_or_else(unknown)?;
    let service = Service::from_path(service).ok_or_else(unknown)?;
    let command = Command::from_path(service, command).ok_or_else(unknown)?;
    Ok((service, command))
}

/// Checks the app id and the caller's UserSig, and that the caller is an app admin; returns the caller.
/// A UserSig that does not verify counts as a failed login of the caller's address and identifier
/// ([`Throttle`]); after too many, the caller is refused with 70050 without being checked.
fn authenticate(
    core: &Core,
    throttle: &Throttle,
    ip: IpAddr,
    service: Service,
    params: &AuthParams,
) -> Result<String, ApiError> {
    let sdkappid = params
        .sdkappid
        .as_deref()
        .ok_or_else(|| ApiError::new(code::SDKAPPID_MISSING, "sdkappid is missing from the URL"))?;
    let ours = core.config().sdkappid;
    match sdkappid.trim().parse::<u64>() {
        Ok(id) if id == ours => {}
        Ok(id) => {
            return Err(ApiError::new(code::SDKAPPID_INVALID, format!("SDKAppID {id} is not served here")));
        }
        Err(_) => {
            return Err(ApiError::new(code::SDKAPPID_INVALID, format!("sdkappid {sdkappid:?} is not a number")));
        }
    }
    let identifier = params.identifier.as_deref().unwrap_or_default();
    if identifier.is_empty() {
        return Err(ApiError::new(code::USERSIG_IDENTIFIER_MISMATCH, "identifier is missing from the URL"));
    }
    if let Err(why) = duet_proto::rest::validate_user_id(identifier) {
        return Err(ApiError::new(code::USERSIG_IDENTIFIER_MISMATCH, format!("identifier: {why}")));
    }
    throttle.login_allowed(ip, identifier).map_err(error::throttled)?;
    let usersig = params.usersig.as_deref().unwrap_or_default();
    core.accounts().authenticate(identifier, usersig).map_err(|e| {
        if error::is_failed_login(&e) {
            throttle.failed_login(ip, identifier);
        }
        error::auth(e, identifier, ours)
    })?;
    if !core.accounts().is_admin(identifier) {
        return Err(ApiError::new(
            service.admin_required_code(),
            format!("identifier {identifier:?} is not an app admin; the REST API is for app admins only"),
        ));
    }
    Ok(identifier.to_owned())
}

/// The query's `sdkappid`, `identifier` and `usersig`.
fn auth_params(query: &str) -> AuthParams {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    AuthParams::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn too_large(service: Service, e: &BytesRejection) -> ApiError {
    tracing::debug!(error = %e, "request body refused");
    if crate::http::body::is_too_slow(e) {
        return ApiError::new(code::BAD_REQUEST, "the request body was not received in time");
    }
    let code = if service == Service::OpenIm { code::MSG_TOO_LONG } else { code::BAD_REQUEST };
    ApiError::new(code, format!("the request body could not be read; the limit is {MAX_BODY} bytes"))
}
