//! Reading request fields by name with Tencent's error code for each way a field can be wrong.
//!
//! **An optional field sent as `""` is absent.** Real clients send `""` for the optional fields they leave
//! unset (a struct serialized without `omitempty`, an empty form input), and Tencent accepts it: a
//! `friend_add` item with `"GroupName": ""` adds the friend to no group, `sendmsg` with `"From_Account": ""`
//! is sent by the admin, `"MsgLifeTime": ""` is the default lifetime. So every optional reader here
//! ([`Fields::given`] and the `opt_*` readers built on it) reads `""`, like JSON `null`, as absent, whatever
//! type the field has (string, number, array or object); [`lenient::is_unset`] is the one rule.
//!
//! Where `""` is a value, it is kept:
//! * a profile or friend-field value (`portrait_set`'s and `friend_update`'s `Value`, `CustomItem`'s
//!   `Value`): setting a field to `""` clears it (an empty text tag, no remark, no groups). An integer or
//!   fixed-choice profile tag set to `""` is still refused (40610, 40605): `""` is none of its values, and
//!   Tencent documents no reset to the default;
//! * `CloudCustomData` ([`Fields::opt_content`]): `""` is empty content, which is also what an absent one
//!   stores, so the two cannot be told apart afterwards anyway.
//!
//! `LastMsgKey: ""` of `admin_getroammsg` means "from the newest message", which is what leaving it out
//! means too. A required field sent as `""` is read by the required readers ([`Fields::get`],
//! [`Fields::account`], [`Fields::string`], [`Fields::u32`], [`Fields::time`]), which see the `""` and
//! answer the error code they answered before: an empty UserID is still an invalid one.

use serde_json::{Map, Value};

use crate::{ApiError, lenient};

/// The largest UserID Tencent accepts, in bytes.
pub const MAX_USER_ID_BYTES: usize = 32;

/// A request body: a JSON object whose fields are read one by one.
pub(crate) struct Fields<'a>(pub &'a Map<String, Value>);

impl<'a> Fields<'a> {
    /// The body as an object, or `code` when it is any other JSON value.
    pub fn of(body: &'a Value, code: u32) -> Result<Fields<'a>, ApiError> {
        match body {
            Value::Object(map) => Ok(Fields(map)),
            _ => Err(ApiError::new(code, "the request body must be a JSON object")),
        }
    }

    /// The value of an optional field: the first of `names` (Tencent renamed some fields over time) given a
    /// value, that is neither null nor `""`.
    pub fn given(&self, names: &[&str]) -> Option<&'a Value> {
        names.iter().find_map(|n| self.0.get(*n).filter(|v| !lenient::is_unset(v)))
    }

