//! Who may buy what, and when: sales windows (on the event and on each channel), sales channels,
//! and what a hold's caller brings to them (its channels, its admission). Pure rules: the hold
//! script (`lua/policy.lua`) and the Postgres fallback enforce the same ones, and the tests check
//! them against each other.

use chrono::{DateTime, Datelike, Utc};

use super::fields::is_code;

/// Longest channel code.
pub const MAX_CHANNEL_LEN: usize = 64;
/// Most channels of one event, and of one caller.
pub const MAX_CHANNELS: usize = 20;
/// Longest Queue-it event id.
pub const MAX_QUEUEIT_EVENT_LEN: usize = 100;

/// A sales window: open from `start` (inclusive) until `end` (exclusive); a bound left out is
/// open-ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SalesWindow {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// Where `now` stands in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    Open,
    /// Not open yet: opens then.
    NotOpen(DateTime<Utc>),
    /// Closed since then.
    Closed(DateTime<Utc>),
}

impl SalesWindow {
    /// This window with each bound it leaves out taken from `outer` (a channel's window inside
    /// its event's).
    pub fn within(self, outer: SalesWindow) -> SalesWindow {
        SalesWindow {
            start: self.start.or(outer.start),
            end: self.end.or(outer.end),
        }
    }

    pub fn state(&self, now: DateTime<Utc>) -> WindowState {
        match (self.start, self.end) {
            (Some(start), _) if now < start => WindowState::NotOpen(start),
            (_, Some(end)) if now >= end => WindowState::Closed(end),
            _ => WindowState::Open,
        }
    }

    pub fn is_unbounded(&self) -> bool {
        self.start.is_none() && self.end.is_none()
    }

    /// The problem with the window, if any (`salesEnd` must come after `salesStart`).
    pub fn problem(&self) -> Option<String> {
        match (self.start, self.end) {
            (Some(s), Some(e)) if e <= s => Some("salesEnd must be after salesStart".into()),
            _ => None,
        }
    }
}

/// Whether a Queue-it token's `e` names the event: its `queueitEventId` when it has one, else
/// its id (`lua/policy.lua`'s `policy_admitted` is the same rule in Redis).
pub fn queueit_names(e: &str, alias: Option<&str>, event_id: i64) -> bool {
    match alias {
        Some(alias) => e == alias,
        None => e == event_id.to_string(),
    }
}

/// The verdict on a hold of seats with these windows (one per seat asked, or the event's for
/// tier units): refused as not open when any is not open yet (with the latest opening among
/// them), else as closed when any has closed (with the earliest closing).
pub fn windows_verdict(
    windows: impl IntoIterator<Item = SalesWindow>,
    now: DateTime<Utc>,
) -> WindowState {
    let (mut opens, mut closed) = (None::<DateTime<Utc>>, None::<DateTime<Utc>>);
    for w in windows {
        match w.state(now) {
            WindowState::Open => {}
            WindowState::NotOpen(at) => opens = Some(opens.map_or(at, |o| o.max(at))),
            WindowState::Closed(at) => closed = Some(closed.map_or(at, |c| c.min(at))),
        }
    }
    match (opens, closed) {
        (Some(at), _) => WindowState::NotOpen(at),
        (None, Some(at)) => WindowState::Closed(at),
        (None, None) => WindowState::Open,
    }
}

/// A sales window bound as the client wrote it: RFC 3339, or absent.
pub fn sales_bound(
    field: &str,
    text: Option<&str>,
    problems: &mut Vec<String>,
) -> Option<DateTime<Utc>> {
    let text = text?;
    match parse_instant(text) {
        Some(t) => Some(t),
        None => {
            problems.push(format!(
                "{field} must be an RFC 3339 timestamp, e.g. 2030-01-10T10:00:00Z"
            ));
            None
        }
    }
}

/// An RFC 3339 instant in the years 1-9999 (UTC).
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
        .filter(|d| (1..=9999).contains(&d.year()))
}

/// An event's sales policy as `PATCH /events/{id}` changes it: each field left out keeps its
/// value, `null` removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventPolicyPatch {
    pub sales_start: Option<Option<DateTime<Utc>>>,
    pub sales_end: Option<Option<DateTime<Utc>>>,
    pub queueit_event_id: Option<Option<String>>,
}

/// An event's sales policy as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventPolicy {
    pub window: SalesWindow,
    pub queueit_event_id: Option<String>,
}

impl EventPolicy {
    /// The policy after `patch`, or the problems with it.
    pub fn patched(&self, patch: &EventPolicyPatch) -> Result<EventPolicy, Vec<String>> {
        let next = EventPolicy {
            window: SalesWindow {
                start: patch.sales_start.unwrap_or(self.window.start),
                end: patch.sales_end.unwrap_or(self.window.end),
            },
            queueit_event_id: match &patch.queueit_event_id {
                Some(v) => v.clone(),
                None => self.queueit_event_id.clone(),
            },
        };
        let mut problems: Vec<String> = next.window.problem().into_iter().collect();
        if let Some(id) = &next.queueit_event_id
            && !is_code(id, MAX_QUEUEIT_EVENT_LEN)
        {
            problems.push(format!(
                "queueitEventId must be 1-{MAX_QUEUEIT_EVENT_LEN} letters, digits, '.', '_' or '-'"
            ));
        }
        if problems.is_empty() {
            Ok(next)
        } else {
            Err(problems)
        }
    }
}

