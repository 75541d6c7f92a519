//! Webhook endpoints: what a client may ask for (URL, types, events, description), the
//! addresses a delivery may never reach, and the delivery log as a client reads it. No I/O here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::TYPES;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Longest description.
pub const MAX_DESCRIPTION_LEN: usize = 1000;
/// Most event ids one endpoint may name.
pub const MAX_EVENT_IDS: usize = 1000;

/// An endpoint as stored (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: uuid::Uuid,
    pub url: String,
    /// None: every type.
    pub types: Option<Vec<String>>,
    /// None: every event.
    pub event_ids: Option<Vec<i64>>,
    pub description: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at_ms: i64,
}

/// A new endpoint, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub url: String,
    pub types: Option<Vec<String>>,
    pub event_ids: Option<Vec<i64>>,
    pub description: String,
}

/// A change of an endpoint: each field present is set (`Some(None)`: back to "all").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub types: Option<Option<Vec<String>>>,
    pub event_ids: Option<Option<Vec<i64>>>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
}

/// Checks a URL's shape: `http` or `https`, a host, no credentials, at most [`MAX_URL_LEN`].
/// (Where it points is checked apart, by resolving it: [`is_public`].)
pub fn check_url(raw: &str) -> Result<url::Url, String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!("url must be at most {MAX_URL_LEN} characters"));
    }
    let url = url::Url::parse(raw).map_err(|e| format!("url is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("url must be http or https".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("url must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("url must not carry credentials".into());
    }
    Ok(url)
}

/// Checks a `types` list: known types, no repeats, at least one (None means all).
pub fn check_types(types: Option<Vec<String>>) -> Result<Option<Vec<String>>, String> {
    let Some(types) = types else {
        return Ok(None);
    };
    if types.is_empty() {
        return Err("types must name at least one type (leave it out for all)".into());
    }
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        if !TYPES.contains(&t.as_str()) {
            return Err(format!(
                "types: unknown type {t:?} (one of {})",
                TYPES.join(", ")
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(Some(out))
}

/// Checks an `eventIds` list: 1 to [`MAX_EVENT_IDS`] positive ids (None means all).
pub fn check_event_ids(ids: Option<Vec<i64>>) -> Result<Option<Vec<i64>>, String> {
    let Some(mut ids) = ids else {
        return Ok(None);
    };
    if ids.is_empty() || ids.len() > MAX_EVENT_IDS {
        return Err(format!(
            "eventIds must name 1 to {MAX_EVENT_IDS} events (leave it out for all)"
        ));
    }
    if ids.iter().any(|&id| id < 1) {
        return Err("eventIds must be positive event ids".into());
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(Some(ids))
}

/// Checks a description: at most [`MAX_DESCRIPTION_LEN`] characters.
pub fn check_description(d: Option<String>) -> Result<String, String> {
    let d = d.unwrap_or_default();
    if d.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(format!(
            "description must be at most {MAX_DESCRIPTION_LEN} characters"
        ));
    }
    Ok(d)
}

/// Whether a delivery may reach this address: not loopback, private, link-local, shared (CGNAT),
/// documentation, benchmarking, multicast, broadcast, reserved or unspecified, in IPv4 or IPv6
/// (an IPv4-mapped or -compatible IPv6 address counts as its IPv4 address).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped().or_else(|| compatible_v4(v6)) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn compatible_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    (s[..6] == [0; 6] && v6 != Ipv6Addr::UNSPECIFIED && v6 != Ipv6Addr::LOCALHOST)
        .then(|| Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments (Teredo, ORCHID, ...)
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64
        || s[0] == 0x0100) // discard-only
}

/// One delivery attempt, as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at_ms: i64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u32,
}

/// One message to one endpoint, with its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub created_at_ms: i64,
    /// When it is due next (None once delivered or failed).
    pub next_attempt_at_ms: Option<i64>,
    pub attempts: Vec<Attempt>,
}

/// The delivery statuses a listing may filter on.
pub const DELIVERY_STATUSES: [&str; 3] = ["pending", "delivered", "failed"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_reachable() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "2001:db8::1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn endpoint_fields_are_checked() {
        assert!(check_url("https://example.com/hooks").is_ok());
        assert!(check_url("ftp://example.com/").is_err());
        assert!(check_url("https://user:pw@example.com/").is_err());
        assert!(check_url("not a url").is_err());
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN))).is_err());
        assert_eq!(check_types(None), Ok(None));
        assert!(check_types(Some(vec![])).is_err());
        assert!(check_types(Some(vec!["hold.nope".into()])).is_err());
        assert_eq!(
            check_types(Some(vec!["hold.created".into(), "hold.created".into()])),
            Ok(Some(vec!["hold.created".to_string()]))
        );
        assert_eq!(check_event_ids(Some(vec![3, 1, 3])), Ok(Some(vec![1, 3])));
        assert!(check_event_ids(Some(vec![0])).is_err());
        assert!(check_event_ids(Some(vec![])).is_err());
        assert!(check_description(Some("x".repeat(1001))).is_err());
        assert_eq!(check_description(None), Ok(String::new()));
    }
}
