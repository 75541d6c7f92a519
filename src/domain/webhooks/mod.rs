//! Webhooks by the Standard Webhooks specification (v1): the messages a history group makes,
//! the signature, the retry schedule and what each answer of a receiver means; [`endpoints`]:
//! endpoints, the addresses a delivery may reach, the delivery log. No I/O here.

mod endpoints;

pub use endpoints::*;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{SecondsFormat, TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

use super::events::EventId;
use super::history::{Change, Group};

/// Every message type, in the order of `types` when all are meant.
pub const TYPES: [&str; 6] = [
    "hold.created",
    "hold.extended",
    "hold.released",
    "hold.expired",
    "booking.confirmed",
    "booking.cancelled",
];

/// One message, made once: every retry and replay sends these bytes under this id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its `webhook-id`.
    pub id: String,
    pub event: EventId,
    pub kind: &'static str,
    /// The highest history `seq` it covers.
    pub seq: i64,
    pub body: String,
    /// When it was made (its change happened), ms since the epoch.
    pub created_at_ms: i64,
    /// The span of the request that made it (a booking's, while traces are exported): its
    /// deliveries' spans are children of it.
    pub traceparent: Option<String>,
}

/// The message of one recorded group whose last record got `seq` (None for a change no message
/// tells: a block or an unblock).
pub fn message_of(event: EventId, group: &Group, seq: i64) -> Option<Message> {
    let kind = group.change.message_type()?;
    let booking = matches!(group.change, Change::Booked | Change::Cancelled);
    let mut data = json!({
        "eventId": event.0,
        "holdGroupId": group.hold,
        "userId": group.user_id,
        "seatCodes": group.seats.iter().map(|(s, _)| s).collect::<Vec<_>>(),
        "tiers": group.tiers.iter()
            .map(|l| json!({"code": l.code, "quantity": l.quantity}))
            .collect::<Vec<_>>(),
        "seq": seq,
    });
    if booking {
        data["bookingGroupId"] = json!(group.hold);
        data["totalPrice"] = json!(group.price_cents as f64 / 100.0);
    }
    if matches!(group.change, Change::Held | Change::Extended)
        && let Some(exp) = group.expires_at_ms
    {
        data["expiresAt"] = json!(rfc3339(exp));
    }
    let body = json!({"type": kind, "timestamp": rfc3339(group.at_ms), "data": data});
    Some(Message {
        id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
        event,
        kind,
        seq,
        body: body.to_string(),
        created_at_ms: group.at_ms,
        traceparent: group.traceparent.clone(),
    })
}

