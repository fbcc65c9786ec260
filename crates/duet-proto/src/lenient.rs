//! Lenient scalar decoding: real Tencent clients send numbers as strings (`"MsgReadTime":"1600000000"`),
//! strings as numbers, and `""` for optional fields they leave unset. These helpers accept all three where
//! the meaning is unambiguous.

use serde::{Deserialize, Deserializer, de::Error};
use serde_json::Value;

/// Whether an optional field's value means "not set": JSON `null` or `""`, whatever type the field has.
/// The one rule for every optional field of a REST request (`rest::fields` lists the fields whose `""` is a
/// value instead) and for the optional numbers of message elements ([`u64_or`]).
pub(crate) fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

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

/// An optional unsigned integer that is `DEFAULT` when unset ([`is_unset`]: null or `""`); serde's
/// `default` covers the field being left out.
pub(crate) fn u64_or<'de, const DEFAULT: u64, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = Value::deserialize(d)?;
    if is_unset(&v) {
        return Ok(DEFAULT);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Optional {
        #[serde(default = "seven", deserialize_with = "u64_or::<7, _>")]
        n: u64,
    }

    fn seven() -> u64 {
        7
    }

    #[test]
    fn an_optional_number_unset_takes_its_default() {
        for body in [json!({}), json!({"n": ""}), json!({"n": null})] {
            assert_eq!(serde_json::from_value::<Optional>(body.clone()).unwrap().n, 7, "{body}");
        }
        assert_eq!(serde_json::from_value::<Optional>(json!({"n": "3"})).unwrap().n, 3);
        for bad in [json!({"n": " "}), json!({"n": -1}), json!({"n": "x"})] {
            assert!(serde_json::from_value::<Optional>(bad.clone()).is_err(), "{bad}");
        }
        assert!(is_unset(&json!("")) && is_unset(&json!(null)));
        assert!(!is_unset(&json!(" ")) && !is_unset(&json!(0)) && !is_unset(&json!([])) && !is_unset(&json!({})));
    }
}
