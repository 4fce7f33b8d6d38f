//! The byte budget of the channel between the binlog reader thread and the read worker's main
//! thread: the reader takes the estimated bytes of each transaction or piece (`mem_size`)
//! before it sends it and waits while the budget is spent; the main thread gives them back
//! when it receives it. So the changes waiting in the channel are bounded in bytes, not only in
//! messages (a message may be a piece of several megabytes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub struct ByteBudget {
    limit: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

impl ByteBudget {
    pub fn new(limit: usize) -> ByteBudget {
        ByteBudget { limit: limit.max(1), used: Mutex::new(0), freed: Condvar::new() }
    }

    /// Takes `bytes`, waiting while the budget is spent (a message larger than the whole
    /// budget still passes, alone). False when `stop` was set meanwhile.
    pub fn acquire(&self, bytes: usize, stop: &AtomicBool) -> bool {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used > 0 && *used + bytes > self.limit {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            used = match self.freed.wait_timeout(used, Duration::from_millis(100)) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        *used += bytes;
        true
    }

    /// Gives back `bytes` taken by `acquire`.
    pub fn release(&self, bytes: usize) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        *used = used.saturating_sub(bytes);
        self.freed.notify_all();
    }

    /// Bytes taken and not given back.
    pub fn used(&self) -> usize {
        *self.used.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn waits_while_spent_and_lets_a_large_message_pass_alone() {
        let b = Arc::new(ByteBudget::new(100));
        let stop = AtomicBool::new(false);
        assert!(b.acquire(60, &stop));
        assert!(b.acquire(40, &stop));
        assert_eq!(b.used(), 100);
        // spent: the next waits until the receiver gives back
        let b2 = b.clone();
        let waiter = std::thread::spawn(move || {
            let stop = AtomicBool::new(false);
            b2.acquire(30, &stop)
        });
        std::thread::sleep(Duration::from_millis(150));
        assert!(!waiter.is_finished(), "the budget was spent");
        b.release(60);
        assert!(waiter.join().unwrap());
        assert_eq!(b.used(), 70);
        b.release(70);
        // larger than the budget: passes when nothing else is in flight
        assert!(b.acquire(500, &stop));
        // stop ends a wait
        stop.store(true, Ordering::Relaxed);
        assert!(!b.acquire(1, &stop));
    }
}
