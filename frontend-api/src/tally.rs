//! Refusals counted, not logged one by one: requests without a valid token, which anyone can
//! send, and failed sign-ins. Each kind is summarised in one audit entry at most every
//! [`SUMMARY_EVERY_MS`] (and whenever the log is anchored), so that no outsider grows the log
//! faster than a few entries a minute, however fast it sends.

use std::collections::BTreeMap;

/// Least time between two summaries of the same kind (ms).
pub const SUMMARY_EVERY_MS: u64 = 60_000;

/// Most accounts whose failed sign-ins are counted apart; beyond, they count as anonymous.
pub const MAX_ACCOUNTS: usize = 4_096;

/// The audit action of a summary of requests without a valid token.
pub const ANONYMOUS: &str = "refused-anonymous";
/// The audit action of a summary of failed sign-ins for an account: attempts for it, which
/// anyone may make (a challenge is issued for any member), not necessarily by it.
pub const FAILED_SIGN_IN: &str = "sign-in-failed";

/// One summary entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The account whose sign-ins failed; none for anonymous requests.
    pub account: Option<String>,
    /// [`ANONYMOUS`] or [`FAILED_SIGN_IN`].
    pub action: &'static str,
    /// `refused: <n> attempts since <ms>`.
    pub outcome: String,
}

/// Counts since the last summary.
#[derive(Debug, Default)]
pub struct Tally {
    anonymous: u64,
    failed_sign_ins: BTreeMap<String, u64>,
    /// When the counts started (ms): after the last summary.
    since_ms: Option<u64>,
}

impl Tally {
    /// Count a request that carried no valid token.
    pub fn anonymous(&mut self, now_ms: u64) {
        self.since_ms.get_or_insert(now_ms);
        self.anonymous = self.anonymous.saturating_add(1);
    }

    /// Count a failed sign-in for `account` (a challenge issued for it, badly signed or late).
    pub fn failed_sign_in(&mut self, account: String, now_ms: u64) {
        if self.failed_sign_ins.len() >= MAX_ACCOUNTS && !self.failed_sign_ins.contains_key(&account) {
            return self.anonymous(now_ms);
        }
        self.since_ms.get_or_insert(now_ms);
        let count = self.failed_sign_ins.entry(account).or_default();
        *count = count.saturating_add(1);
    }

    /// The summaries due at `now_ms` (every count, once [`SUMMARY_EVERY_MS`] passed since the
    /// counts started, or at once when `force`), after which the counts start again.
    pub fn due(&mut self, now_ms: u64, force: bool) -> Vec<Summary> {
        let Some(since) = self.since_ms else { return Vec::new() };
        if !force && now_ms.saturating_sub(since) < SUMMARY_EVERY_MS {
            return Vec::new();
        }
        let outcome = |n: u64| format!("refused: {n} attempts since {since}");
        let mut summaries = Vec::new();
        if self.anonymous > 0 {
            summaries.push(Summary { account: None, action: ANONYMOUS, outcome: outcome(self.anonymous) });
        }
        for (account, n) in std::mem::take(&mut self.failed_sign_ins) {
            summaries.push(Summary { account: Some(account), action: FAILED_SIGN_IN, outcome: outcome(n) });
        }
        (self.anonymous, self.since_ms) = (0, None);
        summaries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_becomes_one_entry_a_minute() {
        let mut tally = Tally::default();
        let mut entries = 0;
        // A million anonymous requests and failed sign-ins over ten minutes, one every 0.6 ms.
        for i in 0..1_000_000u64 {
            let now = 1_000_000 + i * 6 / 10;
            tally.anonymous(now);
            tally.failed_sign_in(format!("member-{}", i % 3), now);
            entries += tally.due(now, false).len();
        }
        assert!(entries <= 10 * 4, "{entries} entries in ten minutes");
        let last = tally.due(2_000_000, true);
        assert_eq!(last.iter().filter(|s| s.action == FAILED_SIGN_IN).count(), 3);
        assert!(tally.due(2_000_001, true).is_empty(), "nothing new, nothing written");
    }

    #[test]
    fn counts_are_exact_and_accounts_beyond_the_cap_count_as_anonymous() {
        let mut tally = Tally::default();
        for i in 0..(MAX_ACCOUNTS + 10) {
            tally.failed_sign_in(format!("a{i}"), 5);
        }
        tally.failed_sign_in("a0".into(), 6);
        tally.anonymous(7);
        assert!(tally.due(SUMMARY_EVERY_MS + 4, false).is_empty(), "not a minute since the first count");
        let summaries = tally.due(SUMMARY_EVERY_MS + 5, false);
        assert_eq!(summaries.len(), MAX_ACCOUNTS + 1);
        assert_eq!(
            summaries[0],
            Summary { account: None, action: ANONYMOUS, outcome: "refused: 11 attempts since 5".into() }
        );
        let a0 = summaries.iter().find(|s| s.account.as_deref() == Some("a0")).unwrap();
        assert_eq!(a0.outcome, "refused: 2 attempts since 5");
    }
}
