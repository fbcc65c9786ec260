//! [`Backoff`]: reconnect delays that double from a minimum to a maximum, with jitter so that many
//! clients dropped together do not reconnect together.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max, next: min }
    }

    /// Back to the minimum (after a successful login).
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }

    /// The next delay: uniformly between half and all of the current step; the step then doubles.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = step / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_with_jitter() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(10_000));
        let steps = [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000];
        for step in steps {
            let d = b.next_delay();
            assert!(d >= ms(step / 2) && d <= ms(step), "{d:?} for a {step} ms step");
        }
        b.reset();
        assert!(b.next_delay() <= ms(100));
    }
}
