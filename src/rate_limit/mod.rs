//! Rate limits: the reference PDS's limits per method (see [`policy`]), counted in this process
//! or, with PDS_REDIS_SCRATCH_ADDRESS, in Redis so that replicas share them. XRPC methods are
//! admitted through the authentication seam once their credential and input are known; the
//! sign-in pages and proxied calls count against the same limits.

pub mod client_ip;
mod memory;
pub mod policy;
mod redis;

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use poem::http::HeaderMap;

use aurora_atproto::syntax::Did;
use aurora_xrpc::XrpcError;

use crate::config::{ConfigError, Secret};
use policy::{KeyBy, Limit, Rule};

/// How often in-memory counters that have refilled are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The rate-limit settings, under the reference's variable names.
#[derive(Clone, Debug)]
pub struct RateLimitConfig {
    /// PDS_RATE_LIMITS_ENABLED (on unless set to false).
    pub enabled: bool,
    /// PDS_RATE_LIMIT_BYPASS_KEY: requests with this `x-ratelimit-bypass` header are not counted.
    pub bypass_key: Option<Secret>,
    /// PDS_RATE_LIMIT_BYPASS_IPS: addresses (or CIDR ranges) never counted.
    pub bypass_ips: Vec<IpNet>,
    /// PDS_REDIS_SCRATCH_ADDRESS: `host:port` or a `redis://` URL.
    pub redis: Option<Secret>,
}

impl RateLimitConfig {
    pub fn from_source(source: &impl crate::config::Source) -> Result<RateLimitConfig, ConfigError> {
        let enabled = match source.get("PDS_RATE_LIMITS_ENABLED").as_deref().map(str::trim) {
            None | Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "PDS_RATE_LIMITS_ENABLED",
                    message: format!("expected true or false, found {other:?}"),
                })
            }
        };
        let bypass_ips = match source.get("PDS_RATE_LIMIT_BYPASS_IPS") {
            Some(raw) => client_ip::parse_ranges(&raw)
                .map_err(|message| ConfigError::Invalid { var: "PDS_RATE_LIMIT_BYPASS_IPS", message })?,
            None => Vec::new(),
        };
        Ok(RateLimitConfig {
            enabled,
            bypass_key: source.get("PDS_RATE_LIMIT_BYPASS_KEY").map(|k| Secret::new(k.trim())),
            bypass_ips,
            redis: source.get("PDS_REDIS_SCRATCH_ADDRESS").map(|a| Secret::new(a.trim())),
        })
    }
}

/// One limit's state for a key after a request was counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub limit: u32,
    pub window: Duration,
    pub remaining: u32,
    /// Until the counter is back to full (or, refused, until a request would pass).
    pub reset_after: Duration,
    pub refused: bool,
}

impl Status {
    /// The `RateLimit-*` headers the reference sends.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut headers = vec![
            ("ratelimit-limit", self.limit.to_string()),
            ("ratelimit-remaining", self.remaining.to_string()),
            ("ratelimit-reset", (now + self.reset_after).as_secs().to_string()),
            ("ratelimit-policy", format!("{};w={}", self.limit, self.window.as_secs())),
        ];
        if self.refused {
            headers.push(("retry-after", self.reset_after.as_secs_f64().ceil().max(1.0).to_string()));
        }
        headers
    }

    /// The 429 answer for a refused request.
    pub fn refusal(&self) -> XrpcError {
        let mut error = XrpcError::rate_limited();
        error.headers = self.headers();
        error
    }
}

enum Backend {
    Memory(memory::Memory),
    Redis(Box<redis::Redis>),
}

pub struct RateLimits {
    config: RateLimitConfig,
    backend: Backend,
    /// Refusals, by limit name.
    refusals: prometheus::IntCounterVec,
}

