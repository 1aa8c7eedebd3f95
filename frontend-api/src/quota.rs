//! The data-ID quota: how many identifiers a member may have the vault evaluate in a day.
//!
//! A data ID is an oblivious PRF the vault alone can compute ([`tclearn_api_client::data_ids`]).
//! A member that wants to test guesses of another hospital's patients must therefore ask the
//! vault for each guess. The quota holds that to what a hospital's own data needs: a sweep of a
//! 10^9 national-ID space at 20,000 a day would take 137 years, and every query is an audit
//! entry (`data-ids`, `ok N`) that other members read. The counts are rebuilt from the audit log
//! at start, so a restart forgives nothing.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

/// The quota's window: a day.
pub const WINDOW_MS: u64 = 24 * 3_600 * 1_000;

/// The identifiers a member may have evaluated per [`WINDOW_MS`] when nobody says.
pub const DEFAULT_PER_DAY: u64 = 20_000;

/// Whether `asked` more evaluations fit in `per_window`, given the member's earlier ones
/// (`(time_ms, count)`, oldest first) at `now_ms`; if not, the seconds until they would.
pub fn admit(history: &VecDeque<(u64, u64)>, now_ms: u64, per_window: u64, asked: u64) -> Result<(), u64> {
    if asked > per_window {
        return Err(WINDOW_MS / 1_000);
    }
    let since = now_ms.saturating_sub(WINDOW_MS);
    let recent: Vec<&(u64, u64)> = history.iter().filter(|(t, _)| *t > since).collect();
    let used: u64 = recent.iter().map(|(_, n)| n).fold(0u64, |a, n| a.saturating_add(*n));
    if used.saturating_add(asked) <= per_window {
        return Ok(());
    }
    // Wait until enough of the oldest have left the window.
    let mut freed = 0u64;
    for (time, count) in recent {
        freed = freed.saturating_add(*count);
        if used - freed + asked <= per_window {
            let wait_ms = (time + WINDOW_MS).saturating_sub(now_ms);
            return Err(wait_ms.div_ceil(1_000).max(1));
        }
    }
    Err(WINDOW_MS / 1_000)
}

/// Every member's evaluations within the window.
#[derive(Debug)]
pub struct DataIdQuota {
    per_day: u64,
    spent: Mutex<HashMap<String, VecDeque<(u64, u64)>>>,
}

impl DataIdQuota {
    /// A quota of `per_day` evaluations per member, nothing spent yet.
    pub fn new(per_day: u64) -> Self {
        Self { per_day, spent: Mutex::new(HashMap::new()) }
    }

    /// The evaluations a day allows.
    pub fn per_day(&self) -> u64 {
        self.per_day
    }

    /// Note `count` evaluations by `account` at `time_ms` (from the audit log, at start).
    pub fn note(&self, account: &str, time_ms: u64, count: u64) {
        let mut spent = self.spent.lock().expect("quota lock");
        spent.entry(account.to_string()).or_default().push_back((time_ms, count));
    }

    /// Take `asked` evaluations for `account` at `now_ms`, or the seconds to wait.
    pub fn take(&self, account: &str, now_ms: u64, asked: u64) -> Result<(), u64> {
        let mut spent = self.spent.lock().expect("quota lock");
        let history = spent.entry(account.to_string()).or_default();
        while history.front().is_some_and(|(t, _)| *t <= now_ms.saturating_sub(WINDOW_MS)) {
            history.pop_front();
        }
        admit(history, now_ms, self.per_day, asked)?;
        history.push_back((now_ms, asked));
        Ok(())
    }

    /// Give back `count` evaluations taken at `time_ms` by `account` (an evaluation that failed
    /// before it answered).
    pub fn give_back(&self, account: &str, time_ms: u64, count: u64) {
        let mut spent = self.spent.lock().expect("quota lock");
        if let Some(history) = spent.get_mut(account) {
            if let Some(at) = history.iter().rposition(|entry| *entry == (time_ms, count)) {
                history.remove(at);
            }
        }
    }
}

/// The count an audit entry of `data-ids` records (`ok N`), if it is one.
pub fn recorded_count(action: &str, outcome: &str) -> Option<u64> {
    if action != tclearn_api_client::data_ids::ACTION {
        return None;
    }
    outcome.strip_prefix("ok ").and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOUR: u64 = 3_600_000;

    #[test]
    fn a_member_gets_its_quota_a_day_and_is_told_when_more_frees() {
        let quota = DataIdQuota::new(1_000);
        let t0 = 10 * WINDOW_MS;
        assert_eq!(quota.take("alice", t0, 600), Ok(()));
        assert_eq!(quota.take("alice", t0 + HOUR, 400), Ok(()));
        // Full: the 600 of t0 leave the window a day after t0, 22 hours from now.
        assert_eq!(quota.take("alice", t0 + 2 * HOUR, 1), Err(22 * 3_600));
        assert_eq!(quota.take("bob", t0 + 2 * HOUR, 1_000), Ok(()), "each member has its own");
        assert_eq!(quota.take("alice", t0 + WINDOW_MS + 1, 600), Ok(()));
        assert_eq!(quota.take("alice", t0 + WINDOW_MS + 2, 1_001), Err(WINDOW_MS / 1_000), "never fits");
        quota.give_back("alice", t0 + WINDOW_MS + 1, 600);
        assert_eq!(quota.take("alice", t0 + WINDOW_MS + 3, 600), Ok(()), "given back");
    }

    #[test]
    fn the_audit_log_says_what_was_spent() {
        assert_eq!(recorded_count("data-ids", "ok 250"), Some(250));
        assert_eq!(recorded_count("data-ids", "refused: rate limited for 3 s"), None);
        assert_eq!(recorded_count("download", "ok 250"), None);
        let quota = DataIdQuota::new(300);
        quota.note("alice", WINDOW_MS, 250);
        assert!(quota.take("alice", WINDOW_MS + 1, 51).is_err(), "noted before a restart, still spent");
    }

    proptest! {
        /// Whatever a member asks and when, within any day its admitted evaluations never pass
        /// the quota; and a refusal's wait, once waited, admits the same ask.
        #[test]
        fn no_day_ever_holds_more_than_the_quota(
            asks in proptest::collection::vec((0u64..3 * HOUR, 1u64..400), 1..60),
            per_day in 1u64..1_500,
        ) {
            let quota = DataIdQuota::new(per_day);
            let mut now = WINDOW_MS;
            let mut admitted: Vec<(u64, u64)> = Vec::new();
            for (gap, asked) in asks {
                now += gap;
                match quota.take("m", now, asked) {
                    Ok(()) => admitted.push((now, asked)),
                    Err(wait) => {
                        if asked <= per_day {
                            let later = now + wait * 1_000;
                            let fits = admit(&admitted.iter().copied().collect(), later, per_day, asked);
                            prop_assert!(fits.is_ok(), "waited {wait} s and still refused");
                        }
                    }
                }
            }
            for &(start, _) in &admitted {
                let in_day: u64 = admitted.iter().filter(|(t, _)| *t >= start && *t < start + WINDOW_MS).map(|(_, n)| n).sum();
                prop_assert!(in_day <= per_day, "{in_day} > {per_day} in the day from {start}");
            }
        }
    }
}
