//! The webhook HTTP client and its address guard: a delivery reaches only public addresses
//! (unless `webhooks.allow_private_networks`), checked on the addresses the connection is made
//! to (the resolver refuses a name with any non-public address, so a name cannot be rebound
//! between the check and the connection); redirects are not followed; no proxy from the
//! environment; at most [`MAX_RESPONSE_BYTES`] of an answer is read; one deadline for the whole
//! attempt.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use crate::config::WebhookSettings;
use crate::domain::webhooks::{Answer, is_public, parse_retry_after};

/// Most bytes of a receiver's answer read (the rest is dropped with the connection).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Resolves a name and refuses it when any of its addresses is not public.
struct Guard {
    allow_private: bool,
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = resolve(name.as_str(), 0, allow_private).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The addresses of `host`, or why a delivery may not go there.
pub(super) async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port)).await?.collect(),
    };
    if addrs.is_empty() {
        return Err(format!("{host} has no address").into());
    }
    if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(format!(
            "{host} resolves to {}, which is not a public address",
            bad.ip()
        )
        .into());
    }
    Ok(addrs)
}

/// rustls needs one process-wide crypto provider; a second install is a harmless error.
#[expect(
    deprecated,
    reason = "ring builds with the C compiler alone (aws-lc-rs, with post-quantum key exchange, \
              needs more); webhook receivers negotiate classic key exchange"
)]
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What one POST came to.
#[derive(Debug, Clone)]
pub struct Sent {
    pub answer: Answer,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub took: Duration,
}

/// The client all deliveries of an instance share.
pub struct WebhookClient {
    client: reqwest::Client,
    allow_private: bool,
}

impl WebhookClient {
    pub fn new(settings: &WebhookSettings) -> anyhow::Result<Self> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(settings.timeout())
            .connect_timeout(settings.timeout().min(Duration::from_secs(10)))
            .user_agent(concat!("seatlock-webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(Guard {
                allow_private: settings.allow_private_networks,
            }))
            .build()?;
        Ok(WebhookClient {
            client,
            allow_private: settings.allow_private_networks,
        })
    }

    /// POSTs `body` to `url` with the Standard Webhooks headers (and `traceparent`, when traced).
    pub async fn post(&self, url: &str, headers: Vec<(&str, String)>, body: String) -> Sent {
        let started = Instant::now();
        let result = self.try_post(url, headers, body).await;
        let took = started.elapsed();
        match result {
            Ok((status, retry_after_s)) => Sent {
                answer: Answer::Status {
                    code: status,
                    retry_after_s,
                },
                status: Some(status),
                error: None,
                took,
            },
            Err(error) => Sent {
                answer: Answer::NoAnswer,
                status: None,
                error: Some(error),
                took,
            },
        }
    }

    async fn try_post(
        &self,
        url: &str,
        headers: Vec<(&str, String)>,
        body: String,
    ) -> Result<(u16, Option<u64>), String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("bad url: {e}"))?;
        // An address written in the URL is not resolved: check it here.
        if let Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) = parsed.host() {
            let host = parsed.host_str().unwrap_or_default();
            resolve(host, 0, self.allow_private)
                .await
                .map_err(|e| format!("refused: {e}"))?;
        }
        let mut request = self
            .client
            .post(parsed)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut response = request.send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now().timestamp_millis()));
        let mut read = 0;
        while read < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) => break,
                Err(e) => return Err(describe(e)),
            }
        }
        Ok((status, retry_after))
    }
}

/// An error as the attempts log shows it: what failed, with its causes, never the body.
fn describe(e: reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the answer failed"
    } else {
        "request failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    let mut text = format!("{what}: {}", causes.join(": "));
    text.truncate(500);
    text
}
