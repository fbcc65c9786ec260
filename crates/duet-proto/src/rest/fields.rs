//! Reading request fields by name with Tencent's error code for each way a field can be wrong.

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

    /// The first of `names` present (and not null): for fields Tencent renamed over time.
    pub fn get(&self, names: &[&str]) -> Option<&'a Value> {
        names.iter().find_map(|n| self.0.get(*n).filter(|v| !v.is_null()))
    }

    /// A required account id, validated as a UserID.
    pub fn account(&self, names: &[&str], code: u32) -> Result<String, ApiError> {
        match self.get(names) {
            None => Err(ApiError::new(code, format!("{} is required", names[0]))),
            Some(v) => account_value(v, names[0], code),
        }
    }

    /// An optional account id.
    pub fn opt_account(&self, names: &[&str], code: u32) -> Result<Option<String>, ApiError> {
        self.get(names).map(|v| account_value(v, names[0], code)).transpose()
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

    /// An optional string.
    pub fn opt_string(&self, name: &str, code: u32) -> Result<Option<String>, ApiError> {
        match self.get(&[name]) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::new(code, format!("{name} must be a string"))),
        }
    }

    /// An optional unsigned 32-bit integer (numbers sent as strings accepted).
    pub fn opt_u32(&self, name: &str, code: u32) -> Result<Option<u32>, ApiError> {
        match self.get(&[name]) {
            None => Ok(None),
            Some(v) => lenient::as_u64(v)
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| ApiError::new(code, format!("{name} must be an integer in [0, 4294967295]"))),
        }
    }

    /// A required unsigned 32-bit integer.
    pub fn u32(&self, name: &str, code: u32) -> Result<u32, ApiError> {
        self.opt_u32(name, code)?.ok_or_else(|| ApiError::new(code, format!("{name} is required")))
    }

    /// An optional non-negative integer that fits an i64 (unix seconds, counts).
    pub fn opt_time(&self, names: &[&str], code: u32) -> Result<Option<i64>, ApiError> {
        match self.get(names) {
            None => Ok(None),
            Some(v) => lenient::as_i64(v)
                .filter(|n| *n >= 0)
                .map(Some)
                .ok_or_else(|| ApiError::new(code, format!("{} must be a non-negative integer", names[0]))),
        }
    }

    /// An optional array of strings.
    pub fn opt_strings(&self, name: &str, code: u32) -> Result<Vec<String>, ApiError> {
        match self.get(&[name]) {
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

fn account_value(v: &Value, name: &str, code: u32) -> Result<String, ApiError> {
    match v {
        Value::String(s) => {
            validate_user_id(s).map(|()| s.clone()).map_err(|why| ApiError::new(code, format!("{name}: {why}")))
        }
        _ => Err(ApiError::new(code, format!("{name} must be a string"))),
    }
}

/// Checks a UserID as Tencent does: 1 to 32 bytes, printable, no leading/trailing spaces.
pub fn validate_user_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("a UserID must not be empty".into());
    }
    if id.len() > MAX_USER_ID_BYTES {
        return Err(format!("UserID {id:?} is {} bytes, more than {MAX_USER_ID_BYTES}", id.len()));
    }
    if id.chars().any(char::is_control) || id.trim() != id {
        return Err(format!("UserID {id:?} holds control characters or surrounding spaces"));
    }
    Ok(())
}
