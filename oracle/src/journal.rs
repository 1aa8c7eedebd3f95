//! The oracle's journal: what it did in each round, in an embedded database (redb) that
//! commits durably before the oracle acts on chain.
//!
//! The rules that make a restart safe:
//! - the report and its salt are written **before** the commitment is submitted, and never
//!   replaced: a restarted oracle commits (if the chain has no commitment yet) and reveals exactly
//!   that report, never a new evaluation;
//! - the chain is the judge of what happened: a commitment found on chain is not submitted again,
//!   even if the journal did not get to record it (a crash between the transaction and the write).

use codec::{Decode, Encode};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use tclearn_client::coalition::Report;

/// Round id → SCALE-encoded [`RoundEntry`].
const ROUNDS: TableDefinition<u64, &[u8]> = TableDefinition::new("rounds");
/// Named counters (`next_block`).
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const NEXT_BLOCK: &str = "next_block";
/// Round id → evaluations started and not seen to end (a crash of the oracle or its host
/// during one leaves it counted).
const EVALUATIONS: TableDefinition<u64, u32> = TableDefinition::new("evaluations");
/// Which chain (genesis hash) and coalition (address) the journal is for.
const IDENTITY: TableDefinition<&str, &[u8]> = TableDefinition::new("identity");

/// Why the journal failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The database refused.
    #[error("journal: {0}")]
    Database(String),
    /// The journal belongs to another chain or coalition.
    #[error(
        "this journal is for {journal}, not {this}: keep one journal per chain and coalition (the data directory does)"
    )]
    OtherCoalition {
        /// The journal's chain and coalition.
        journal: String,
        /// This oracle's.
        this: String,
    },
    /// An entry does not decode.
    #[error("journal entry for round {round}: {reason}")]
    Corrupt {
        /// Round id.
        round: u64,
        /// Decoding error.
        reason: String,
    },
}

fn database(error: impl Into<redb::Error>) -> JournalError {
    JournalError::Database(error.into().to_string())
}

/// What the oracle did in one round.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct RoundEntry {
    /// The report, once evaluated; never replaced.
    pub report: Option<Report>,
    /// Its salt, written with it.
    pub salt: Option<[u8; 32]>,
    /// The commitment is on chain.
    pub committed: bool,
    /// The report is revealed.
    pub revealed: bool,
    /// Sealed as the general.
    pub sealed: bool,
    /// Attested.
    pub attested: bool,
}

/// The journal.
pub struct Journal {
    db: Database,
}

