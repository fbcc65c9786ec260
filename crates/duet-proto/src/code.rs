//! Tencent IM's error codes, as its documentation and SDK headers name them.
//!
//! Each constant carries the code Tencent returns for the same situation, so that clients written for Tencent IM
//! handle Duet's failures unchanged. The reference (`shared/reference/tencent-rest-api.md` §1.4, §2.6, §3.13)
//! gives the sources.

pub const OK: u32 = 0;

// REST gateway (60000-79999 are "public" codes any API may return).
pub const HTTP_PARSE: u32 = 60002;
pub const JSON_PARSE: u32 = 60003;
pub const SDKAPPID_INVALID: u32 = 60006;
pub const BAD_REQUEST: u32 = 60008;
pub const RESOURCE_ERROR: u32 = 60009;
pub const ADMIN_REQUIRED: u32 = 60010;
pub const SDKAPPID_MISSING: u32 = 60012;
pub const ACCOUNT_NOT_STRING: u32 = 60015;

// UserSig and accounts.
pub const USERSIG_EXPIRED: u32 = 70001;
pub const USERSIG_EMPTY: u32 = 70002;
pub const USERSIG_INVALID: u32 = 70003;
pub const USERSIG_FIELDS: u32 = 70005;
pub const USERSIG_KEY_MISMATCH: u32 = 70009;
pub const USERSIG_IDENTIFIER_MISMATCH: u32 = 70013;
pub const USERSIG_SDKAPPID_MISMATCH: u32 = 70014;
pub const USERSIG_REVOKED: u32 = 70052;
/// Too many failed UserSig checks (from the caller's address, or for its account); retry later.
pub const TOO_MANY_FAILED_LOGINS: u32 = 70050;
pub const ACCOUNT_NOT_FOUND: u32 = 70107;
pub const ACCOUNT_INVALID_PARAMS: u32 = 70402;
pub const ACCOUNT_ADMIN_REQUIRED: u32 = 70403;
pub const ACCOUNT_INTERNAL: u32 = 70500;

// Profiles.
pub const PROFILE_JSON_PARSE: u32 = 40001;
pub const PROFILE_ACCOUNT_MISSING: u32 = 40003;
pub const PROFILE_ADMIN_REQUIRED: u32 = 40004;
pub const PROFILE_INTERNAL: u32 = 40006;
pub const PROFILE_TAG_UNKNOWN: u32 = 40009;
pub const PROFILE_VALUE_TOO_LONG: u32 = 40601;
pub const PROFILE_BAD_STANDARD_VALUE: u32 = 40605;
pub const PROFILE_BAD_VALUE_TYPE: u32 = 40610;

// C2C messages (openim).
pub const MSG_INTERNAL: u32 = 20005;
/// A C2C recall after the recall window (Tencent's default: 2 minutes).
pub const MSG_RECALL_TIME_LIMIT: u32 = 20016;
pub const MSG_NOT_FOUND: u32 = 20022;
pub const MSG_ALREADY_RECALLED: u32 = 20023;
/// The message was edited by someone else since the version the edit names.
pub const MSG_MODIFY_CONFLICT: u32 = 20028;
pub const MSG_JSON_PARSE: u32 = 90001;
pub const MSG_BODY_MALFORMED: u32 = 90002;
pub const MSG_TO_ACCOUNT_INVALID: u32 = 90003;
pub const MSG_SEQ_INVALID: u32 = 90004;
pub const MSG_RANDOM_INVALID: u32 = 90005;
pub const MSG_TIMESTAMP_INVALID: u32 = 90006;
pub const MSG_BODY_NOT_ARRAY: u32 = 90007;
pub const MSG_FROM_ACCOUNT_INVALID: u32 = 90008;
pub const MSG_ADMIN_REQUIRED: u32 = 90009;
pub const MSG_ELEM_MALFORMED: u32 = 90010;
pub const MSG_TOO_MANY_ACCOUNTS: u32 = 90011;
pub const MSG_TO_ACCOUNT_NOT_FOUND: u32 = 90012;
pub const MSG_TOO_MANY_REQUESTED: u32 = 90018;
pub const MSG_LIFETIME_TOO_LONG: u32 = 90026;
pub const MSG_SYNC_FROM_OLD_SYSTEM: u32 = 90030;
pub const MSG_SYNC_OTHER_MACHINE: u32 = 90031;
pub const MSG_OFFLINE_PUSH_INFO: u32 = 90043;
pub const MSG_LIFETIME_INVALID: u32 = 90044;
pub const MSG_ACCOUNT_NOT_FOUND: u32 = 90048;
pub const MSG_KEY_INVALID: u32 = 90054;
pub const MSG_SERVER_INTERNAL: u32 = 91000;
pub const MSG_TOO_LONG: u32 = 93000;

// Recent contacts.
pub const CONTACT_ACCOUNT_NOT_FOUND: u32 = 50001;
pub const CONTACT_INTERNAL: u32 = 50004;
pub const CONTACT_JSON_PARSE: u32 = 50002;
pub const CONTACT_ADMIN_REQUIRED: u32 = 50003;

