//! Everything that crosses Duet's wire, and nothing else.
//!
//! * [`code`]: Tencent IM's numeric error codes, the one vocabulary of failure shared by REST and clients.
//! * [`demo`]: the demo page's UserSig request (`/demo/usersig`, demo mode only).
//! * [`elem`]: message elements (`TIMTextElem`, `TIMImageElem`, ...) with Tencent's field names and validation.
//! * [`limits`]: the bounds of values (identifiers, times, device ids, message sizes), one validator each.
//! * [`media`]: the upload and download endpoints' shapes (`/v1/media`).
//! * [`rest`]: the `/v4/...` REST API: request parsing (lenient where real clients differ) and response shapes.
//!
//! Only this crate derives `Serialize`/`Deserialize` for wire shapes; the domain converts explicitly.

pub mod client;
pub mod code;
pub mod demo;
pub mod elem;
pub mod limits;
pub mod media;
pub mod rest;

mod lenient;

/// A failure as it goes on the wire: Tencent's numeric code and a human-readable `ErrorInfo`.
///
/// This is the one error type the REST layer answers with; every other error is converted into it
/// (in `duet-server`'s `rest::error`) and internal detail is logged, never sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u32,
    pub info: String,
}

impl ApiError {
    pub fn new(code: u32, info: impl Into<String>) -> ApiError {
        ApiError { code, info: info.into() }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.info, self.code)
    }
}

impl std::error::Error for ApiError {}
