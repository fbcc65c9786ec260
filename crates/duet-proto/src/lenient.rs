//! Lenient scalar decoding: real Tencent clients send numbers as strings (`"MsgReadTime":"1600000000"`) and
//! strings as numbers. These helpers accept both where the meaning is unambiguous.

use serde::{Deserialize, Deserializer, de::Error};
use serde_json::Value;

/// A JSON value read as an unsigned integer: a non-negative integral number, or a string holding one.
pub(crate) fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            // 12.0 is an integer too; 12.5 and -1 are not.
            n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64).map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON value read as a signed integer.
pub(crate) fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON value read as a float.
pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok().filter(|f: &f64| f.is_finite()),
        _ => None,
    }
}

pub(crate) fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = Value::deserialize(d)?;
    as_u64(&v).ok_or_else(|| D::Error::custom(format!("expected a non-negative integer, found {v}")))
}

pub(crate) fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    as_i64(&v).ok_or_else(|| D::Error::custom(format!("expected an integer, found {v}")))
}

pub(crate) fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = Value::deserialize(d)?;
    as_f64(&v).ok_or_else(|| D::Error::custom(format!("expected a number, found {v}")))
}

/// A string field that some clients send as a number (e.g. `Data` of a face element).
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Ok(String::new()),
        v => Err(D::Error::custom(format!("expected a string, found {v}"))),
    }
}
