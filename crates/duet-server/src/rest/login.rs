//! The account commands (`im_open_login_svc/*`): import, delete, check and kick accounts.

use duet_core::model::NewAccount;
use duet_proto::rest::request as req;
use duet_proto::rest::response::*;
use duet_proto::{ApiError, code};
use serde_json::Value;

use super::{Ctx, Json};

/// `account_import`: imports (or updates) one account.
pub(super) async fn account_import(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::AccountImport::parse(body)?;
    ctx.core.accounts().import(vec![new_account(r)]).await.map_err(ctx.fail())?;
    ctx.ok(Empty {})
}

/// `multiaccount_import`: imports the valid accounts of a batch and lists the invalid ones.
pub(super) async fn multiaccount_import(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::MultiAccountImport::parse(body)?;
    ctx.core.accounts().import(r.accounts.into_iter().map(new_account).collect()).await.map_err(ctx.fail())?;
    ctx.ok(MultiAccountImportReply { fail_accounts: r.invalid })
}

/// `account_delete`: deletes accounts, answering per account whether it existed.
pub(super) async fn account_delete(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::AccountList::parse(body, "DeleteItem")?;
    let existed = ctx.core.accounts().delete(r.user_ids.clone()).await.map_err(ctx.fail())?;
    let result_item = r
        .user_ids
        .into_iter()
        .zip(existed)
        .map(|(user_id, existed)| DeleteResultItem {
            result_code: if existed { 0 } else { code::ACCOUNT_NOT_FOUND },
            result_info: if existed { String::new() } else { "Err_TLS_PT_Open_Login_Account_Not_Exist".into() },
            user_id,
        })
        .collect();
    ctx.ok(AccountDeleteReply { result_item })
}

/// `account_check`: whether each account is imported.
pub(super) async fn account_check(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::AccountList::parse(body, "CheckItem")?;
    let exist = ctx.core.accounts().exist(r.user_ids.clone()).await.map_err(ctx.fail())?;
    let result_item = r
        .user_ids
        .into_iter()
        .zip(exist)
        .map(|(user_id, exists)| CheckResultItem {
            user_id,
            result_code: 0,
            result_info: String::new(),
            account_status: if exists { "Imported" } else { "NotImported" },
        })
        .collect();
    ctx.ok(AccountCheckReply { result_item })
}

/// `kick`: invalidates an account's UserSigs issued so far and logs out all its devices.
pub(super) async fn kick(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::Kick::parse(body)?;
    ctx.core.accounts().kick(&r.user_id).await.map_err(ctx.fail())?;
    ctx.ok(Empty {})
}

fn new_account(r: req::AccountImport) -> NewAccount {
    NewAccount { id: r.user_id, nick: r.nick, face_url: r.face_url }
}
