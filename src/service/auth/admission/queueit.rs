//! Queue-it KnownUser tokens (`queueittoken`): `e_<event>~q_<queue id>~ts_<expiry>~...~h_<hash>`,
//! fields split by `~`, each `key_value`, any order, other fields allowed, `h` last. `h` is the
//! hex HMAC-SHA256, keyed with the customer's secret key, of the token before `~h_`; it is
//! checked (in constant time) before any field is believed. Pure: the time is passed in.
//!
//! `e` is not compared with the event here: an event may name its Queue-it event id
//! (`queueitEventId`), which only the hold knows, so the token's `e` travels with the admission.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{Admission, AdmissionRefused};

/// Longest accepted `q` (the buyer) and `e`.
const MAX_FIELD_CHARS: usize = 128;

/// The HMAC keyed with the secret key, cloned for each token (the key is hashed once).
#[derive(Clone)]
pub(super) struct QueueitKey(Hmac<Sha256>);

impl QueueitKey {
    pub(super) fn new(secret_key: &str) -> anyhow::Result<Self> {
        let mac = Hmac::<Sha256>::new_from_slice(secret_key.as_bytes())
            .map_err(|_| anyhow::anyhow!("admission.queueit.secret_key: not a usable HMAC key"))?;
        Ok(QueueitKey(mac))
    }

    /// Verifies a token at `now` (seconds since the epoch): its hash, then its expiry, then
    /// its buyer and event.
    pub(super) fn verify(&self, token: &str, now: u64) -> Result<Admission, AdmissionRefused> {
        let (signed, hash) = token
            .rsplit_once("~h_")
            .ok_or(AdmissionRefused::Malformed)?;
        if hash.contains('~') {
            // `h` is the last field.
            return Err(AdmissionRefused::Malformed);
        }
        let digest = hex_digest(hash).ok_or(AdmissionRefused::Signature)?;
        let mut mac = self.0.clone();
        mac.update(signed.as_bytes());
        mac.verify_slice(&digest)
            .map_err(|_| AdmissionRefused::Signature)?;

        let (mut event, mut queue_id, mut expires) = (None, None, None);
        for field in signed.split('~') {
            let (key, value) = field.split_once('_').ok_or(AdmissionRefused::Malformed)?;
            let slot = match key {
                "e" => &mut event,
                "q" => &mut queue_id,
                "ts" => &mut expires,
                // A second hash inside the signed part: not a token Queue-it makes.
                "h" => return Err(AdmissionRefused::Malformed),
                _ => continue,
            };
            if slot.replace(value).is_some() {
                // The same field twice: which one counts would be a guess.
                return Err(AdmissionRefused::Malformed);
            }
        }
        let expires: u64 = expires
            .and_then(|ts| ts.parse().ok())
            .ok_or(AdmissionRefused::Malformed)?;
        if expires <= now {
            return Err(AdmissionRefused::Expired);
        }
        let field = |v: Option<&str>| {
            v.filter(|v| {
                (1..=MAX_FIELD_CHARS).contains(&v.chars().count())
                    && !v.chars().any(char::is_control)
            })
            .map(str::to_string)
            .ok_or(AdmissionRefused::Claims)
        };
        Ok(Admission {
            buyer: field(queue_id)?,
            queueit_event: Some(field(event)?),
        })
    }
}

