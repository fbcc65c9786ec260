//! `open_msg_svc`: the message-log download, `get_history` (1047/34885).

use duet_proto::rest::msglog::{ChatType, GetHistory, HistoryFiles};
use duet_proto::{ApiError, code};
use serde_json::Value;

use super::{Ctx, Json, error};
use crate::msglog::Lookup;

/// The hour's file, if it was written and is kept: with a URL signed until `url_ttl` from now. An hour
/// with no file answers Tencent's 1004 `Err_File_Not_Ready` (not written yet, or no message in it: no
/// file is written for an empty hour), one past the retention 1005 `Err_File_Expired`. Group messages:
/// Duet has none, so never a file.
pub(super) async fn get_history(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let req = GetHistory::parse(body)?;
    let log = ctx.msglog;
    let hour = duet_core::msglog::Hour::parse(&req.msg_time, log.utc_offset()).ok_or_else(GetHistory::bad_msg_time)?;
    let not_ready = || ApiError::new(code::HISTORY_FILE_NOT_READY, "Err_File_Not_Ready");
    if req.chat_type == ChatType::Group {
        return Err(not_ready());
    }
    let found = log.lookup(hour).await.map_err(|e| {
        tracing::error!(error = %e, hour = %req.msg_time, "message log: reading an hour's file");
        error::internal(ctx.service)
    })?;
    match found {
        Lookup::File(name, info) => {
            let file = vec![log.file_entry(ctx.media_base, &name, info)];
            ctx.ok(HistoryFiles { chat_type: req.chat_type.name(), msg_time: req.msg_time, file })
        }
        Lookup::NotReady => Err(not_ready()),
        Lookup::Expired => Err(ApiError::new(code::HISTORY_FILE_EXPIRED, "Err_File_Expired")),
    }
}
