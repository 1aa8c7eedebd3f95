//! Turns: how many operations of one kind (uploads, downloads) the API runs at once, in all and
//! for one account, and how long a request waits for one.
//!
//! Each upload holds its whole body in memory until stored, each download its decrypted object
//! until sent. Without turns, one member's burst of slow uploads or slow-read downloads holds
//! the memory and the slots every other member needs. So every operation takes a [`Turn`]: at
//! most `total` at once, at most `per_account` of them one account's (a member's second upload
//! is refused at once, 429, rather than waiting behind its first), and a request that finds
//! every turn taken waits at most `wait`, then gets 503. A turn is given back when dropped,
//! whatever ended the operation.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a request got no turn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoTurn {
    /// The account already holds as many turns as one account may.
    #[error("this member already has {0} of these in progress")]
    Account(usize),
    /// Every turn stayed taken for the whole wait.
    #[error("every turn stayed taken for {0:?}: try again")]
    Busy(Duration),
}

/// How many of something each key holds, each counted until its [`Counted`] is dropped.
#[derive(Debug)]
pub struct Counts<K>(Mutex<HashMap<K, usize>>);

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

/// One counted for its key until dropped.
#[derive(Debug)]
pub struct Counted<K: Eq + Hash + Copy> {
    counts: Arc<Counts<K>>,
    key: K,
}

impl<K: Eq + Hash + Copy> Counts<K> {
    /// Count one more for `key`, unless it already holds `max` ([`may_take`]).
    pub fn open(self: &Arc<Self>, key: K, max: usize) -> Option<Counted<K>> {
        let mut counts = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(key).or_default();
        if !may_take(*count, max) {
            return None;
        }
        *count += 1;
        Some(Counted { counts: self.clone(), key })
    }

    /// Whether no key holds anything.
    pub fn is_empty(&self) -> bool {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty()
    }

    /// Whether `key` holds something.
    pub fn holds(&self, key: &K) -> bool {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains_key(key)
    }
}

impl<K: Eq + Hash + Copy> Drop for Counted<K> {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// The turns of one kind of operation.
#[derive(Debug, Clone)]
pub struct Turns {
    total: Arc<Semaphore>,
    per_account: usize,
    wait: Duration,
    held: Arc<Counts<[u8; 32]>>,
}

/// One operation's turn; dropping it gives the turn back.
#[derive(Debug)]
pub struct Turn {
    _permit: OwnedSemaphorePermit,
    _counted: Counted<[u8; 32]>,
}

/// Whether an account that holds `held` turns may take another, at most `per_account`.
pub fn may_take(held: usize, per_account: usize) -> bool {
    held < per_account
}

impl Turns {
    /// At most `total` turns at once (at least 1), `per_account` of them one account's (at least
    /// 1), a request waiting at most `wait` for one.
    pub fn new(total: usize, per_account: usize, wait: Duration) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total.max(1))),
            per_account: per_account.max(1),
            wait,
            held: Arc::default(),
        }
    }

    /// Take a turn for `account`.
    ///
    /// # Errors
    /// [`NoTurn::Account`] at once when the account holds its share; [`NoTurn::Busy`] when no
    /// turn came free within the wait.
    pub async fn take(&self, account: &[u8; 32]) -> Result<Turn, NoTurn> {
        // Counted before the wait, so that an account cannot queue more than its share; given
        // back if the wait ends without a turn (or the request is dropped while waiting).
        let counted = self.held.open(*account, self.per_account).ok_or(NoTurn::Account(self.per_account))?;
        match tokio::time::timeout(self.wait, self.total.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Turn { _permit: permit, _counted: counted }),
            Ok(Err(_)) | Err(_) => Err(NoTurn::Busy(self.wait)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: [u8; 32] = [1; 32];
    const BOB: [u8; 32] = [2; 32];

    #[tokio::test]
    async fn one_member_cannot_take_every_turn() {
        let turns = Turns::new(4, 1, Duration::from_millis(200));
        let alice = turns.take(&ALICE).await.unwrap();
        // Alice's second upload is refused at once, and does not hold a turn while refused.
        assert_eq!(turns.take(&ALICE).await.unwrap_err(), NoTurn::Account(1));
        assert_eq!(turns.total.available_permits(), 3);
        // Bob is served while Alice holds hers.
        let bob = turns.take(&BOB).await.unwrap();
        drop(alice);
        let again = turns.take(&ALICE).await.unwrap();
        drop((bob, again));
        assert!(turns.held.is_empty(), "nothing is left counted");
    }

    #[tokio::test]
    async fn a_request_waits_for_a_turn_only_so_long() {
        let turns = Turns::new(1, 2, Duration::from_millis(100));
        let held = turns.take(&ALICE).await.unwrap();
        assert_eq!(turns.take(&BOB).await.unwrap_err(), NoTurn::Busy(Duration::from_millis(100)));
        // The refused wait gave Bob's count back, and a turn freed during a wait is taken.
        assert!(!turns.held.holds(&BOB));
        let waiting = tokio::spawn({
            let turns = turns.clone();
            async move { turns.take(&BOB).await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert_eq!(waiting.await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn a_request_dropped_while_waiting_gives_its_count_back() {
        let turns = Turns::new(1, 1, Duration::from_secs(60));
        let held = turns.take(&ALICE).await.unwrap();
        let waiting = tokio::spawn({
            let turns = turns.clone();
            async move { turns.take(&BOB).await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        waiting.abort();
        let _ = waiting.await;
        assert!(!turns.held.holds(&BOB));
        drop(held);
        turns.take(&BOB).await.unwrap();
    }

    #[test]
    fn an_account_takes_at_most_its_share() {
        assert!(may_take(0, 1));
        assert!(!may_take(1, 1));
        assert!(may_take(1, 2));
        assert!(!may_take(usize::MAX, 2));
    }
}