/// The 32 bytes of a 64-digit hex string, either case.
fn hex_digest(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The vectors below were computed outside this code, with Python's hmac module:
    //   python3 -c 'import hmac,hashlib;print(hmac.new(b"queueit-test-secret-1b9f0c6e-5a7d-4c21",
    //     b"<the token before ~h_>",hashlib.sha256).hexdigest())'
    const SECRET: &str = "queueit-test-secret-1b9f0c6e-5a7d-4c21";
    const NOW: u64 = 1_750_000_000;
    /// Expires 2100-01-01 (ts 4102444800).
    const VALID: &str = "e_springgig~q_7b1c4e2a-5d3f-4e8a-9c1b-2f6d8e0a4b3c~ts_4102444800~ce_true~rt_queue\
                         ~h_8249cf32ec1db550da8d00ccc670b2d0db6cbf11e50def3e519dd5e4231a9e4e";
    /// Expired 2023-11-14 (ts 1700000000).
    const EXPIRED: &str = "e_springgig~q_7b1c4e2a-5d3f-4e8a-9c1b-2f6d8e0a4b3c~ts_1700000000~ce_true~rt_queue\
                           ~h_833215c10876518b1f5522c083ed05ea9b628307f65b558e4bb387e2f973a245";
    /// Fields in another order, and one this code does not read (`cv`).
    const REORDERED: &str = "q_buyer-42~ts_4102444800~cv_20~e_springgig~rt_idle\
                             ~h_e00324cfb7d9c20eb828ea19e8a3831ee5143df0b9762ef37b90272a6c554ed1";
    /// Correctly signed, but without `q`.
    const NO_QUEUE_ID: &str = "e_springgig~ts_4102444800~ce_true~rt_queue\
                               ~h_2c35d1ca4320133a781c99b038f55b64ffa4463d30f20dc2b412c17b4087540f";

    fn verify(token: &str) -> Result<Admission, AdmissionRefused> {
        QueueitKey::new(SECRET).expect("key").verify(token, NOW)
    }

    #[test]
    fn a_token_signed_with_the_secret_key_admits_its_queue_id() {
        assert_eq!(
            verify(VALID),
            Ok(Admission {
                buyer: "7b1c4e2a-5d3f-4e8a-9c1b-2f6d8e0a4b3c".into(),
                queueit_event: Some("springgig".into()),
            })
        );
        assert_eq!(
            verify(REORDERED),
            Ok(Admission {
                buyer: "buyer-42".into(),
                queueit_event: Some("springgig".into()),
            })
        );
    }

    #[test]
    fn the_hash_is_read_in_either_case() {
        let (signed, hash) = VALID.rsplit_once("~h_").expect("hash");
        let upper = format!("{signed}~h_{}", hash.to_uppercase());
        assert!(verify(&upper).is_ok());
    }

    #[test]
    fn an_expired_token_is_refused() {
        assert_eq!(verify(EXPIRED), Err(AdmissionRefused::Expired));
        // The same token is fine before its expiry.
        let key = QueueitKey::new(SECRET).expect("key");
        assert!(key.verify(EXPIRED, 1_699_999_999).is_ok());
        assert_eq!(
            key.verify(EXPIRED, 1_700_000_000),
            Err(AdmissionRefused::Expired)
        );
    }

    #[test]
    fn a_changed_field_or_hash_is_refused() {
        let tampered = VALID.replace("q_7b1c4e2a", "q_00000000");
        assert_eq!(verify(&tampered), Err(AdmissionRefused::Signature));
        let later = VALID.replace("ts_4102444800", "ts_4102444801");
        assert_eq!(verify(&later), Err(AdmissionRefused::Signature));
        let other_event = VALID.replace("e_springgig", "e_othergig");
        assert_eq!(verify(&other_event), Err(AdmissionRefused::Signature));
        let wrong_hash = VALID.replace("~h_8249", "~h_8248");
        assert_eq!(verify(&wrong_hash), Err(AdmissionRefused::Signature));
        let short_hash = &VALID[..VALID.len() - 2];
        assert_eq!(verify(short_hash), Err(AdmissionRefused::Signature));
        let other_key = QueueitKey::new("another-secret").expect("key");
        assert_eq!(
            other_key.verify(VALID, NOW),
            Err(AdmissionRefused::Signature)
        );
    }

    #[test]
    fn a_token_without_its_queue_id_or_its_shape_is_refused() {
        assert_eq!(verify(NO_QUEUE_ID), Err(AdmissionRefused::Claims));
        for bad in [
            "",
            "e_springgig~q_x~ts_4102444800",
            "h_8249cf32ec1db550da8d00ccc670b2d0db6cbf11e50def3e519dd5e4231a9e4e",
            &format!("{VALID}~rt_queue"),
        ] {
            assert_eq!(verify(bad), Err(AdmissionRefused::Malformed), "{bad:?}");
        }
    }
}