/// An event's whole sales policy, as the Redis cache holds it: the window, the Queue-it id,
/// each channel's window and every seat allocated to a channel, at one `version`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicySnapshot {
    pub version: i64,
    pub policy: EventPolicy,
    /// Each channel with its own bounds (those left out are the event's), in creation order.
    pub channels: Vec<(String, SalesWindow)>,
    /// (seat code, channel) of every seat allocated to a channel.
    pub seats: Vec<(String, String)>,
    /// (channel, tier code, units) of every tier allocation, channels in creation order.
    pub tiers: Vec<(String, String, u32)>,
}

impl PolicySnapshot {
    /// The fields of `{e}:policy` (see `lua/policy.lua`); none for an event without a policy,
    /// so its holds read an absent key.
    pub fn script_fields(&self) -> Vec<(String, String)> {
        let ms = |t: DateTime<Utc>| t.timestamp_millis().to_string();
        let mut fields = Vec::new();
        let window = self.policy.window;
        fields.extend(window.start.map(|t| ("s".to_string(), ms(t))));
        fields.extend(window.end.map(|t| ("e".to_string(), ms(t))));
        for (code, w) in &self.channels {
            fields.extend(w.start.map(|t| (format!("s:{code}"), ms(t))));
            fields.extend(w.end.map(|t| (format!("e:{code}"), ms(t))));
        }
        if !self.seats.is_empty() {
            fields.push(("c".into(), "1".into()));
        }
        // A tier's allocations in one field, ta:<tier> = "presale=4,vip=2" (lua/pools.lua).
        let mut allocations: Vec<(String, Vec<(String, u32)>)> = Vec::new();
        for (channel, tier, units) in &self.tiers {
            match allocations.iter_mut().find(|(t, _)| t == tier) {
                Some((_, parts)) => parts.push((channel.clone(), *units)),
                None => allocations.push((tier.clone(), vec![(channel.clone(), *units)])),
            }
        }
        for (tier, parts) in allocations {
            fields.push((format!("ta:{tier}"), format_units(&parts)));
        }
        if let Some(q) = &self.policy.queueit_event_id {
            fields.push(("q".into(), q.clone()));
        }
        fields
    }
}

/// The channel part of a hold's or booking's units of one tier, as the stores keep it:
/// `"presale=3,vip=1"` (channel codes have no `=` or `,`); `""` when all were open units.
pub fn format_units(parts: &[(String, u32)]) -> String {
    let mut s = String::new();
    for (ch, q) in parts.iter().filter(|(_, q)| *q > 0) {
        if !s.is_empty() {
            s.push(',');
        }
        s.push_str(ch);
        s.push('=');
        s.push_str(&q.to_string());
    }
    s
}

/// Reads [`format_units`] back (a malformed part is skipped).
pub fn parse_units(text: &str) -> Vec<(String, u32)> {
    text.split(',')
        .filter_map(|part| {
            let (ch, q) = part.split_once('=')?;
            Some((ch.to_string(), q.parse().ok()?))
        })
        .collect()
}

/// Whether a channel code is well formed: 1-64 letters, digits, `.`, `_` or `-`.
pub fn is_channel_code(code: &str) -> bool {
    is_code(code, MAX_CHANNEL_LEN)
}

/// What the sales policy needs to know of the caller of a hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoldCaller {
    /// An admin (a box office): holds seats of any channel at any time (never a blocked one).
    pub box_office: bool,
    /// The channels the caller is in.
    pub channels: Vec<String>,
    /// The admission the hold is taken under, when admission is on for this caller.
    pub admission: Option<AdmissionUse>,
}

impl HoldCaller {
    /// A box office: any channel, any time, no admission (admins, copies of held seats).
    pub fn box_office() -> Self {
        HoldCaller {
            box_office: true,
            ..HoldCaller::default()
        }
    }

    /// The caller's channels as the hold script reads them: `*` for a box office, else the
    /// codes between commas (`,presale,vip,`; `,` for none), so a lookup is one substring find.
    pub fn script_channels(&self) -> String {
        if self.box_office {
            return "*".into();
        }
        let mut s = String::from(",");
        for c in &self.channels {
            s.push_str(c);
            s.push(',');
        }
        s
    }

    /// Whether the caller may hold a seat of `channel` (None: an open seat).
    pub fn may_hold(&self, channel: Option<&str>) -> bool {
        self.box_office || channel.is_none_or(|c| self.channels.iter().any(|m| m == c))
    }
}

/// One use of an admission token: whose it is and how many live holds it may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionUse {
    /// The token's buyer: a JWT's `sub`, a Queue-it token's `q`.
    pub buyer: String,
    pub max_live_holds: u32,
    /// A Queue-it token's `e`: must be the event's `queueitEventId`, or its id when it has none.
    pub queueit_event: Option<String>,
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