    /// The value of a required field, or of a field whose `""` is a value: the first of `names` given a
    /// value, else the first sent as `""` (not null), which the caller validates as it is.
    pub fn get(&self, names: &[&str]) -> Option<&'a Value> {
        self.given(names).or_else(|| names.iter().find_map(|n| self.0.get(*n).filter(|v| !v.is_null())))
    }

    /// A required account id, validated as a UserID (`""` is an invalid one).
    pub fn account(&self, names: &[&str], code: u32) -> Result<String, ApiError> {
        match self.get(names) {
            None => Err(ApiError::new(code, format!("{} is required", names[0]))),
            Some(v) => account_value(v, names[0], code),
        }
    }

    /// An optional account id; `""` is none (`sendmsg`'s `From_Account: ""` is the admin).
    pub fn opt_account(&self, names: &[&str], code: u32) -> Result<Option<String>, ApiError> {
        self.given(names).map(|v| account_value(v, names[0], code)).transpose()
    }

    /// An array of account ids (at least one), at most `max` of them (else `too_many`).
    pub fn accounts(&self, name: &str, code: u32, max: usize, too_many: u32) -> Result<Vec<String>, ApiError> {
        let items = match self.get(&[name]) {
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(ApiError::new(code, format!("{name} must be an array of strings")));
            }
            None => return Err(ApiError::new(code, format!("{name} is required"))),
        };
        if items.is_empty() {
            return Err(ApiError::new(code, format!("{name} must not be empty")));
        }
        if items.len() > max {
            return Err(ApiError::new(too_many, format!("{name} holds {} accounts, more than {max}", items.len())));
        }
        items.iter().map(|v| account_value(v, name, code)).collect()
    }

    /// A required string; `""` is returned for the caller to refuse as its value.
    pub fn string(&self, name: &str, code: u32) -> Result<String, ApiError> {
        match self.get(&[name]) {
            None => Err(ApiError::new(code, format!("{name} is required"))),
            Some(v) => string_value(v, name, code),
        }
    }

    /// An optional string; `""` is none.
    pub fn opt_string(&self, name: &str, code: u32) -> Result<Option<String>, ApiError> {
        self.given(&[name]).map(|v| string_value(v, name, code)).transpose()
    }

    /// An optional string whose `""` is a value, not an absence: content such as `CloudCustomData`.
    pub fn opt_content(&self, name: &str, code: u32) -> Result<Option<String>, ApiError> {
        self.get(&[name]).map(|v| string_value(v, name, code)).transpose()
    }

    /// An optional unsigned 32-bit integer (numbers sent as strings accepted); `""` is none.
    pub fn opt_u32(&self, name: &str, code: u32) -> Result<Option<u32>, ApiError> {
        self.given(&[name]).map(|v| u32_value(v, name, code)).transpose()
    }

    /// A required unsigned 32-bit integer.
    pub fn u32(&self, name: &str, code: u32) -> Result<u32, ApiError> {
        match self.get(&[name]) {
            None => Err(ApiError::new(code, format!("{name} is required"))),
            Some(v) => u32_value(v, name, code),
        }
    }

    /// An optional non-negative integer that fits an i64 (unix seconds, counts); `""` is none.
    pub fn opt_time(&self, names: &[&str], code: u32) -> Result<Option<i64>, ApiError> {
        self.given(names).map(|v| time_value(v, names[0], code)).transpose()
    }

    /// A required non-negative integer that fits an i64.
    pub fn time(&self, names: &[&str], code: u32) -> Result<i64, ApiError> {
        match self.get(names) {
            None => Err(ApiError::new(code, format!("{} is required", names[0]))),
            Some(v) => time_value(v, names[0], code),
        }
    }

    /// An optional time the server keeps (unix seconds): within `[0, 2^53 − 1]`
    /// ([`limits::check_time`](crate::limits::check_time)); `""` is none.
    pub fn opt_stored_time(&self, names: &[&str], code: u32) -> Result<Option<i64>, ApiError> {
        self.given(names).map(|v| stored_time_value(v, names[0], code)).transpose()
    }

    /// A required time the server keeps, as [`Fields::opt_stored_time`].
    pub fn stored_time(&self, names: &[&str], code: u32) -> Result<i64, ApiError> {
        match self.get(names) {
            None => Err(ApiError::new(code, format!("{} is required", names[0]))),
            Some(v) => stored_time_value(v, names[0], code),
        }
    }

    /// An optional array of strings; `""` is none (an empty array).
    pub fn opt_strings(&self, name: &str, code: u32) -> Result<Vec<String>, ApiError> {
        match self.given(&[name]) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(ApiError::new(code, format!("{name} must be an array of strings"))),
                })
                .collect(),
            Some(_) => Err(ApiError::new(code, format!("{name} must be an array of strings"))),
        }
    }
}

fn string_value(v: &Value, name: &str, code: u32) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(ApiError::new(code, format!("{name} must be a string"))),
    }
}

fn u32_value(v: &Value, name: &str, code: u32) -> Result<u32, ApiError> {
    lenient::as_u64(v)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| ApiError::new(code, format!("{name} must be an integer in [0, 4294967295]")))
}

fn time_value(v: &Value, name: &str, code: u32) -> Result<i64, ApiError> {
    lenient::as_i64(v)
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::new(code, format!("{name} must be a non-negative integer")))
}

fn stored_time_value(v: &Value, name: &str, code: u32) -> Result<i64, ApiError> {
    let t = lenient::as_i64(v).ok_or_else(|| ApiError::new(code, format!("{name} must be a non-negative integer")))?;
    crate::limits::check_time(t).map_err(|why| ApiError::new(code, format!("{name}: {why}")))
}

fn account_value(v: &Value, name: &str, code: u32) -> Result<String, ApiError> {
    match v {
        Value::String(s) => {
            validate_user_id(s).map(|()| s.clone()).map_err(|why| ApiError::new(code, format!("{name}: {why}")))
        }
        _ => Err(ApiError::new(code, format!("{name} must be a string"))),
    }
}

