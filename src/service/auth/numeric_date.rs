//! The time claims of a JWT (`exp`, `nbf`), read as RFC 7519 NumericDates: seconds since the
//! epoch, a fraction allowed (`"exp": 1765100000.25`, what `time.time() + 300` signs).
//! jsonwebtoken reads them as integers only and refuses a fraction as a malformed claim, so the
//! verifiers switch its time checks off and call [`window`] after the signature has verified.

use serde_json::Value;

/// Why a token's time claims refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimeRefusal {
    /// `exp` missing, or `exp` / `nbf` not a number.
    Claims,
    Expired,
    NotYetValid,
}

/// The whole seconds during which a token is usable, leeway included: from `from` (inclusive)
/// until `until` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    pub from: u64,
    pub until: u64,
}

/// Checks `exp` (required) and `nbf` (when present) at `now` (seconds since the epoch) with
/// `leeway` seconds of clock skew, as jsonwebtoken does for integers: expired once `now` is past
/// `exp + leeway`, not yet valid while `now` is before `nbf - leeway`.
pub(super) fn window(
    exp: Option<&Value>,
    nbf: Option<&Value>,
    now: u64,
    leeway: u64,
) -> Result<Window, TimeRefusal> {
    let seconds = |v: &Value| v.as_f64().filter(|s| s.is_finite());
    let exp = exp.and_then(seconds).ok_or(TimeRefusal::Claims)?;
    let nbf = match nbf {
        None | Some(Value::Null) => None,
        Some(v) => Some(seconds(v).ok_or(TimeRefusal::Claims)?),
    };
    let (now, leeway) = (now as f64, leeway as f64);
    if exp + leeway < now {
        return Err(TimeRefusal::Expired);
    }
    if nbf.is_some_and(|nbf| nbf - leeway > now) {
        return Err(TimeRefusal::NotYetValid);
    }
    // Float to integer casts saturate: a negative bound is 0, a huge one u64::MAX.
    Ok(Window {
        from: nbf.map_or(0, |nbf| (nbf - leeway).ceil() as u64),
        until: (exp + leeway).floor() as u64,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_765_100_000;

    #[test]
    fn integers_and_fractions_are_both_numeric_dates() {
        for exp in [json!(NOW + 60), json!(NOW as f64 + 60.5)] {
            assert!(window(Some(&exp), None, NOW, 0).is_ok(), "{exp}");
        }
        let w = window(
            Some(&json!(NOW as f64 + 60.5)),
            Some(&json!(NOW as f64 - 0.5)),
            NOW,
            5,
        )
        .expect("valid");
        assert_eq!(
            w,
            Window {
                from: NOW - 5,
                until: NOW + 65
            }
        );
    }

    #[test]
    fn expiry_and_not_before_allow_the_leeway_and_no_more() {
        let exp = |e: f64| json!(e);
        assert!(window(Some(&exp(NOW as f64 - 29.5)), None, NOW, 30).is_ok());
        assert_eq!(
            window(Some(&exp(NOW as f64 - 30.5)), None, NOW, 30),
            Err(TimeRefusal::Expired)
        );
        let fine = json!(NOW + 600);
        assert!(window(Some(&fine), Some(&exp(NOW as f64 + 29.5)), NOW, 30).is_ok());
        assert_eq!(
            window(Some(&fine), Some(&exp(NOW as f64 + 30.5)), NOW, 30),
            Err(TimeRefusal::NotYetValid)
        );
    }

    #[test]
    fn a_missing_or_non_numeric_time_claim_is_a_wrong_claim() {
        let fine = json!(NOW + 600);
        for (exp, nbf) in [
            (None, None),
            (Some(json!("1765100600")), None),
            (Some(json!(null)), None),
            (Some(fine.clone()), Some(json!("soon"))),
            (Some(fine.clone()), Some(json!([1]))),
        ] {
            assert_eq!(
                window(exp.as_ref(), nbf.as_ref(), NOW, 0),
                Err(TimeRefusal::Claims),
                "{exp:?} {nbf:?}"
            );
        }
    }
}