// Relationship chain.
pub const SNS_JSON_PARSE: u32 = 30001;
/// Invalid parameters (also: a blacklist entry that exists already, a non-friend in `friend_get_list`).
pub const SNS_INVALID_PARAMS: u32 = 30001;
pub const SNS_ACCOUNT_NOT_FOUND: u32 = 30003;
pub const SNS_ADMIN_REQUIRED: u32 = 30004;
pub const SNS_INTERNAL: u32 = 30006;
/// The user has the most friends allowed (3 000).
pub const SNS_FRIEND_LIMIT: u32 = 30010;
/// The target has the most pending requests allowed.
pub const SNS_PENDING_LIMIT: u32 = 30012;
/// The blacklist is full (1 000).
pub const SNS_BLACKLIST_LIMIT: u32 = 30013;
/// The target has the most friends allowed.
pub const SNS_PEER_FRIEND_LIMIT: u32 = 30014;
/// The target is in the user's blacklist.
pub const SNS_IN_OWN_BLACKLIST: u32 = 30515;
/// The target's `AllowType` is `DenyAny`.
pub const SNS_PEER_DENIES_ALL: u32 = 30516;
/// The user is in the target's blacklist.
pub const SNS_IN_PEER_BLACKLIST: u32 = 30525;
/// The request waits for the target to accept it (`AllowType_Type_NeedConfirm`).
pub const SNS_NEED_CONFIRM: u32 = 30539;
/// No such pending request.
pub const SNS_NO_PENDING_REQUEST: u32 = 30614;
/// The peer is not a friend.
pub const SNS_NOT_FRIEND: u32 = 31704;

// Sends refused by the relationship policy (client sends only; the admin is never checked).
/// The sender is in the recipient's blacklist (only when the blacklist check reports).
pub const MSG_IN_BLACKLIST: u32 = 20007;
/// Friends-only: neither is the other's friend.
pub const MSG_NOT_FRIENDS: u32 = 20009;
/// Friends-only: the sender is not in the recipient's friend list.
pub const MSG_NOT_RECIPIENTS_FRIEND: u32 = 20010;
/// Friends-only: the recipient is not in the sender's friend list.
pub const MSG_NOT_SENDERS_FRIEND: u32 = 20011;
/// The sender's one-to-one messages are muted (`openconfigsvr/setnospeaking`).
pub const MSG_SENDER_MUTED: u32 = 20012;

// Global mute (`openconfigsvr/setnospeaking`, `getnospeaking`; 1047/34923, 1047/34924).
/// The body is not JSON (or not a JSON object).
pub const NOSPEAKING_JSON_PARSE: u32 = 130001;
/// `getnospeaking` without `Get_Account`.
pub const NOSPEAKING_GET_ACCOUNT_MISSING: u32 = 130002;
/// `Get_Account` is not a valid UserID (or names no account: Duet's choice).
pub const NOSPEAKING_GET_ACCOUNT_INVALID: u32 = 130003;
/// `setnospeaking` without `Set_Account`.
pub const NOSPEAKING_SET_ACCOUNT_MISSING: u32 = 130004;
/// `Set_Account` is not a valid UserID (or names no account: Duet's choice).
pub const NOSPEAKING_SET_ACCOUNT_INVALID: u32 = 130005;
/// `C2CmsgNospeakingTime` is not an integer in [0, 4294967295].
pub const NOSPEAKING_C2C_TIME_INVALID: u32 = 130006;
/// `GroupmsgNospeakingTime` is not an integer in [0, 4294967295].
pub const NOSPEAKING_GROUP_TIME_INVALID: u32 = 130007;
/// Neither `C2CmsgNospeakingTime` nor `GroupmsgNospeakingTime` is given.
pub const NOSPEAKING_NO_TIME: u32 = 130008;
/// A system error: retry.
pub const NOSPEAKING_INTERNAL: u32 = 130014;

// Rich media (uploads and downloads; the numbers of Tencent's SDK-side codes for the same failures).
/// The credentials of an upload or download were refused, or the caller may not read that file.
pub const MEDIA_AUTH_FAILED: u32 = 6006;
/// The upload was refused or failed on the server.
pub const MEDIA_UPLOAD_FAILED: u32 = 6008;
/// A file uploaded as an image is not an image Duet can read.
pub const MEDIA_NOT_AN_IMAGE: u32 = 6031;
/// No such file.
pub const MEDIA_NOT_FOUND: u32 = 7004;
/// The file is larger than the limit of its type.
pub const MEDIA_TOO_LARGE: u32 = 7005;
/// The file is empty.
pub const MEDIA_EMPTY: u32 = 7006;

// ---- open_msg_svc/get_history ----------------------------------------------------------------------------
/// The hour's message-log file is not there: not written yet, or the hour had no messages
/// (`Err_File_Not_Ready`, as Tencent answers).
pub const HISTORY_FILE_NOT_READY: u32 = 1004;
/// The hour is past the files' retention (`Err_File_Expired`).
pub const HISTORY_FILE_EXPIRED: u32 = 1005;
