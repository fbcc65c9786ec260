//! How secrets show in log lines and `Debug` output: never whole. A UserSig, the app's secret key, a
//! device's push token, a callback's signature or a provider's credential is printed by [`redact`] only:
//! its first four characters and its length (`eJwt…(212)`), enough to tell two apart or to match one a
//! user reports, not enough to use. A secret of fewer than [`MIN_SHOWN`] characters shows its length
//! only. [`Secret`] is a string whose `Debug` does this; [`scrub`] redacts a secret inside a longer text
//! (a provider's answer that echoes the token it was given).
//!
//! Every crate that logs a secret calls this module, so that there is one form to look for and one
//! place to change it (`docs/operations.md`, "Logs").

use std::borrow::Cow;
use std::fmt;

/// Characters shown from the start of a secret.
const SHOWN: usize = 4;
/// A secret shorter than this shows none of its characters.
pub const MIN_SHOWN: usize = 16;

/// A secret as a log line may show it ([`redact`]): formats without allocating, so a disabled log line
/// costs nothing.
#[derive(Clone, Copy)]
pub struct Redacted<'a>(&'a str);

/// `secret` as a log line may show it: `abcd…(64)`, or `…(8)` for one of fewer than [`MIN_SHOWN`]
/// characters. Use it as a field's value: `token = %redact(&token)`.
pub fn redact(secret: &str) -> Redacted<'_> {
    Redacted(secret)
}

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.0.chars().count();
        if len >= MIN_SHOWN {
            self.0.chars().take(SHOWN).try_for_each(|c| fmt::Write::write_char(f, c))?;
        }
        write!(f, "…({len})")
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `text` with every occurrence of `secret` replaced by its [`redact`]ed form. A secret shorter than
/// [`MIN_SHOWN`] is left alone: replacing a short string would mangle the text around it, and
/// the tokens and keys this guards are longer.
pub fn scrub<'a>(text: &'a str, secret: &str) -> Cow<'a, str> {
    if secret.chars().count() < MIN_SHOWN || !text.contains(secret) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.replace(secret, &redact(secret).to_string()))
}

/// A string that must not be printed whole (the app's secret key): `Debug` shows it [`redact`]ed and
/// there is no `Display`; [`Secret::expose`] hands out the value where it is used.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the code that signs or checks with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&redact(&self.0), f)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_shows_the_first_four_characters_and_the_length_only() {
        let key = "0123456789abcdef0123456789abcdef";
        assert_eq!(redact(key).to_string(), "0123…(32)");
        assert_eq!(format!("{:?}", redact(key)), "0123…(32)");
        assert_eq!(redact("short-secret").to_string(), "…(12)", "a short secret shows nothing of itself");
        assert_eq!(redact("").to_string(), "…(0)");
        assert_eq!(redact("ééééééééééééééééé").to_string(), "éééé…(17)", "characters, not bytes");
    }

    #[test]
    fn secret_debug_never_prints_the_value() {
        #[derive(Debug)]
        #[allow(dead_code, reason = "read through Debug only")]
        struct Config {
            key: Secret,
        }
        let key = "a-secret-key-of-some-length-1234";
        let printed = format!("{:?}", Config { key: key.into() });
        assert_eq!(printed, "Config { key: a-se…(32) }");
        assert_eq!(Secret::from(key).expose(), key);
    }

    #[test]
    fn scrub_replaces_a_long_secret_wherever_it_appears() {
        let token = "f00dfeedf00dfeedf00dfeed";
        let text = format!("410: {{\"reason\":\"Unregistered\",\"token\":\"{token}\"}} ({token})");
        assert_eq!(scrub(&text, token), "410: {\"reason\":\"Unregistered\",\"token\":\"f00d…(24)\"} (f00d…(24))");
        assert!(matches!(scrub("nothing here", token), Cow::Borrowed(_)));
        assert_eq!(scrub("a tok b", "tok"), "a tok b", "short secrets are left alone");
    }
}