impl Journal {
    /// Open (or create) the journal at `path`.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let db = Database::create(path).map_err(database)?;
        let write = db.begin_write().map_err(database)?;
        write.open_table(ROUNDS).map_err(database)?;
        write.open_table(META).map_err(database)?;
        write.open_table(IDENTITY).map_err(database)?;
        write.open_table(EVALUATIONS).map_err(database)?;
        write.commit().map_err(database)?;
        Ok(Self { db })
    }

    /// Record, durably, that an evaluation of round `id`'s candidate starts; returns how many
    /// had started before without being seen to end (each one a crash of the oracle or its host
    /// in the middle of one).
    pub fn evaluation_started(&self, id: u64) -> Result<u32, JournalError> {
        let write = self.db.begin_write().map_err(database)?;
        let interrupted = {
            let mut table = write.open_table(EVALUATIONS).map_err(database)?;
            let interrupted = table.get(id).map_err(database)?.map_or(0, |v| v.value());
            table.insert(id, interrupted.saturating_add(1)).map_err(database)?;
            interrupted
        };
        write.commit().map_err(database)?;
        Ok(interrupted)
    }

    /// Record that round `id`'s evaluation ended, whatever its outcome.
    pub fn evaluation_ended(&self, id: u64) -> Result<(), JournalError> {
        let write = self.db.begin_write().map_err(database)?;
        {
            let mut table = write.open_table(EVALUATIONS).map_err(database)?;
            table.remove(id).map_err(database)?;
        }
        write.commit().map_err(database)
    }

    /// Bind the journal to a chain (its genesis hash) and a coalition (its address) on first
    /// use; afterwards, refuse any other: a report journaled on one chain or coalition is never
    /// committed on another.
    pub fn ensure_identity(&self, genesis: &[u8; 32], coalition: &[u8; 20]) -> Result<(), JournalError> {
        let this = [&genesis[..], &coalition[..]].concat();
        let describe = |bytes: &[u8]| {
            let (chain, contract) = bytes.split_at(bytes.len().min(32));
            format!("chain 0x{} and coalition 0x{}", hex::encode(chain), hex::encode(contract))
        };
        let write = self.db.begin_write().map_err(database)?;
        {
            let mut table = write.open_table(IDENTITY).map_err(database)?;
            let existing = table.get("chain+coalition").map_err(database)?.map(|v| v.value().to_vec());
            match existing {
                Some(existing) if existing != this => {
                    return Err(JournalError::OtherCoalition { journal: describe(&existing), this: describe(&this) })
                }
                Some(_) => {}
                None => {
                    table.insert("chain+coalition", this.as_slice()).map_err(database)?;
                }
            }
        }
        write.commit().map_err(database)
    }

    /// Remove round `id`'s entry: only for an entry that is not this round's (its report names
    /// another candidate) and was never committed on chain.
    pub fn forget(&self, id: u64) -> Result<(), JournalError> {
        let write = self.db.begin_write().map_err(database)?;
        {
            let mut table = write.open_table(ROUNDS).map_err(database)?;
            table.remove(id).map_err(database)?;
        }
        write.commit().map_err(database)
    }

    /// Round `id`'s entry (empty if none).
    pub fn round(&self, id: u64) -> Result<RoundEntry, JournalError> {
        let read = self.db.begin_read().map_err(database)?;
        let table = read.open_table(ROUNDS).map_err(database)?;
        let Some(bytes) = table.get(id).map_err(database)? else { return Ok(RoundEntry::default()) };
        RoundEntry::decode(&mut bytes.value()).map_err(|e| JournalError::Corrupt { round: id, reason: e.to_string() })
    }

    /// Write round `id`'s entry durably. A report already journaled is kept: writing another one
    /// is refused.
    pub fn record(&self, id: u64, entry: &RoundEntry) -> Result<(), JournalError> {
        let write = self.db.begin_write().map_err(database)?;
        {
            // Read and written in one transaction: the check cannot race another writer.
            let mut table = write.open_table(ROUNDS).map_err(database)?;
            let previous = match table.get(id).map_err(database)? {
                Some(bytes) => Some(
                    RoundEntry::decode(&mut bytes.value())
                        .map_err(|e| JournalError::Corrupt { round: id, reason: e.to_string() })?,
                ),
                None => None,
            };
            if previous.is_some_and(|p| p.report.is_some() && (p.report != entry.report || p.salt != entry.salt)) {
                return Err(JournalError::Database(format!("round {id} already has a report; it is never replaced")));
            }
            table.insert(id, entry.encode().as_slice()).map_err(database)?;
        }
        write.commit().map_err(database)
    }

    /// The next block to read events from, if any block was read.
    pub fn next_block(&self) -> Result<Option<u64>, JournalError> {
        let read = self.db.begin_read().map_err(database)?;
        let table = read.open_table(META).map_err(database)?;
        Ok(table.get(NEXT_BLOCK).map_err(database)?.map(|v| v.value()))
    }

    /// Record that blocks before `number` were read.
    pub fn set_next_block(&self, number: u64) -> Result<(), JournalError> {
        let write = self.db.begin_write().map_err(database)?;
        {
            let mut table = write.open_table(META).map_err(database)?;
            table.insert(NEXT_BLOCK, number).map_err(database)?;
        }
        write.commit().map_err(database)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tclearn_client::{
        coalition::{Scores, Verdict},
        H256,
    };

    fn report(g_metric: i64) -> Report {
        Report {
            round: 1,
            candidate: H256::repeat_byte(1),
            verdict: Verdict::Scored(Scores { g_metric, g_digest: H256::repeat_byte(2), l_keeps: true, l_size: 0 }),
        }
    }

    #[test]
    fn entries_survive_reopening_and_a_report_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.redb");
        {
            let journal = Journal::open(&path).unwrap();
            assert_eq!(journal.round(1).unwrap(), RoundEntry::default());
            assert_eq!(journal.next_block().unwrap(), None);
            let entry = RoundEntry { report: Some(report(5)), salt: Some([9; 32]), ..Default::default() };
            journal.record(1, &entry).unwrap();
            journal.set_next_block(42).unwrap();
        }
        let journal = Journal::open(&path).unwrap();
        let mut entry = journal.round(1).unwrap();
        assert_eq!(
            (entry.report, entry.salt, journal.next_block().unwrap()),
            (Some(report(5)), Some([9; 32]), Some(42))
        );
        entry.committed = true;
        journal.record(1, &entry).unwrap();
        assert!(journal.round(1).unwrap().committed);
        let other = RoundEntry { report: Some(report(6)), ..entry.clone() };
        assert!(journal.record(1, &other).is_err(), "another report for the same round is refused");
        let resalted = RoundEntry { salt: Some([1; 32]), ..entry };
        assert!(journal.record(1, &resalted).is_err());
        assert_eq!(journal.round(1).unwrap().report, Some(report(5)));
        journal.forget(1).unwrap();
        assert_eq!(journal.round(1).unwrap(), RoundEntry::default());
    }

    #[test]
    fn evaluations_that_never_ended_are_counted_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.redb");
        assert_eq!(Journal::open(&path).unwrap().evaluation_started(7).unwrap(), 0);
        // The process died during the evaluation: the next start sees one interrupted.
        let journal = Journal::open(&path).unwrap();
        assert_eq!(journal.evaluation_started(7).unwrap(), 1);
        journal.evaluation_ended(7).unwrap();
        assert_eq!(journal.evaluation_started(7).unwrap(), 0, "an evaluation that ended resets the count");
        assert_eq!(journal.evaluation_started(8).unwrap(), 0, "per round");
    }

    #[test]
    fn a_journal_serves_one_chain_and_one_coalition() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.redb");
        Journal::open(&path).unwrap().ensure_identity(&[1; 32], &[2; 20]).unwrap();
        let journal = Journal::open(&path).unwrap();
        journal.ensure_identity(&[1; 32], &[2; 20]).unwrap();
        let other_chain = journal.ensure_identity(&[3; 32], &[2; 20]).unwrap_err().to_string();
        assert!(other_chain.contains("this journal is for chain 0x0101"), "{other_chain}");
        assert!(matches!(journal.ensure_identity(&[1; 32], &[4; 20]), Err(JournalError::OtherCoalition { .. })));
    }
}
