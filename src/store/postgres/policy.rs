//! The sales policy in Postgres (the fallback and the Postgres-only mode): the event's window and
//! Queue-it id, its channels, and an admission's live holds, decided by the Postgres clock with
//! the same rules as `lua/policy.lua` (`domain::policy`).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::events::EventId;
use crate::domain::holds::HoldAttempt;
use crate::domain::policy::{HoldCaller, SalesWindow, WindowState, queueit_names, windows_verdict};
use crate::error::{Result, UserLimitKind};

/// The event's policy as a hold reads it, with the Postgres clock.
pub(super) struct EventPolicyNow {
    pub window: SalesWindow,
    pub queueit_event_id: Option<String>,
    pub now: DateTime<Utc>,
}

/// Reads the event's window, Queue-it id and the time (None: no such event).
pub(super) async fn read_event_policy(
    tx: &mut PgConnection,
    event: EventId,
) -> Result<Option<EventPolicyNow>> {
    type Row = (
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<String>,
        DateTime<Utc>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT sales_start, sales_end, queueit_event_id, now() FROM events WHERE event_id = $1",
    )
    .bind(event.0)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(
        row.map(|(start, end, queueit_event_id, now)| EventPolicyNow {
            window: SalesWindow { start, end },
            queueit_event_id,
            now,
        }),
    )
}

/// Whether the caller's admission may be used for this event (a Queue-it token names the
/// event's Queue-it id when it has one, else its id).
pub(super) fn admitted(event: EventId, policy: &EventPolicyNow, caller: &HoldCaller) -> bool {
    match caller
        .admission
        .as_ref()
        .and_then(|a| a.queueit_event.as_deref())
    {
        None => true,
        Some(e) => queueit_names(e, policy.queueit_event_id.as_deref(), event.0),
    }
}

/// The policy's verdict on a hold of `seats` (and of tier units when `tiers`): a refusal
/// (`NotOpen` / `Closed`), or the seats of channels the caller is not in.
pub(super) async fn check_hold(
    tx: &mut PgConnection,
    event: EventId,
    policy: &EventPolicyNow,
    seats: &[String],
    tiers: bool,
    caller: &HoldCaller,
) -> Result<Result<Vec<String>, HoldAttempt>> {
    if caller.box_office {
        return Ok(Ok(Vec::new()));
    }
    #[derive(sqlx::FromRow)]
    struct Row {
        seat_code: String,
        channel: Option<String>,
        sales_start: Option<DateTime<Utc>>,
        sales_end: Option<DateTime<Utc>>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT s.seat_code, s.channel, c.sales_start, c.sales_end FROM seats s \
         LEFT JOIN event_channels c ON c.event_id = s.event_id AND c.channel = s.channel \
         WHERE s.event_id = $1 AND s.seat_code = ANY($2)",
    )
    .bind(event.0)
    .bind(seats)
    .fetch_all(&mut *tx)
    .await?;
    let mut windows = Vec::with_capacity(rows.len() + 1);
    let mut foreign = Vec::new();
    for r in rows {
        if !caller.may_hold(r.channel.as_deref()) {
            foreign.push(r.seat_code);
        }
        let own = SalesWindow {
            start: r.sales_start,
            end: r.sales_end,
        };
        windows.push(own.within(policy.window));
    }
    if tiers {
        windows.push(policy.window);
    }
    Ok(match windows_verdict(windows, policy.now) {
        WindowState::Open => Ok(foreign),
        WindowState::NotOpen(at) => Err(HoldAttempt::NotOpen {
            opens_at_ms: at.timestamp_millis(),
        }),
        WindowState::Closed(at) => Err(HoldAttempt::Closed {
            closed_at_ms: at.timestamp_millis(),
        }),
    })
}

/// The admission's live Postgres holds, counted under a lock of the admission (so two holds
/// with one admission take turns): the refusal when one more would pass its limit.
pub(super) async fn check_admission(
    tx: &mut PgConnection,
    event: EventId,
    caller: &HoldCaller,
) -> Result<Option<HoldAttempt>> {
    let Some(admission) = &caller.admission else {
        return Ok(None);
    };
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('adm:' || $1 || ':' || $2, 0))")
        .bind(event.0)
        .bind(&admission.buyer)
        .execute(&mut *tx)
        .await?;
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM holds \
         WHERE event_id = $1 AND admission = $2 AND held_until > now()",
    )
    .bind(event.0)
    .bind(&admission.buyer)
    .fetch_one(&mut *tx)
    .await?;
    let max = admission.max_live_holds;
    Ok((live + 1 > i64::from(max)).then(|| HoldAttempt::UserLimit {
        limit: UserLimitKind::AdmissionLiveHolds,
        max,
        current: live.clamp(0, i64::from(u32::MAX)) as u32,
    }))
}

/// The window a caller may buy a seat of `channel` in (its channel's within the event's), and
/// whether the caller may hold it at all: what best-available chooses among.
pub(super) fn seat_allowed(
    policy: &EventPolicyNow,
    caller: &HoldCaller,
    channel: Option<&str>,
    channel_window: SalesWindow,
) -> bool {
    caller.box_office
        || (caller.may_hold(channel)
            && channel_window.within(policy.window).state(policy.now) == WindowState::Open)
}

/// Best-available's window refusal: when no window the caller may buy in is open (the event's,
/// or one of its channels'), when the first of them opens, or else when the last closed.
pub(super) fn best_refusal(
    policy: &EventPolicyNow,
    caller: &HoldCaller,
    channel_windows: &[(String, SalesWindow)],
) -> Option<HoldAttempt> {
    if caller.box_office {
        return None;
    }
    let mut windows = vec![policy.window];
    windows.extend(
        channel_windows
            .iter()
            .filter(|(c, _)| caller.channels.contains(c))
            .map(|(_, w)| w.within(policy.window)),
    );
    let states: Vec<WindowState> = windows.iter().map(|w| w.state(policy.now)).collect();
    if states.contains(&WindowState::Open) {
        return None;
    }
    let opens = states
        .iter()
        .filter_map(|s| match s {
            WindowState::NotOpen(at) => Some(*at),
            _ => None,
        })
        .min();
    let closed = states
        .iter()
        .filter_map(|s| match s {
            WindowState::Closed(at) => Some(*at),
            _ => None,
        })
        .max();
    match (opens, closed) {
        (Some(at), _) => Some(HoldAttempt::NotOpen {
            opens_at_ms: at.timestamp_millis(),
        }),
        (None, Some(at)) => Some(HoldAttempt::Closed {
            closed_at_ms: at.timestamp_millis(),
        }),
        (None, None) => None,
    }
}
