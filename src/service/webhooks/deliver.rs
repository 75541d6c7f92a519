//! The delivery loop, one per instance: claims due messages (one instance per message, under a
//! lease), signs and sends each, records every attempt and its next step, and keeps the backlog
//! gauges. Woken by the history flush when it queued messages, and every quarter second.
//!
//! An endpoint's messages of one claim go in order: the oldest alone first, and only once it
//! was delivered the rest, a few at a time; after a failure nothing more is sent to it (a 410
//! disables it at once, a receiver that is down is not hammered), and the rest waits behind the
//! failed message's next attempt, unattempted.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::watch;
use tracing::warn;

use tracing::Instrument;

use super::super::Seatlock;
use crate::domain::webhooks::{Next, next_step, signature_header};
use crate::store::postgres::{AttemptOutcome, Claimed};
use crate::telemetry::{self, WebhookOutcome};

/// Most endpoints one claim takes (and delivers to at once).
const ENDPOINTS: usize = 16;
/// Most deliveries in flight to one endpoint, once its oldest message of a claim got through.
const PER_ENDPOINT: usize = 32;
/// Most messages of one endpoint one claim takes: the head and one wave, so that the lease
/// (two timeouts) covers the slowest claim and no other instance claims them again meanwhile.
const PER_CLAIM: usize = PER_ENDPOINT + 1;
const TICK: Duration = Duration::from_millis(250);
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

