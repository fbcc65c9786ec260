//! UserSig verification (`duet_core::usersig::verify`, what every REST call and client login runs on
//! the caller's `usersig` and `identifier`), fed four ways, picked by the first byte:
//!
//! 0. the UserSig string itself, and the identifier, as they arrive;
//! 1. a zlib stream, encoded as a UserSig is (base64 with `*-_`): the inflater;
//! 2. a document, compressed and encoded: the JSON and field checks;
//! 3. a genuine UserSig from `generate` (its fields chosen by the input), which must verify to what it
//!    was made with, then edited: whatever still verifies must say the same thing.

#![no_main]

use std::io::Write as _;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use duet_core::usersig::{self, Claims, UserSigError};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
const SDKAPPID: u64 = 1_400_000_000;
const NOW: i64 = 1_780_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 4 {
        0 => raw(rest),
        1 => {
            let _ = verify("xiaojun", &outer(rest));
        }
        2 => {
            let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(rest).expect("writing to a Vec");
            let _ = verify("xiaojun", &outer(&encoder.finish().expect("writing to a Vec")));
        }
        _ => {
            if let Ok(genuine) = Genuine::arbitrary_take_rest(Unstructured::new(rest)) {
                genuine.check();
            }
        }
    }
});

fn verify(identifier: &str, sig: &str) -> Result<Claims, UserSigError> {
    let result = usersig::verify(KEY, SDKAPPID, identifier, sig, NOW);
    if let Ok(claims) = &result {
        assert_eq!((claims.identifier.as_str(), claims.sdkappid), (identifier, SDKAPPID));
        assert!(i128::from(claims.time) <= i128::from(NOW) + i128::from(usersig::MAX_CLOCK_SKEW_SECS));
        assert!(i128::from(NOW) <= i128::from(claims.time) + i128::from(claims.expire));
    }
    result
}

/// The identifier (up to the first `\n`) and the UserSig (the rest), as text.
fn raw(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (identifier, sig) = text.split_once('\n').unwrap_or(("xiaojun", &text));
    let _ = verify(identifier, sig);
}

/// Bytes encoded as a UserSig's outer layer.
fn outer(bytes: &[u8]) -> String {
    STANDARD.encode(bytes).replace('+', "*").replace('/', "-").replace('=', "_")
}

#[derive(Debug, Arbitrary)]
struct Genuine {
    identifier: String,
    /// Seconds before now.
    age: u32,
    expire: u32,
    userbuf: Option<Vec<u8>>,
    edits: Vec<Edit>,
}

#[derive(Debug, Arbitrary)]
enum Edit {
    Flip { at: u16, bits: u8 },
    Insert { at: u16, byte: u8 },
    Remove { at: u16 },
    Truncate { len: u16 },
}

impl Genuine {
    fn check(&self) {
        let time = NOW - i64::from(self.age);
        let (expire, userbuf) = (i64::from(self.expire), self.userbuf.as_deref());
        let sig = usersig::generate(KEY, SDKAPPID, &self.identifier, time, expire, userbuf);
        let made = Claims {
            identifier: self.identifier.clone(),
            sdkappid: SDKAPPID,
            time,
            expire,
            userbuf: userbuf.map(<[u8]>::to_vec),
        };
        let small = self.identifier.len() <= 256 && userbuf.is_none_or(|b| b.len() <= 4096);
        match verify(&self.identifier, &sig) {
            Ok(claims) => assert_eq!(claims, made),
            // Only what generate cannot help: expired, or too large a document.
            Err(UserSigError::Expired) => assert!(i64::from(self.age) > expire),
            Err(e) => assert!(!small, "a genuine UserSig refused: {e:?}"),
        }
        let mut bytes = sig.into_bytes();
        for edit in &self.edits {
            let at = |i: u16| usize::from(i) % (bytes.len() + 1);
            match *edit {
                Edit::Flip { at: i, bits } => {
                    let i = usize::from(i) % bytes.len().max(1);
                    if let Some(b) = bytes.get_mut(i) {
                        *b ^= bits;
                    }
                }
                Edit::Insert { at: i, byte } => bytes.insert(at(i), byte),
                Edit::Remove { at: i } => {
                    if !bytes.is_empty() {
                        bytes.remove(usize::from(i) % bytes.len());
                    }
                }
                Edit::Truncate { len } => bytes.truncate(at(len)),
            }
        }
        // An edited UserSig that still verifies (padding, bits after the last deflate block) says exactly
        // what the genuine one said.
        if let Ok(claims) = verify(&self.identifier, &String::from_utf8_lossy(&bytes)) {
            assert_eq!(claims, made);
        }
    }
}