/// Checks a UserID, on every door (REST, the client protocol, media): 1 to 32 bytes (Tencent's limit), no
/// invisible character (control, format, line or paragraph separator, noncharacter: see
/// [`limits::is_invisible`](crate::limits::is_invisible)), no leading or trailing whitespace. UserIDs are
/// then compared byte for byte: case-sensitive, without Unicode normalization.
pub fn validate_user_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("a UserID must not be empty".into());
    }
    if id.len() > MAX_USER_ID_BYTES {
        return Err(format!("UserID {id:?} is {} bytes, more than {MAX_USER_ID_BYTES}", id.len()));
    }
    crate::limits::check_visible("UserID", id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CODE: u32 = 99;

    fn with(body: &Value, test: impl FnOnce(Fields<'_>)) {
        test(Fields::of(body, CODE).unwrap());
    }

    #[test]
    fn optional_readers_read_empty_and_null_as_absent_whatever_the_type() {
        let body = json!({"s": "", "n": null, "list": "", "obj": ""});
        with(&body, |f| {
            for name in ["s", "n", "list", "obj", "missing"] {
                assert_eq!(f.given(&[name]), None, "{name}");
                assert_eq!(f.opt_string(name, CODE).unwrap(), None, "{name}");
                assert_eq!(f.opt_account(&[name], CODE).unwrap(), None, "{name}");
                assert_eq!(f.opt_u32(name, CODE).unwrap(), None, "{name}");
                assert_eq!(f.opt_time(&[name], CODE).unwrap(), None, "{name}");
                assert_eq!(f.opt_strings(name, CODE).unwrap(), Vec::<String>::new(), "{name}");
            }
        });
    }

    #[test]
    fn optional_readers_still_refuse_what_is_given_and_wrong() {
        let body = json!({"s": 5, "acct": " bob", "n": "x", "t": -1, "list": "a"});
        with(&body, |f| {
            assert_eq!(f.opt_string("s", CODE).unwrap_err().code, CODE);
            assert_eq!(f.opt_account(&["acct"], CODE).unwrap_err().code, CODE);
            assert_eq!(f.opt_u32("n", CODE).unwrap_err().code, CODE);
            assert_eq!(f.opt_time(&["t"], CODE).unwrap_err().code, CODE);
            assert_eq!(f.opt_strings("list", CODE).unwrap_err().code, CODE);
        });
        // Whitespace is not empty: it is a value, and a wrong one here.
        with(&json!({"n": " "}), |f| assert_eq!(f.opt_u32("n", CODE).unwrap_err().code, CODE));
    }

    #[test]
    fn required_readers_see_empty_and_refuse_it_as_before() {
        with(&json!({"id": "", "n": "", "t": "", "s": ""}), |f| {
            let e = f.account(&["id"], CODE).unwrap_err();
            assert_eq!((e.code, e.info.as_str()), (CODE, "id: a UserID must not be empty"));
            assert_eq!(f.u32("n", CODE).unwrap_err().info, "n must be an integer in [0, 4294967295]");
            assert_eq!(f.time(&["t"], CODE).unwrap_err().info, "t must be a non-negative integer");
            assert_eq!(f.string("s", CODE).unwrap(), "", "the caller validates the empty value");
            assert_eq!(f.u32("missing", CODE).unwrap_err().info, "missing is required");
        });
    }

    #[test]
    fn content_keeps_empty_and_renamed_fields_prefer_the_one_given() {
        with(&json!({"CloudCustomData": "", "Operator_Account": "", "From_Account": "bob"}), |f| {
            assert_eq!(f.opt_content("CloudCustomData", CODE).unwrap().as_deref(), Some(""));
            assert_eq!(f.opt_content("missing", CODE).unwrap(), None);
            assert_eq!(f.account(&["Operator_Account", "From_Account"], CODE).unwrap(), "bob");
            assert_eq!(f.get(&["Operator_Account"]), Some(&json!("")));
        });
        with(&json!({"Operator_Account": "", "From_Account": null}), |f| {
            assert_eq!(f.account(&["Operator_Account", "From_Account"], CODE).unwrap_err().code, CODE);
        });
    }
}
