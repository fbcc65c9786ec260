//! A message's content as the wire carries it ([`WireContent`]): what the domain's send pipeline
//! (`duet_core::messages::send`) validates, grants uploads for and stores. The limits are Tencent's
//! (`duet_proto::limits::check_message`), checked when the content is read and again only if the
//! server's description of its uploads changed it; the compact JSON they measure is the one stored.

use duet_core::media::MediaItem;
use duet_core::messages::{Content, Encoded};
use duet_proto::ApiError;
use duet_proto::elem::MsgElem;
use serde_json::Value;

pub(crate) struct WireContent<'a> {
    /// `scheme://authority` of the download URLs put in the elements.
    media_base: &'a str,
    body: Vec<MsgElem>,
    cloud_custom_data: String,
    push: Option<Value>,
    /// `body` as checked compact JSON, once validated.
    encoded: Option<String>,
}

impl<'a> WireContent<'a> {
    pub(crate) fn new(media_base: &'a str, body: Vec<MsgElem>, cloud_custom_data: String, push: Option<Value>) -> Self {
        WireContent { media_base, body, cloud_custom_data, push, encoded: None }
    }

    /// Content whose limits were checked as it was read, `encoded` being the compact JSON of `body`.
    pub(crate) fn checked(
        media_base: &'a str,
        body: Vec<MsgElem>,
        encoded: String,
        cloud_custom_data: String,
        push: Option<Value>,
    ) -> Self {
        WireContent { encoded: Some(encoded), ..WireContent::new(media_base, body, cloud_custom_data, push) }
    }

    fn check(&mut self) -> Result<(), ApiError> {
        let json = duet_proto::limits::check_message(&self.body, &self.cloud_custom_data, self.push.as_ref())?;
        self.encoded = Some(json);
        Ok(())
    }
}

impl Content for WireContent<'_> {
    type Error = ApiError;

    fn validate(&mut self) -> Result<(), ApiError> {
        if self.encoded.is_none() { self.check() } else { Ok(()) }
    }

    fn uploads(&self) -> Vec<String> {
        crate::media::uploads(&self.body)
    }

    fn describe(&mut self, items: Vec<Option<MediaItem>>) -> Result<(), ApiError> {
        if crate::media::describe(self.media_base, &mut self.body, items) { self.check() } else { Ok(()) }
    }

    fn shown(&self) -> (String, String) {
        (self.encoded.clone().unwrap_or_else(|| "[]".into()), self.cloud_custom_data.clone())
    }

    fn rewrite(&mut self, body: Option<Value>, cloud_custom_data: Option<String>) -> Result<(), ApiError> {
        if let Some(body) = body {
            self.body = duet_proto::elem::parse_msg_body(Some(&body))?;
        }
        if let Some(data) = cloud_custom_data {
            self.cloud_custom_data = data;
        }
        self.check()
    }

    fn encode(self) -> Encoded {
        Encoded {
            body: self.encoded.unwrap_or_else(|| "[]".into()),
            cloud_custom_data: self.cloud_custom_data,
            push_info: self.push.map(|p| p.to_string()),
        }
    }
}
