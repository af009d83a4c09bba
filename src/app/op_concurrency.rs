//! How many 1Password actions run at once: up to `OP_CONCURRENCY`, halved when 1Password
//! answers 429, and grown back by one after as many successes in a row as the current limit
//! (additive increase, multiplicative decrease), so a throttled API is eased off quickly and
//! won back slowly.

use std::sync::Mutex;

#[derive(Debug)]
pub struct Concurrency {
    max: usize,
    state: Mutex<Limit>,
}

#[derive(Debug)]
struct Limit {
    current: usize,
    successes: usize,
}

impl Concurrency {
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            max,
            state: Mutex::new(Limit {
                current: max,
                successes: 0,
            }),
        }
    }

    /// How many actions may run at once now.
    pub fn limit(&self) -> usize {
        self.lock().current
    }

    /// 1Password answered 429: halve.
    pub fn throttled(&self) {
        let mut limit = self.lock();
        limit.current = (limit.current / 2).max(1);
        limit.successes = 0;
    }

    /// An action went through without being throttled.
    pub fn succeeded(&self) {
        let mut limit = self.lock();
        limit.successes += 1;
        if limit.successes >= limit.current && limit.current < self.max {
            limit.current += 1;
            limit.successes = 0;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Limit> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_halves_the_limit() {
        let concurrency = Concurrency::new(8);
        concurrency.throttled();
        assert_eq!(concurrency.limit(), 4);
        concurrency.throttled();
        assert_eq!(concurrency.limit(), 2);
    }

    #[test]
    fn the_limit_never_drops_below_one() {
        let concurrency = Concurrency::new(2);
        for _ in 0..5 {
            concurrency.throttled();
        }
        assert_eq!(concurrency.limit(), 1);
    }

    #[test]
    fn the_limit_grows_back_by_one_after_a_run_of_successes() {
        let concurrency = Concurrency::new(8);
        concurrency.throttled();
        for _ in 0..3 {
            concurrency.succeeded();
        }
        assert_eq!(concurrency.limit(), 4, "not yet: four successes at four");
        concurrency.succeeded();
        assert_eq!(concurrency.limit(), 5);
    }

    #[test]
    fn the_limit_never_grows_past_its_maximum() {
        let concurrency = Concurrency::new(3);
        for _ in 0..100 {
            concurrency.succeeded();
        }
        assert_eq!(concurrency.limit(), 3);
    }
}