/// RFC 3339 in UTC with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// `v1,` + base64(HMAC-SHA256(the secret's bytes, `id.timestamp.body`)); None for a secret that
/// is not `whsec_` + base64.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header: one signature per secret, space-separated (the current
/// secret first; during a rotation also the previous one).
pub fn signature_header(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .filter_map(|s| sign(s, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The receiver answered with this status; `retry_after_s` from its `Retry-After`.
    Status {
        code: u16,
        retry_after_s: Option<u64>,
    },
    /// No answer: a timeout, a connection error, or an address refused.
    NoAnswer,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Try again this many ms from now.
    RetryIn(u64),
    /// Out of attempts.
    Failed,
    /// 410 Gone: the endpoint is disabled at once (the message waits for it to come back).
    Gone,
}

/// The decision after attempt number `attempt` (1-based) got `answer`: 2xx delivered, 410 gone,
/// anything else retried after `schedule[attempt - 1]` seconds lengthened by `jitter` (0..=0.1 of
/// it), or later when a 429 or 503 asked so with `Retry-After`; failed once the schedule is used
/// up.
pub fn next_step(answer: Answer, attempt: u32, schedule: &[u64], jitter: f64) -> Next {
    let retry_after = match answer {
        Answer::Status { code, .. } if (200..300).contains(&code) => return Next::Delivered,
        Answer::Status { code: 410, .. } => return Next::Gone,
        Answer::Status {
            code: 429 | 503,
            retry_after_s,
        } => retry_after_s,
        _ => None,
    };
    let Some(&delay_s) = schedule.get(attempt.saturating_sub(1) as usize) else {
        return Next::Failed;
    };
    let base = delay_s as f64 * 1000.0 * (1.0 + jitter.clamp(0.0, 0.1));
    let asked = retry_after.map_or(0.0, |s| s as f64 * 1000.0);
    Next::RetryIn(base.max(asked) as u64)
}

/// `Retry-After` as seconds from now: delay-seconds, or an HTTP date (`now_ms` is the clock).
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<u64> {
    let value = value.trim();
    if let Ok(s) = value.parse::<u64>() {
        return Some(s);
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(((at.timestamp_millis() - now_ms).max(0) / 1000) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::history::Status;
    use crate::domain::holds::{HoldGroupId, HoldStore};
    use crate::domain::tiers::TierLine;

    #[test]
    fn the_specifications_test_vector_is_signed_as_published() {
        // standard-webhooks/standard-webhooks, the published example.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let got = sign(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            got.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("not-a-secret", "m", 1, "{}"), None);
        let both = signature_header(&[secret, &new_secret()], "m", 1, "{}");
        assert_eq!(both.split(' ').count(), 2);
        assert!(both.starts_with("v1,"));
    }

    #[test]
    fn a_secret_is_32_random_bytes() {
        let s = new_secret();
        let bytes = STANDARD
            .decode(s.strip_prefix("whsec_").expect("prefix"))
            .expect("b64");
        assert_eq!(bytes.len(), 32);
        assert_ne!(s, new_secret());
    }

    #[test]
    fn answers_decide_the_next_step() {
        let schedule = [5, 300];
        let status = |code| Answer::Status {
            code,
            retry_after_s: None,
        };
        assert_eq!(next_step(status(200), 1, &schedule, 0.0), Next::Delivered);
        assert_eq!(next_step(status(204), 3, &schedule, 0.0), Next::Delivered);
        assert_eq!(next_step(status(410), 1, &schedule, 0.0), Next::Gone);
        assert_eq!(
            next_step(status(500), 1, &schedule, 0.0),
            Next::RetryIn(5000)
        );
        assert_eq!(
            next_step(status(301), 2, &schedule, 0.1),
            Next::RetryIn(330_000)
        );
        assert_eq!(
            next_step(Answer::NoAnswer, 2, &schedule, 0.05),
            Next::RetryIn(315_000)
        );
        assert_eq!(next_step(status(500), 3, &schedule, 0.0), Next::Failed);
        let asked = |code, s| Answer::Status {
            code,
            retry_after_s: Some(s),
        };
        assert_eq!(
            next_step(asked(429, 60), 1, &schedule, 0.0),
            Next::RetryIn(60_000)
        );
        assert_eq!(
            next_step(asked(503, 1), 1, &schedule, 0.0),
            Next::RetryIn(5000),
            "only when later"
        );
        assert_eq!(
            next_step(asked(500, 60), 1, &schedule, 0.0),
            Next::RetryIn(5000),
            "429/503 only"
        );
        assert_eq!(parse_retry_after(" 120 ", 0), Some(120));
        let now = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now.timestamp_millis()),
            Some(60)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
    }

    #[test]
    fn a_booking_message_carries_its_booking_and_price_and_a_hold_message_its_expiry() {
        let hold = HoldGroupId::new(EventId(3), HoldStore::Redis);
        let mut group = Group {
            change: Change::Booked,
            hold,
            user_id: "u1".into(),
            at_ms: 1_700_000_000_000,
            expires_at_ms: Some(1_700_000_300_000),
            seats: vec![("A1".into(), Status::Booked)],
            tiers: vec![TierLine {
                code: "GA".into(),
                quantity: 2,
            }],
            price_cents: 12_550,
            pending_ids: vec![],
            traceparent: None,
        };
        let m = message_of(EventId(3), &group, 42).expect("a message");
        let body: serde_json::Value = serde_json::from_str(&m.body).expect("json");
        assert_eq!(body["type"], "booking.confirmed");
        assert_eq!(body["timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(body["data"]["bookingGroupId"], hold.to_string());
        assert_eq!(body["data"]["totalPrice"], 125.5);
        assert_eq!(body["data"]["seq"], 42);
        assert_eq!(body["data"]["seatCodes"], json!(["A1"]));
        assert_eq!(
            body["data"]["tiers"],
            json!([{"code": "GA", "quantity": 2}])
        );
        assert!(body["data"].get("expiresAt").is_none());
        assert!(m.id.starts_with("msg_"));
        group.change = Change::Held;
        let body: serde_json::Value =
            serde_json::from_str(&message_of(EventId(3), &group, 1).expect("m").body)
                .expect("json");
        assert_eq!(body["type"], "hold.created");
        assert_eq!(body["data"]["expiresAt"], "2023-11-14T22:18:20.000Z");
        assert!(body["data"].get("bookingGroupId").is_none());
    }
}