impl Seatlock {
    /// Delivers until `stop` turns true (then lets the deliveries in flight finish).
    ///
    /// Each endpoint's share of a claim is delivered, recorded and its endpoint released on a
    /// task of its own: a slow or silent receiver holds up only its own endpoint, and a claim
    /// for the others goes out as soon as one of them is done.
    pub async fn run_webhook_deliveries(self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backlog_at = Instant::now();
        let mut busy = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.webhooks_wake.notified() => {}
                Some(_) = busy.join_next(), if !busy.is_empty() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            while busy.try_join_next().is_some() {}
            while busy.len() < ENDPOINTS {
                let groups = self.claim_webhooks(ENDPOINTS - busy.len()).await;
                if groups.is_empty() {
                    break;
                }
                for group in groups {
                    let this = self.clone();
                    busy.spawn(async move { this.deliver_group(group).await });
                }
            }
            if backlog_at.elapsed() >= BACKLOG_EVERY {
                backlog_at = Instant::now();
                match self.pg.fetch_webhook_backlog().await {
                    Ok(b) => telemetry::record_webhook_backlog(
                        b.pending,
                        b.oldest_pending_s,
                        b.endpoints_disabled,
                    ),
                    Err(e) => warn!(error = %e, "webhooks: could not read the backlog"),
                }
            }
        }
        while busy.join_next().await.is_some() {}
    }

    /// Claims due messages of at most `endpoints` endpoints (none of them leased by another
    /// delivery), grouped by endpoint, oldest first.
    async fn claim_webhooks(&self, endpoints: usize) -> Vec<Vec<Claimed>> {
        // The head message, then one wave of the rest, may each run to the timeout.
        let lease = self.settings.webhooks.timeout() * 2 + Duration::from_secs(5);
        let claim = self
            .pg
            .claim_deliveries(endpoints as i64, PER_CLAIM as i64, lease);
        let claimed = match claim.await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "webhooks: could not claim deliveries");
                return Vec::new();
            }
        };
        let mut groups: Vec<Vec<Claimed>> = Vec::new();
        for c in claimed {
            match groups
                .iter_mut()
                .find(|g| g[0].endpoint_id == c.endpoint_id)
            {
                Some(g) => g.push(c),
                None => groups.push(vec![c]),
            }
        }
        groups
    }

    /// One endpoint's share of a claim: delivered, recorded, and the endpoint released.
    async fn deliver_group(&self, group: Vec<Claimed>) {
        let Some(endpoint) = group.first().map(|c| c.endpoint_id) else {
            return;
        };
        let done = self.deliver_to_endpoint(group).await;
        let disable_after = Duration::from_secs(self.settings.webhooks.disable_after_hours * 3600);
        if let Err(e) = self
            .pg
            .record_deliveries(&done.outcomes, disable_after)
            .await
        {
            // The lease runs out and the messages are sent again: at least once, never lost.
            warn!(error = %e, "webhooks: could not record deliveries");
        }
        if let Err(e) = self.pg.defer_deliveries(&done.deferred).await {
            warn!(error = %e, "webhooks: could not defer deliveries (their lease runs out)");
        }
        if let Err(e) = self.pg.release_endpoints(&[endpoint]).await {
            warn!(error = %e, "webhooks: could not release endpoints (their lease runs out)");
        }
    }

    /// One endpoint's messages of a claim, oldest first (see the module doc).
    async fn deliver_to_endpoint(&self, group: Vec<Claimed>) -> Delivered {
        let mut out = Delivered::default();
        let mut rest = group.into_iter();
        let Some(first) = rest.next() else {
            return out;
        };
        let head = self.attempt(first).await;
        let mut stopped = stop_time(&head);
        out.outcomes.push(head);
        let mut in_flight = FuturesUnordered::new();
        loop {
            while stopped.is_none() && in_flight.len() < PER_ENDPOINT {
                let Some(c) = rest.next() else { break };
                in_flight.push(self.attempt(c));
            }
            let Some(o) = in_flight.next().await else {
                break;
            };
            stopped = stopped.or_else(|| stop_time(&o));
            out.outcomes.push(o);
        }
        if let Some(until) = stopped {
            out.deferred
                .extend(rest.map(|c| (c.endpoint_id, c.message_id, until)));
        }
        out
    }

    /// Signs and sends one message.
    async fn attempt(&self, c: Claimed) -> AttemptOutcome {
        let at = chrono::Utc::now();
        let timestamp = at.timestamp();
        let mut secrets = vec![c.secret.as_str()];
        secrets.extend(c.retired_secrets.iter().map(String::as_str));
        let signature = signature_header(&secrets, &c.message_id, timestamp, &c.body);
        let span = telemetry::webhook_span(
            &c.endpoint_id.to_string(),
            &c.message_id,
            c.traceparent.as_deref(),
        );
        let mut headers = vec![
            ("webhook-id", c.message_id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        // The receiver may continue the trace (export on): the attempt's span is its parent.
        if let Some(traceparent) = span.as_ref().and_then(telemetry::traceparent_of) {
            headers.push(("traceparent", traceparent));
        }
        let post = self.webhook_client.post(&c.url, headers, c.body);
        let sent = match &span {
            Some(span) => post.instrument(span.clone()).await,
            None => post.await,
        };
        if let (Some(span), Some(status)) = (&span, sent.status) {
            span.record("http.response.status_code", i64::from(status));
        }
        let jitter = rand::random::<f64>() * 0.1;
        let schedule = &self.settings.webhooks.retry_schedule_seconds;
        let round = u32::try_from(c.round_attempts).unwrap_or(0) + 1;
        let next = next_step(sent.answer, round, schedule, jitter);
        telemetry::record_webhook_attempt(
            match next {
                Next::Delivered => WebhookOutcome::Delivered,
                Next::RetryIn(_) => WebhookOutcome::Retry,
                Next::Failed => WebhookOutcome::Failed,
                Next::Gone => WebhookOutcome::Gone,
            },
            sent.took,
        );
        if next != Next::Delivered {
            tracing::info!(
                webhook.endpoint = %c.endpoint_id,
                webhook.message = %c.message_id,
                status = ?sent.status,
                error = sent.error.as_deref().unwrap_or(""),
                next = ?next,
                "webhook delivery attempt failed"
            );
        }
        AttemptOutcome {
            endpoint_id: c.endpoint_id,
            message_id: c.message_id,
            attempt: c.attempts + 1,
            at,
            status_code: sent.status,
            error: sent.error,
            duration_ms: sent.took.as_millis().min(u128::from(u32::MAX)) as u32,
            next,
            leased_until: c.leased_until,
        }
    }
}

/// What one endpoint's share of a claim came to.
#[derive(Default)]
struct Delivered {
    outcomes: Vec<AttemptOutcome>,
    /// Messages not attempted, with when they are due again.
    deferred: Vec<(uuid::Uuid, String, DateTime<Utc>)>,
}

/// When an endpoint's remaining messages are due after this attempt: None when it was
/// delivered (go on), else the failed message's next attempt (now, for a 410: the endpoint is
/// disabled and they wait for it).
fn stop_time(o: &AttemptOutcome) -> Option<DateTime<Utc>> {
    match o.next {
        Next::Delivered => None,
        Next::RetryIn(ms) => Some(o.at + Duration::from_millis(ms)),
        Next::Failed | Next::Gone => Some(o.at),
    }
}
