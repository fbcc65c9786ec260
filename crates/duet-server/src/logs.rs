//! What ties a log line to the request or connection it belongs to (`docs/operations.md`, "Logs"):
//! correlation ids and the spans that carry them. A REST call runs in a `rest` span with its
//! `request_id` (the caller's `X-Request-Id` when it is sane, else [`new_id`]; echoed in the response),
//! `command` and `user`; an upload or download in a `media` span with its `request_id`; a WebSocket
//! connection in a `conn` span with its `conn` id and `ip`, and the `user`, `platform` and `device` its
//! login names. Lines logged inside carry the span's fields.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// The header a REST caller may name its request by, and the response echoes.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The longest `X-Request-Id` taken from a caller.
pub(crate) const MAX_REQUEST_ID: usize = 64;

/// A fresh correlation id: 16 random hex digits.
pub(crate) fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The id of a REST request: the caller's `X-Request-Id` if it is 1 to [`MAX_REQUEST_ID`] printable
/// ASCII characters without spaces (safe in a text log line), else a [`new_id`].
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| (1..=MAX_REQUEST_ID).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(new_id, str::to_owned)
}

/// Sets the response's `X-Request-Id` to `id` (one [`request_id`] gave: always a valid header value).
pub(crate) fn echo_request_id(headers: &mut HeaderMap, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert(REQUEST_ID, value);
    }
}

/// Runs a media request in a `media` span with its `request_id` ([`request_id`]), echoed in the
/// response, so that what the upload or download logs can be told apart from other requests' lines.
pub(crate) async fn media_span(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let request_id = request_id(request.headers());
    let span = tracing::info_span!("media", %request_id);
    let mut response = next.run(request).instrument(span).await;
    echo_request_id(response.headers_mut(), &request_id);
    response
}

/// The span of one WebSocket connection from `ip`; its login records `user`, `platform` and `device`.
pub(crate) fn connection_span(ip: std::net::IpAddr) -> tracing::Span {
    use tracing::field::Empty;
    tracing::info_span!("conn", conn = %new_id(), %ip, user = Empty, platform = Empty, device = Empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_request_id_is_kept_and_anything_else_replaced() {
        let with = |id: &[u8]| {
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, HeaderValue::from_bytes(id).unwrap());
            request_id(&headers)
        };
        assert_eq!(with(b"req-42_a.b:c/d"), "req-42_a.b:c/d");
        let longest = "x".repeat(MAX_REQUEST_ID);
        assert_eq!(with(longest.as_bytes()), longest);
        assert_eq!(with(b"x"), "x");
        for bad in [&b"a b"[..], b"tab\there", "é".as_bytes(), &[b'y'; MAX_REQUEST_ID + 1]] {
            let id = with(bad);
            assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{bad:?} gave {id:?}");
        }
        assert_eq!(request_id(&HeaderMap::new()).len(), 16, "none sent: one is made up");
        assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
    }
}
