//! The delivery loop, one per instance: claims due messages (one instance per message, under a
//! lease), signs and sends each, records every attempt and its next step, and keeps the backlog
//! gauges. Woken by the history flush when it queued messages, and every quarter second.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::watch;
use tracing::warn;

use super::super::Seatlock;
use crate::domain::webhooks::{Next, next_step, signature_header};
use crate::store::postgres::{AttemptOutcome, Claimed};
use crate::telemetry::{self, WebhookOutcome};

/// Most messages one claim takes.
const CLAIM: usize = 64;
/// Most deliveries in flight per instance.
const CONCURRENCY: usize = 16;
const TICK: Duration = Duration::from_millis(250);
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

impl Seatlock {
    /// Delivers until `stop` turns true.
    pub async fn run_webhook_deliveries(self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backlog_at = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.webhooks_wake.notified() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            while self.deliver_webhooks().await == CLAIM {}
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
    }

    /// One claim's worth of deliveries; how many were claimed.
    pub async fn deliver_webhooks(&self) -> usize {
        let settings = &self.settings.webhooks;
        let lease = settings.timeout() + Duration::from_secs(30);
        let claimed = match self.pg.claim_deliveries(CLAIM as i64, lease).await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "webhooks: could not claim deliveries");
                return 0;
            }
        };
        let n = claimed.len();
        if n == 0 {
            return 0;
        }
        let outcomes: Vec<AttemptOutcome> = futures_util::stream::iter(claimed)
            .map(|c| self.attempt(c))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let disable_after = Duration::from_secs(settings.disable_after_hours * 3600);
        if let Err(e) = self.pg.record_deliveries(&outcomes, disable_after).await {
            // The lease runs out and the messages are sent again: at least once, never lost.
            warn!(error = %e, "webhooks: could not record deliveries");
        }
        n
    }

    /// Signs and sends one message.
    async fn attempt(&self, c: Claimed) -> AttemptOutcome {
        let at = chrono::Utc::now();
        let timestamp = at.timestamp();
        let mut secrets = vec![c.secret.as_str()];
        if let Some(previous) = &c.previous_secret {
            secrets.push(previous);
        }
        let signature = signature_header(&secrets, &c.message_id, timestamp, &c.body);
        let headers = [
            ("webhook-id", c.message_id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        let sent = self.webhook_client.post(&c.url, headers, c.body).await;
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
        }
    }
}
