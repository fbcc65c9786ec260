//! Firebase Cloud Messaging, the HTTP v1 API, authorised by a service account.
//!
//! The service account's key signs an OAuth2 JWT assertion (RS256; `iss` the account's `client_email`,
//! `scope` firebase.messaging, `aud` the token URL, one hour) that the token URL exchanges for an access
//! token; the token is kept until shortly before it expires (`CachedToken`) and sent as
//! `Authorization: Bearer`. A push is `POST /v1/projects/<project>/messages:send` with `{"message": …}`.
//! Google's documentation: <https://developers.google.com/identity/protocols/oauth2/service-account>,
//! <https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages>,
//! <https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode>.
//!
//! The message's `data` holds `ext`, `sender` and `msg_key`, as strings. The sender is under `sender`,
//! not `from`: FCM reserves `from` in `data`.
//!
//! Answers: 200 is sent; `UNREGISTERED`, `SENDER_ID_MISMATCH` and an `INVALID_ARGUMENT` about the
//! registration token drop the token; `QUOTA_EXCEEDED`, `UNAVAILABLE`, `INTERNAL`, 429 and 5xx retry
//! (after `Retry-After` when given); a 401 forgets the access token and retries once with a new one
//! (except `THIRD_PARTY_AUTH_ERROR`, the app's APNs credential in the Firebase console); any other answer
//! fails the push.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::jwt::{Signer, unix_now};
use crate::reply::{self, Reply};
use crate::token::{Attempt, CachedToken};
use crate::{Clients, ConfigError};

const SEND_URL: &str = "https://fcm.googleapis.com";
const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// An assertion's lifetime: Google's most.
const ASSERTION_LIFETIME: u64 = 3600;

/// `[push.fcm]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmConfig {
    /// The service account's JSON key file from the Firebase console (`client_email`, `private_key`,
    /// `project_id`, `token_uri`).
    pub service_account_file: PathBuf,
    /// The Firebase project; default the service account's `project_id`.
    pub project_id: Option<String>,
    /// The FCM base URL; default `https://fcm.googleapis.com`.
    pub url: Option<String>,
    /// The OAuth2 token URL; default the service account's `token_uri`, else Google's.
    pub token_url: Option<String>,
}

/// The fields of Google's service account file that are used.
#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    project_id: Option<String>,
    token_uri: Option<String>,
}

/// The FCM client.
pub struct Fcm {
    client: reqwest::Client,
    send_url: String,
    token_url: String,
    client_email: String,
    key_id: Option<String>,
    signer: Signer,
    token: CachedToken,
}

