//! Per-token rate limit (DESIGN §3): a token bucket per API token, refilled continuously, so an
//! incident's burst of proposals is served while a runaway integration is slowed with 429.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from `key`'s bucket; `Err` holds how long until one is available.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refill).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_serves_a_burst_then_refuses() {
        let limiter = RateLimiter::new(3);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take("tok", now).is_ok());
        }
        let wait = limiter.take("tok", now).unwrap_err();
        assert!((19..=20).contains(&wait.as_secs()), "{wait:?}");
    }

    #[test]
    fn the_bucket_refills_with_time_and_tokens_are_separate() {
        let limiter = RateLimiter::new(60);
        let now = Instant::now();
        for _ in 0..60 {
            limiter.take("a", now).unwrap();
        }
        assert!(limiter.take("a", now).is_err());
        assert!(limiter.take("b", now).is_ok());
        assert!(limiter.take("a", now + Duration::from_secs(1)).is_ok());
    }
}
