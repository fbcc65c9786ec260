//! The global mute (`openconfigsvr/setnospeaking`, `openconfigsvr/getnospeaking`): Tencent's
//! `NospeakingTime` values (`0` not muted, `4294967295` for good, other values seconds) to and from the
//! accounts service's mutes (`duet_core::accounts::Accounts::set_mute`), which the send pipeline's permit
//! stage reads.

use duet_core::accounts::MuteTime;
use duet_proto::ApiError;
use duet_proto::rest::request::{self as req, NOSPEAKING_FOREVER};
use duet_proto::rest::response::{Empty, GetNoSpeakingReply};
use serde_json::Value;

use super::{Ctx, Json};

/// `setnospeaking`: mutes or unmutes an account's one-to-one and group messages, from now.
pub(super) async fn setnospeaking(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::SetNoSpeaking::parse(body)?;
    let (c2c, group) = (r.c2c.map(from_wire), r.group.map(from_wire));
    ctx.core.accounts().set_mute(&r.account, c2c, group).await.map_err(ctx.fail())?;
    ctx.ok(Empty {})
}

/// `getnospeaking`: what remains of an account's mutes, in seconds.
pub(super) async fn getnospeaking(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::GetNoSpeaking::parse(body)?;
    let (c2c, group) = ctx.core.accounts().mute(&r.account).await.map_err(ctx.fail())?;
    ctx.ok(GetNoSpeakingReply { c2c: to_wire(c2c), group: to_wire(group) })
}

fn from_wire(secs: u32) -> MuteTime {
    match secs {
        0 => MuteTime::Off,
        NOSPEAKING_FOREVER => MuteTime::Forever,
        secs => MuteTime::Secs(secs),
    }
}

fn to_wire(t: MuteTime) -> u32 {
    match t {
        MuteTime::Off => 0,
        // What remains of a timed mute is less than the largest time that can be set, which is less than
        // "for good".
        MuteTime::Secs(secs) => secs.min(NOSPEAKING_FOREVER - 1),
        MuteTime::Forever => NOSPEAKING_FOREVER,
    }
}
