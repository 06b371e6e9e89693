//! The global in-flight byte budget. A batch reserves its bytes before it is sent to the sink and
//! gives them back when it is dropped after commit; a reader that finds no budget waits, so the
//! kernel's TCP window closes and the shipper slows down.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Permits are counted in KiB so that budgets of many GiB fit the semaphore's u32 requests.
const UNIT: usize = 1024;

#[derive(Clone, Debug)]
pub struct Budget {
    sem: Arc<Semaphore>,
    total_units: usize,
}

/// Bytes held by one batch; dropping it returns them.
#[derive(Debug)]
pub struct Reservation {
    permit: OwnedSemaphorePermit,
    bytes: usize,
}

impl Reservation {
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Joins another reservation of the same budget into this one.
    pub fn merge(&mut self, other: Reservation) {
        self.permit.merge(other.permit);
        self.bytes += other.bytes;
    }
}

impl Budget {
    pub fn new(bytes: u64) -> Budget {
        let total_units = (bytes as usize / UNIT).max(1);
        Budget {
            sem: Arc::new(Semaphore::new(total_units)),
            total_units,
        }
    }

    fn units(&self, bytes: usize) -> u32 {
        // A batch larger than the whole budget may still pass alone rather than wait forever.
        bytes.div_ceil(UNIT).clamp(1, self.total_units) as u32
    }

    /// Waits until `bytes` are free.
    pub async fn reserve(&self, bytes: usize) -> Reservation {
        let permit = self
            .sem
            .clone()
            .acquire_many_owned(self.units(bytes))
            .await
            .expect("budget semaphore is never closed");
        Reservation { permit, bytes }
    }

    /// Takes `bytes` if they are free now (UDP: no waiting, the datagram is dropped instead).
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        match self.sem.clone().try_acquire_many_owned(self.units(bytes)) {
            Ok(permit) => Some(Reservation { permit, bytes }),
            Err(TryAcquireError::NoPermits) => None,
            Err(TryAcquireError::Closed) => unreachable!("budget semaphore is never closed"),
        }
    }

    /// Settles `reservation` on the `bytes` its events turned out to take. Sources reserve an
    /// estimate before shaping a read into events (that is where they wait), then settle: the
    /// excess goes back at once; beyond the estimate, what is free now is taken and the rest
    /// is not waited for. The events exist by then, so waiting would not spare their memory,
    /// and readers that each held part of the budget while waiting for more could wait for one
    /// another forever.
    pub fn settle(&self, reservation: &mut Reservation, bytes: usize) {
        let want = self.units(bytes) as usize;
        let have = reservation.permit.num_permits();
        if want < have {
            drop(reservation.permit.split(have - want));
        } else if want > have {
            // Another task may take permits between the look and the take: look again.
            loop {
                let free = self.sem.available_permits().min(want - have);
                if free == 0 {
                    break;
                }
                if let Ok(more) = self.sem.clone().try_acquire_many_owned(free as u32) {
                    reservation.permit.merge(more);
                    break;
                }
            }
        }
        reservation.bytes = bytes;
    }

    /// Settles `reservation` on `bytes` and, where that leaves part of them uncovered, waits
    /// until all are. Only for a reader that holds no other reservation and no unsent events:
    /// it gives its reservation back and queues for the whole, so what it waits for is freed by
    /// batches already sent as they commit, never by another waiting reader (the semaphore
    /// hands freed permits to its first waiter, in order). A reader whose estimate fell short
    /// (forward's gzip chunks, whose size is known only once inflated) thus keeps the budget's
    /// bound instead of sending events it does not cover.
    pub async fn cover(&self, mut reservation: Reservation, bytes: usize) -> Reservation {
        self.settle(&mut reservation, bytes);
        if reservation.permit.num_permits() >= self.units(bytes) as usize {
            return reservation;
        }
        drop(reservation);
        self.reserve(bytes).await
    }

    /// Bytes currently reserved.
    pub fn in_flight(&self) -> u64 {
        ((self.total_units - self.sem.available_permits()) * UNIT) as u64
    }

    pub fn total(&self) -> u64 {
        (self.total_units * UNIT) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_return_their_bytes_when_dropped() {
        let budget = Budget::new(64 * 1024);
        let a = budget.reserve(40 * 1024).await;
        assert_eq!(budget.in_flight(), 40 * 1024);
        assert!(budget.try_reserve(30 * 1024).is_none(), "only 24 KiB left");
        drop(a);
        assert_eq!(budget.in_flight(), 0);
        assert!(budget.try_reserve(30 * 1024).is_some());
    }

    #[tokio::test]
    async fn a_reservation_can_shrink_and_grow() {
        let budget = Budget::new(64 * 1024);
        let mut r = budget.reserve(40 * 1024).await;
        budget.settle(&mut r, 8 * 1024);
        assert_eq!((budget.in_flight(), r.bytes()), (8 * 1024, 8 * 1024));
        budget.settle(&mut r, 60 * 1024);
        assert_eq!(budget.in_flight(), 60 * 1024);
        // Growing past what is free takes what is free and does not wait.
        let other = budget.reserve(4 * 1024).await;
        budget.settle(&mut r, 100 * 1024);
        assert_eq!(budget.in_flight(), 64 * 1024);
        assert_eq!(r.bytes(), 100 * 1024);
        drop(other);
        assert_eq!(budget.in_flight(), 60 * 1024);
        drop(r);
        assert_eq!(budget.in_flight(), 0);
    }

    #[tokio::test]
    async fn readers_holding_the_whole_budget_never_wait_for_each_other() {
        // Two reads whose estimates took all of it, both built larger than estimated: waiting
        // for the difference would hold each other's bytes forever.
        let budget = Budget::new(64 * 1024);
        let mut a = budget.reserve(32 * 1024).await;
        let mut b = budget.reserve(32 * 1024).await;
        budget.settle(&mut a, 40 * 1024);
        budget.settle(&mut b, 40 * 1024);
        assert_eq!(budget.in_flight(), 64 * 1024);
        drop((a, b));
        assert_eq!(budget.in_flight(), 0);
    }

    #[tokio::test]
    async fn cover_waits_for_what_settle_could_not_take() {
        let budget = Budget::new(64 * 1024);
        let others = budget.reserve(48 * 1024).await;
        let r = budget.reserve(8 * 1024).await;
        // Free already: covered at once.
        let r = budget.cover(r, 12 * 1024).await;
        assert_eq!(budget.in_flight(), 60 * 1024);
        // 40 KiB are more than is free: it waits for the rest.
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.cover(r, 40 * 1024).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        // Queued first, it collects what is freed (its own 12 KiB back, the 4 KiB free).
        assert_eq!(budget.in_flight(), 64 * 1024);
        assert!(budget.try_reserve(1).is_none());
        drop(others);
        let r = waiting.await.unwrap();
        assert_eq!((budget.in_flight(), r.bytes()), (40 * 1024, 40 * 1024));
    }

    #[tokio::test]
    async fn a_batch_larger_than_the_budget_passes_alone() {
        let budget = Budget::new(4 * 1024);
        let r = budget.reserve(1 << 20).await;
        assert_eq!(budget.in_flight(), 4 * 1024);
        assert!(budget.try_reserve(1).is_none());
        drop(r);
    }
}