impl Fcm {
    /// Reads the service account file; fails naming what is missing or wrong.
    pub fn new(config: &FcmConfig, clients: &Clients) -> Result<Fcm, ConfigError> {
        let error = |message: String| ConfigError::Provider { provider: "fcm", message };
        let path = config.service_account_file.display();
        let text = std::fs::read(&config.service_account_file)
            .map_err(|e| error(format!("service_account_file {path}: {e}")))?;
        let account: ServiceAccount = serde_json::from_slice(&text)
            .map_err(|e| error(format!("service_account_file {path}: not a service account key: {e}")))?;
        let signer = Signer::rs256(account.private_key.as_bytes())
            .map_err(|e| error(format!("service_account_file {path}: private_key: {e}")))?;
        if account.client_email.is_empty() {
            return Err(error(format!("service_account_file {path}: client_email is empty")));
        }
        let project =
            config.project_id.clone().or(account.project_id).filter(|p| !p.is_empty()).ok_or_else(|| {
                error(format!("project_id is not set and service_account_file {path} has no project_id"))
            })?;
        if !project.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':') {
            return Err(error(format!("project_id {project:?} is not a project id")));
        }
        let base = config.url.as_deref().unwrap_or(SEND_URL).trim_end_matches('/');
        let token_url = config.token_url.clone().or(account.token_uri).unwrap_or_else(|| TOKEN_URL.to_owned());
        Ok(Fcm {
            client: clients.any.clone(),
            send_url: format!("{base}/v1/projects/{project}/messages:send"),
            token_url,
            client_email: account.client_email,
            key_id: account.private_key_id.filter(|k| !k.is_empty()),
            signer,
            token: CachedToken::new(ProviderKind::Fcm, "access token"),
        })
    }

    /// A new access token and how long it lives, for the assertion signed now.
    async fn fetch_token(&self) -> Result<(String, Duration), Outcome> {
        let now = unix_now();
        let mut header = Map::new();
        header.insert("typ".into(), "JWT".into());
        if let Some(kid) = &self.key_id {
            header.insert("kid".into(), kid.clone().into());
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        let assertion = self.signer.sign(header, &claims);
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", GRANT_TYPE)
            .append_pair("assertion", &assertion)
            .finish();
        let request =
            self.client.post(&self.token_url).header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(form);
        let reply = reply::send(request).await?;
        if !reply.status.is_success() {
            return Err(match reply.json::<TokenError>() {
                Some(e) if !reply.is_transient() => {
                    let reason = format!(
                        "the token URL refused the service account: {} {}: {}",
                        reply.status, e.error, e.error_description
                    );
                    Outcome::Failed { reason }
                }
                _ => reply.by_status("the token URL"),
            });
        }
        match reply.json::<TokenAnswer>() {
            Some(t) if !t.access_token.is_empty() => Ok((t.access_token, Duration::from_secs(t.expires_in))),
            _ => {
                Err(Outcome::Failed { reason: format!("the token URL answered without a token: {}", reply.snippet()) })
            }
        }
    }

    async fn attempt(&self, token: &str, body: &str) -> Attempt {
        let request = self
            .client
            .post(&self.send_url)
            .bearer_auth(token)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        let reply = match reply::send(request).await {
            Ok(reply) => reply,
            Err(outcome) => return Attempt::Done(outcome),
        };
        let error = reply.json::<ErrorBody>().map(|b| b.error);
        let code = error.as_ref().and_then(FcmError::code);
        let outcome = outcome(&reply, error.as_ref());
        // A 401 refuses the access token, but for THIRD_PARTY_AUTH_ERROR: the app's APNs credential.
        if reply.status == 401 && code != Some("THIRD_PARTY_AUTH_ERROR") {
            return Attempt::Renew(match outcome {
                Outcome::Retry { reason, .. } | Outcome::InvalidToken { reason } | Outcome::Failed { reason } => reason,
                Outcome::Sent => "FCM answered 401".into(),
            });
        }
        Attempt::Done(outcome)
    }

    async fn deliver(&self, target: &Target, n: &Notification) -> Outcome {
        let body = &message(target, n).to_string();
        self.token.renewing_once(|| self.fetch_token(), |token| async move { self.attempt(&token, body).await }).await
    }
}

#[async_trait]
impl Provider for Fcm {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Fcm
    }

    async fn send(&self, target: &Target, notification: &Notification) -> Outcome {
        let outcome = self.deliver(target, notification).await;
        reply::logged(ProviderKind::Fcm, &target.token, outcome)
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default = "an_hour")]
    expires_in: u64,
}

fn an_hour() -> u64 {
    3600
}

/// The token URL's error: `{"error": "invalid_grant", "error_description": "…"}`.
#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// `{"error": {"code", "message", "status", "details": [{"@type", "errorCode"}]}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: FcmError,
}

#[derive(Deserialize)]
struct FcmError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<Value>,
}

impl FcmError {
    /// The FCM `errorCode` of the details, else the status: Google says to prefer the former.
    fn code(&self) -> Option<&str> {
        self.details
            .iter()
            .find_map(|d| d.get("errorCode").and_then(Value::as_str))
            .or(Some(self.status.as_str()).filter(|s| !s.is_empty()))
    }

    /// Whether an `INVALID_ARGUMENT` is about the registration token rather than the message.
    fn about_the_token(&self) -> bool {
        let field_is_token = self.details.iter().any(|d| {
            d.get("fieldViolations").and_then(Value::as_array).is_some_and(|violations| {
                violations.iter().any(|v| v.get("field").and_then(Value::as_str) == Some("message.token"))
            })
        });
        field_is_token || self.message.to_ascii_lowercase().contains("registration token")
    }
}

