//! Duet's own admin commands under `/v4/duet/`, beside Tencent's and authenticated as they are (the app
//! admin's UserSig): `status`, the server at a glance (`duet status`, `docs/operations.md`).

use duet_proto::ApiError;

use super::{Ctx, Json};

/// `duet/status`: version, uptime, readiness, connections, the store's figures, retention, the outboxes.
/// The body is ignored.
pub(super) async fn status(ctx: Ctx<'_>) -> Result<Json, ApiError> {
    let status = ctx.ops.status().await.map_err(|e| ctx.fail()(duet_core::Error::Store(e)))?;
    ctx.ok(status)
}
