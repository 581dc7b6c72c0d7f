//! Call order for async operations on one index. Eight task threads take queued operations
//! concurrently, so without this an `add` and a `remove` of the same key, issued in that order
//! without awaiting, could land in either order. Each write takes a ticket on the JS thread when
//! it is called and runs only when every earlier write has finished; a search waits for the
//! writes issued before it. Tickets are issued in the same order as operations are queued
//! (both happen on the JS thread), and the task queue is first in, first out, so the earliest
//! unfinished write is always running or about to: waits always end.

use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

#[derive(Default)]
pub struct WriteOrder {
    state: Mutex<OrderState>,
    turn: Condvar,
}

#[derive(Default)]
struct OrderState {
    /// Next ticket to hand out.
    issued: u64,
    /// Every ticket below this has finished.
    served: u64,
    /// Finished tickets above `served` (a write dropped before it ran finishes out of turn).
    finished_early: BTreeSet<u64>,
}

impl WriteOrder {
    fn state(&self) -> MutexGuard<'_, OrderState> {
        // The state is a few integers updated atomically under the lock: a panic elsewhere
        // cannot leave it half-written, so a poisoned lock is safe to keep using.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A ticket for a write called now.
    pub fn ticket(self: &Arc<Self>) -> Ticket {
        let mut state = self.state();
        let number = state.issued;
        state.issued += 1;
        Ticket {
            order: self.clone(),
            number,
        }
    }

    /// The point a read called now must wait for: every write issued so far.
    pub fn mark(&self) -> u64 {
        self.state().issued
    }

    /// Blocks until every write issued before `mark` has finished.
    pub fn wait_for(&self, mark: u64) {
        let mut state = self.state();
        while state.served < mark {
            state = self
                .turn
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn finish(&self, number: u64) {
        let mut state = self.state();
        if number == state.served {
            state.served += 1;
            loop {
                let next = state.served;
                if !state.finished_early.remove(&next) {
                    break;
                }
                state.served += 1;
            }
        } else {
            state.finished_early.insert(number);
        }
        drop(state);
        self.turn.notify_all();
    }
}

/// A write's place in line. Dropping it (when the write ends, fails, panics, or never runs)
/// lets the next write go.
pub struct Ticket {
    order: Arc<WriteOrder>,
    number: u64,
}

impl Ticket {
    /// Blocks until every earlier write has finished.
    pub fn wait_turn(&self) {
        self.order.wait_for(self.number);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.order.finish(self.number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_run_in_ticket_order_even_when_started_out_of_order() {
        let order = Arc::new(WriteOrder::default());
        let log = Arc::new(Mutex::new(Vec::new()));
        let tickets: Vec<Ticket> = (0..8).map(|_| order.ticket()).collect();
        let handles: Vec<_> = tickets
            .into_iter()
            .enumerate()
            .rev()
            .map(|(i, ticket)| {
                let log = log.clone();
                std::thread::spawn(move || {
                    ticket.wait_turn();
                    log.lock().expect("log").push(i);
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        assert_eq!(*log.lock().expect("log"), (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn a_dropped_ticket_does_not_block_later_ones() {
        let order = Arc::new(WriteOrder::default());
        let first = order.ticket();
        let second = order.ticket();
        let mark = order.mark();
        drop(second); // finished out of turn: never ran
        drop(first);
        order.wait_for(mark); // returns: both finished
    }
}
