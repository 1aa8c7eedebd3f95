//! # Audit anchors
//!
//! The encrypted model vault (TCLearn level B) keeps an append-only access log: who read or wrote
//! which model, when. Its operator periodically computes a root over that log (for example a
//! Merkle root) and anchors it here, so that anyone can later prove that the log they are shown
//! is the one that existed at anchoring time.
//!
//! ## Protocol
//! - The instantiator becomes the **operator**; only the operator anchors, and it may hand the
//!   role to another account.
//! - `anchor(root, log_length)` appends anchor number `count` covering log entries
//!   `0..log_length`, stamped with the block number and timestamp, and emits [`Anchored`].
//! - Anyone reads anchors by index, the latest anchor and the count.
//!
//! ## Invariants
//! - Anchors are append-only: none is ever changed or removed.
//! - `log_length` strictly grows from one anchor to the next: a shorter or equal log would mean
//!   the operator truncated or rewrote the audit trail, so it is refused.
//! - The number of anchors is bounded by `u64::MAX`; appending past it is refused, never wraps.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

#[ink::contract]
mod audit_anchors {
    use ink::{storage::Mapping, H256};

    /// One anchored root of the vault's access log.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Anchor {
        /// Root over log entries `0..log_length`.
        pub root: H256,
        /// Number of log entries the root covers.
        pub log_length: u64,
        /// Block in which the root was anchored.
        pub block: BlockNumber,
        /// Timestamp (ms) of that block.
        pub timestamp: Timestamp,
    }

    /// Errors of this contract.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    pub enum Error {
        /// The caller is not the operator.
        NotOperator,
        /// `log_length` is not larger than the latest anchor's: the log may not shrink.
        LogNotGrown,
        /// No more anchors can be counted.
        TooManyAnchors,
    }

    /// Result type of this contract's messages.
    pub type Result<T> = core::result::Result<T, Error>;

    /// A root was anchored.
    #[ink(event)]
    pub struct Anchored {
        /// Index of the new anchor.
        #[ink(topic)]
        pub index: u64,
        /// The anchored root.
        pub root: H256,
        /// Number of log entries it covers.
        pub log_length: u64,
    }

    /// The operator role moved to another account.
    #[ink(event)]
    pub struct OperatorChanged {
        /// The previous operator.
        #[ink(topic)]
        pub previous: Address,
        /// The new operator.
        #[ink(topic)]
        pub operator: Address,
    }

    /// Contract storage.
    #[ink(storage)]
    pub struct AuditAnchors {
        /// The account allowed to anchor.
        operator: Address,
        /// Anchors by index, `0..count`.
        anchors: Mapping<u64, Anchor>,
        /// Number of anchors so far.
        count: u64,
    }

    impl AuditAnchors {
        /// A contract with no anchors, operated by the caller.
        #[ink(constructor)]
        pub fn new() -> Self {
            Self { operator: Self::env().caller(), anchors: Mapping::new(), count: 0 }
        }

        /// Anchor `root`, which covers the first `log_length` entries of the access log.
        /// Returns the new anchor's index.
        #[ink(message)]
        pub fn anchor(&mut self, root: H256, log_length: u64) -> Result<u64> {
            self.ensure_operator()?;
            self.ensure_log_grows(log_length)?;
            let index = self.count;
            let count = index.checked_add(1).ok_or(Error::TooManyAnchors)?;
            let anchor =
                Anchor { root, log_length, block: self.env().block_number(), timestamp: self.env().block_timestamp() };
            self.anchors.insert(index, &anchor);
            self.count = count;
            self.env().emit_event(Anchored { index, root, log_length });
            Ok(index)
        }

        /// Hand the operator role to `operator`.
        #[ink(message)]
        pub fn set_operator(&mut self, operator: Address) -> Result<()> {
            self.ensure_operator()?;
            let previous = core::mem::replace(&mut self.operator, operator);
            self.env().emit_event(OperatorChanged { previous, operator });
            Ok(())
        }

        /// The anchor at `index`, if there is one.
        #[ink(message)]
        pub fn get(&self, index: u64) -> Option<Anchor> {
            self.anchors.get(index)
        }

        /// The latest anchor and its index, if any.
        #[ink(message)]
        pub fn latest(&self) -> Option<(u64, Anchor)> {
            let index = self.count.checked_sub(1)?;
            self.anchors.get(index).map(|anchor| (index, anchor))
        }

        /// Number of anchors.
        #[ink(message)]
        pub fn count(&self) -> u64 {
            self.count
        }

        /// The current operator.
        #[ink(message)]
        pub fn operator(&self) -> Address {
            self.operator
        }

        fn ensure_operator(&self) -> Result<()> {
            if self.env().caller() == self.operator {
                Ok(())
            } else {
                Err(Error::NotOperator)
            }
        }

        fn ensure_log_grows(&self, log_length: u64) -> Result<()> {
            match self.latest() {
                Some((_, latest)) if log_length <= latest.log_length => Err(Error::LogNotGrown),
                _ => Ok(()),
            }
        }
    }

    impl Default for AuditAnchors {
        fn default() -> Self {
            Self::new()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use ink::env::{test, DefaultEnvironment};

        fn root(byte: u8) -> H256 {
            H256::from([byte; 32])
        }

        fn decode_anchored(event: &test::EmittedEvent) -> Anchored {
            <Anchored as ink::scale::Decode>::decode(&mut &event.data[..]).expect("an Anchored event")
        }

        #[ink::test]
        fn operator_anchors_and_everyone_reads() {
            let accounts = test::default_accounts();
            test::set_caller(accounts.alice);
            let mut contract = AuditAnchors::new();
            assert_eq!(contract.operator(), accounts.alice);
            assert_eq!(contract.latest(), None);

            test::set_block_number::<DefaultEnvironment>(7);
            assert_eq!(contract.anchor(root(1), 10), Ok(0));
            test::set_block_number::<DefaultEnvironment>(9);
            assert_eq!(contract.anchor(root(2), 25), Ok(1));

            test::set_caller(accounts.bob);
            assert_eq!(contract.count(), 2);
            let first = contract.get(0).expect("anchor 0");
            assert_eq!((first.root, first.log_length, first.block), (root(1), 10, 7));
            let (index, latest) = contract.latest().expect("a latest anchor");
            assert_eq!((index, latest.root, latest.log_length, latest.block), (1, root(2), 25, 9));
            assert_eq!(contract.get(2), None);

            let events = test::recorded_events();
            assert_eq!(events.len(), 2);
            let second = decode_anchored(&events[1]);
            assert_eq!((second.index, second.root, second.log_length), (1, root(2), 25));
        }

        #[ink::test]
        fn others_cannot_anchor() {
            let accounts = test::default_accounts();
            test::set_caller(accounts.alice);
            let mut contract = AuditAnchors::new();
            test::set_caller(accounts.eve);
            assert_eq!(contract.anchor(root(1), 1), Err(Error::NotOperator));
            assert_eq!(contract.set_operator(accounts.eve), Err(Error::NotOperator));
            assert_eq!(contract.count(), 0);
            assert!(test::recorded_events().is_empty());
        }

        #[ink::test]
        fn the_log_may_not_shrink_or_stand_still() {
            let accounts = test::default_accounts();
            test::set_caller(accounts.alice);
            let mut contract = AuditAnchors::new();
            assert_eq!(contract.anchor(root(1), 10), Ok(0));
            assert_eq!(contract.anchor(root(2), 10), Err(Error::LogNotGrown));
            assert_eq!(contract.anchor(root(3), 9), Err(Error::LogNotGrown));
            assert_eq!(contract.count(), 1);
            assert_eq!(contract.latest().map(|(_, a)| a.root), Some(root(1)));
        }

        #[ink::test]
        fn operator_role_moves() {
            let accounts = test::default_accounts();
            test::set_caller(accounts.alice);
            let mut contract = AuditAnchors::new();
            assert_eq!(contract.set_operator(accounts.bob), Ok(()));
            assert_eq!(contract.anchor(root(1), 1), Err(Error::NotOperator));
            test::set_caller(accounts.bob);
            assert_eq!(contract.anchor(root(1), 1), Ok(0));
            assert_eq!(test::recorded_events().len(), 2);
        }
    }
}