/// What an answer means (but for the 401 that `attempt` takes as a refused access token).
fn outcome(reply: &Reply, error: Option<&FcmError>) -> Outcome {
    if reply.status.is_success() {
        return Outcome::Sent;
    }
    let Some(error) = error else {
        return reply.by_status("FCM");
    };
    let code = error.code().unwrap_or("");
    let reason = format!("FCM answered {} {code}: {}", reply.status, error.message);
    match code {
        "UNREGISTERED" | "SENDER_ID_MISMATCH" => Outcome::InvalidToken { reason },
        "INVALID_ARGUMENT" if error.about_the_token() => Outcome::InvalidToken { reason },
        "QUOTA_EXCEEDED" | "UNAVAILABLE" | "INTERNAL" => Outcome::Retry { after: reply.retry_after, reason },
        _ if reply.is_transient() => Outcome::Retry { after: reply.retry_after, reason },
        _ => Outcome::Failed { reason },
    }
}

/// The `{"message": …}` body.
fn message(target: &Target, n: &Notification) -> Value {
    let mut android_notification = Map::new();
    let google = &n.android;
    if !google.google_channel_id.is_empty() {
        android_notification.insert("channel_id".into(), google.google_channel_id.clone().into());
    }
    if let Some(badge) = n.badge {
        android_notification.insert("notification_count".into(), badge.into());
    }
    if !google.sound.is_empty() {
        android_notification.insert("sound".into(), google.sound.clone().into());
    }
    if !google.google_image.is_empty() {
        android_notification.insert("image".into(), google.google_image.clone().into());
    }
    let mut message = json!({
        "token": target.token,
        "notification": { "title": n.title, "body": n.body },
        "data": { "ext": n.ext, "sender": n.from, "msg_key": n.msg_key },
        "android": { "priority": "HIGH", "notification": android_notification },
    });
    if let Some(apns) = apns(n) {
        message["apns"] = apns;
    }
    json!({ "message": message })
}

/// The `apns` block, for an FCM token of an iOS app: what the notification sets that FCM's common
/// fields do not carry. `None` when it sets nothing of that.
fn apns(n: &Notification) -> Option<Value> {
    let o = &n.apns;
    let mut aps = Map::new();
    if let Some(badge) = n.badge {
        aps.insert("badge".into(), badge.into());
    }
    if !o.sound.is_empty() {
        aps.insert("sound".into(), o.sound.clone().into());
    }
    if o.mutable_content {
        aps.insert("mutable-content".into(), 1.into());
    }
    if !o.interruption_level.is_empty() {
        aps.insert("interruption-level".into(), o.interruption_level.clone().into());
    }
    if aps.is_empty() && o.image.is_empty() {
        return None;
    }
    let mut apns = json!({ "payload": { "aps": aps } });
    if !o.image.is_empty() {
        apns["fcm_options"] = json!({ "image": o.image });
    }
    Some(apns)
}

#[cfg(test)]
mod tests {
    use duet_core::push::ApnsOptions;

    use super::*;

    #[test]
    fn a_plain_notification_has_no_apns_block_and_no_empty_android_fields() {
        let target = Target { token: "tok".into(), app_id: None };
        let n = Notification { title: "T".into(), body: "B".into(), ..Notification::default() };
        assert_eq!(
            message(&target, &n),
            json!({"message": {
                "token": "tok",
                "notification": {"title": "T", "body": "B"},
                "data": {"ext": "", "sender": "", "msg_key": ""},
                "android": {"priority": "HIGH", "notification": {}},
            }})
        );
    }

    #[test]
    fn apns_options_go_into_the_apns_block() {
        let n = Notification {
            badge: Some(2),
            apns: ApnsOptions { image: "https://i/x.png".into(), mutable_content: true, ..ApnsOptions::default() },
            ..Notification::default()
        };
        assert_eq!(
            apns(&n),
            Some(
                json!({"payload": {"aps": {"badge": 2, "mutable-content": 1}}, "fcm_options": {"image": "https://i/x.png"}})
            )
        );
    }
}