impl RateLimits {
    pub fn new(
        config: RateLimitConfig,
        refusals: prometheus::IntCounterVec,
    ) -> Result<std::sync::Arc<RateLimits>, String> {
        let backend = match &config.redis {
            Some(address) => Backend::Redis(Box::new(redis::Redis::new(address.expose())?)),
            None => Backend::Memory(memory::Memory::default()),
        };
        let limits = std::sync::Arc::new(RateLimits { config, backend, refusals });
        if matches!(limits.backend, Backend::Memory(_)) && limits.config.enabled {
            let weak = std::sync::Arc::downgrade(&limits);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(SWEEP_EVERY).await;
                    let Some(limits) = weak.upgrade() else { return };
                    if let Backend::Memory(memory) = &limits.backend {
                        memory.sweep();
                    }
                }
            });
        }
        Ok(limits)
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    fn bypassed(&self, headers: &HeaderMap, ip: Option<IpAddr>) -> bool {
        if !self.config.enabled {
            return true;
        }
        if let (Some(key), Some(sent)) = (&self.config.bypass_key, headers.get("x-ratelimit-bypass")) {
            if crate::auth::constant_time_eq(key.expose().as_bytes(), sent.as_bytes()) {
                return true;
            }
        }
        ip.is_some_and(|ip| self.config.bypass_ips.iter().any(|range| range.contains(&ip)))
    }

    async fn count(&self, limit: &Limit, key: &str, points: u32) -> Option<Status> {
        if points == 0 {
            return None;
        }
        let status = match &self.backend {
            Backend::Memory(memory) => memory.consume(limit, key, points),
            Backend::Redis(redis) => redis.consume(limit, key, points).await,
        };
        if status.as_ref().is_some_and(|s| s.refused) {
            self.refusals.with_label_values(&[limit.name]).inc();
        }
        status
    }

    /// Counts a request to XRPC method `nsid` against its limits and the global one. `field` is
    /// the input field [`policy::input_field`] names. Returns the tightest limit's headers, or
    /// the 429 refusal.
    pub async fn admit(
        &self,
        nsid: &str,
        headers: &HeaderMap,
        ip: Option<IpAddr>,
        account: Option<&Did>,
        field: Option<&serde_json::Value>,
    ) -> Result<Vec<(&'static str, String)>, XrpcError> {
        if self.bypassed(headers, ip) {
            return Ok(Vec::new());
        }
        let ip_key = ip.map(|ip| ip.to_string());
        let mut tightest: Option<Status> = None;
        let mut count = |status: Option<Status>| -> Result<(), XrpcError> {
            let Some(status) = status else { return Ok(()) };
            if status.refused {
                return Err(status.refusal());
            }
            if tightest.is_none_or(|t| status.remaining < t.remaining) {
                tightest = Some(status);
            }
            Ok(())
        };
        for rule in policy::rules(nsid) {
            let Some(key) = rule_key(rule, ip_key.as_deref(), account, field) else { continue };
            let points = policy::points(nsid, rule.cost, field);
            count(self.count(&rule.limit, &key, points).await)?;
        }
        if policy::counts_globally(nsid) {
            if let Some(ip) = &ip_key {
                count(self.count(&policy::GLOBAL, ip, 1).await)?;
            }
        }
        Ok(tightest.map(|status| status.headers()).unwrap_or_default())
    }

    /// Counts a sign-in attempt on a page (OAuth or the account pages) against createSession's
    /// limits: the same counters, so the pages are no way around them.
    pub async fn sign_in(&self, headers: &HeaderMap, ip: Option<IpAddr>, identifier: &str) -> Result<(), Status> {
        if self.bypassed(headers, ip) {
            return Ok(());
        }
        let ip_key = ip.map(|ip| ip.to_string());
        let field = serde_json::Value::String(identifier.to_owned());
        for rule in policy::SIGN_IN {
            let Some(key) = rule_key(rule, ip_key.as_deref(), None, Some(&field)) else { continue };
            if let Some(status) = self.count(&rule.limit, &key, 1).await.filter(|s| s.refused) {
                return Err(status);
            }
        }
        Ok(())
    }

    /// Counts a failed administrator sign-in from `ip`; refused once too many failed.
    pub async fn admin_failure(&self, headers: &HeaderMap, ip: Option<IpAddr>) -> Result<(), Status> {
        if self.bypassed(headers, ip) {
            return Ok(());
        }
        let Some(ip) = ip else { return Ok(()) };
        match self.count(&policy::ADMIN_AUTH, &ip.to_string(), 1).await {
            Some(status) if status.refused => Err(status),
            _ => Ok(()),
        }
    }
}

fn rule_key(rule: &Rule, ip: Option<&str>, account: Option<&Did>, field: Option<&serde_json::Value>) -> Option<String> {
    match rule.key {
        KeyBy::Ip => ip.map(str::to_owned),
        KeyBy::Account => account.map(|did| did.as_str().to_owned()),
        KeyBy::Server => Some("server".to_owned()),
        KeyBy::IdentifierAndIp => {
            let identifier = field.and_then(|f| f.as_str()).unwrap_or_default().trim().to_lowercase();
            Some(format!("{identifier}-{}", ip.unwrap_or_default()))
        }
    }
}
