//! The coalition's events, declared once in [`coalition_events!`](crate::coalition_events).
//!
//! The macro hands the declarations to a macro of the caller's: the contract makes them ink!
//! events (`#[ink::event]`, with `#[ink(topic)]` where a field is marked `[topic]`); this
//! module makes them plain SCALE types that the client decodes. Both come from the same tokens,
//! so a field added to an event is added for both.

/// Calls `$emit! { ... }` with every event of the coalition: `Name { field: Type [topic], ... }`,
/// each with its docs. Types are written as absolute paths into this crate (`::coalition_types`,
/// not `$crate`, which ink!'s metadata cannot name), so the caller needs no imports.
#[macro_export]
macro_rules! coalition_events {
    ($emit:ident) => {
        $emit! {
            /// A member joined.
            MemberAdded {
                /// The new member.
                member: ::coalition_types::Address [topic],
            }
            /// A member left.
            MemberRemoved {
                /// The former member.
                member: ::coalition_types::Address [topic],
            }
            /// Strengths changed because `N` or some `D_i` changed.
            StrengthsUpdated {
                /// Members, `N`.
                members: u32,
                /// Samples, `D`.
                total_samples: u64,
                /// Every member's strength, in slot order.
                strengths: ::coalition_types::alloc_vec::Vec<(::coalition_types::Address, u64)>,
            }
            /// A member's local test set was registered, replaced or cleared.
            LocalTestSetChanged {
                /// The member.
                member: ::coalition_types::Address [topic],
                /// Its set now.
                set: ::core::option::Option<::coalition_types::types::LocalTestSet>,
            }
            /// A round opened on a candidate; its validators are drawn later, from a block hash
            /// that does not exist yet.
            RoundOpened {
                /// Round id.
                round: u64 [topic],
                /// The proposer.
                proposer: ::coalition_types::Address [topic],
                /// The candidate's parameter hash.
                candidate: ::coalition_types::H256,
                /// The tip it builds on.
                parent: u32,
                /// Where it is in the vault.
                vault_ref: ::coalition_types::alloc_vec::Vec<u8>,
                /// Samples it was trained on.
                samples: u64,
                /// Differential privacy its training spent, as declared.
                privacy: ::core::option::Option<::coalition_types::PrivacySpend>,
                /// The last block of the draw window: the VRF randomness of the `DRAW_DELAY` blocks
                /// up to it draws the validators.
                draw_block: ::coalition_types::BlockNumber,
            }
            /// A round's validators were drawn.
            ValidatorsDrawn {
                /// Round id.
                round: u64 [topic],
                /// The validators, in draw order.
                validators: ::coalition_types::alloc_vec::Vec<::coalition_types::Address>,
                /// The seed of the round's draws.
                seed: ::coalition_types::H256,
                /// Last block to commit.
                commit_deadline: ::coalition_types::BlockNumber,
            }
            /// A validator committed.
            Committed {
                /// Round id.
                round: u64 [topic],
                /// The validator.
                validator: ::coalition_types::Address [topic],
            }
            /// A round moved to another phase.
            PhaseChanged {
                /// Round id.
                round: u64 [topic],
                /// The new phase.
                phase: ::coalition_types::types::Phase,
                /// Its last block (for open phases).
                deadline: ::coalition_types::BlockNumber,
            }
            /// A validator revealed its report.
            Revealed {
                /// Round id.
                round: u64 [topic],
                /// The validator.
                validator: ::coalition_types::Address [topic],
                /// The report.
                report: ::coalition_types::types::Report,
            }
            /// A validator's report was not counted.
            ValidatorDeviated {
                /// Round id.
                round: u64 [topic],
                /// The validator.
                validator: ::coalition_types::Address [topic],
                /// Why.
                deviation: ::coalition_types::types::Deviation,
            }
            /// A round was tallied.
            RoundTallied {
                /// Round id.
                round: u64 [topic],
                /// `None` if accepted, else why not.
                rejection: ::core::option::Option<::coalition_types::types::Rejection>,
                /// Performance on G, the counted reports' median G metric (none when no G digest had
                /// a majority).
                performance: ::core::option::Option<i64>,
                /// The lineage's best performance it was compared with.
                best_performance: i64,
                /// Counted votes to accept.
                accepts: u32,
                /// Reports counted.
                counted: u32,
            }
            /// A general was drawn to seal the block.
            GeneralChosen {
                /// Round id.
                round: u64 [topic],
                /// The general.
                general: ::coalition_types::Address [topic],
            }
            /// The general sealed the block.
            Sealed {
                /// Round id.
                round: u64 [topic],
                /// The general.
                general: ::coalition_types::Address [topic],
                /// The block's hash.
                block_hash: ::coalition_types::H256,
                /// Where the model is in the vault.
                vault_ref: ::coalition_types::alloc_vec::Vec<u8>,
            }
            /// A validator attested the sealed block.
            Attested {
                /// Round id.
                round: u64 [topic],
                /// The validator.
                validator: ::coalition_types::Address [topic],
            }
            /// A round failed.
            RoundFailed {
                /// Round id.
                round: u64 [topic],
                /// Why.
                reason: ::coalition_types::types::Failure,
            }
            /// A proposer released the claims of its round that ended without a block.
            ClaimsReleased {
                /// Round id.
                round: u64 [topic],
                /// The proposer, who got the claims' deposit back.
                proposer: ::coalition_types::Address [topic],
                /// Data IDs released.
                released: u32,
            }
            /// A block was appended to the model chain.
            BlockAppended {
                /// Its index.
                index: u32 [topic],
                /// Its hash.
                block_hash: ::coalition_types::H256,
                /// Its parameter hash.
                parameter_hash: ::coalition_types::H256,
                /// Its contributor.
                contributor: ::core::option::Option<::coalition_types::Address>,
                /// The round, or none for a revert.
                round: ::core::option::Option<u64>,
                /// Every member's strength once the block is appended (hashed into the block).
                strengths: ::coalition_types::alloc_vec::Vec<(::coalition_types::Address, u64)>,
            }
            /// A governance proposal was made.
            ProposalCreated {
                /// Proposal id.
                proposal: u32 [topic],
                /// Who made it.
                proposer: ::coalition_types::Address [topic],
                /// What it does.
                action: ::coalition_types::types::Action,
                /// Last block of voting.
                voting_ends: ::coalition_types::BlockNumber,
                /// Last block it may be enacted in.
                expires: ::coalition_types::BlockNumber,
            }
            /// A member voted.
            Voted {
                /// Proposal id.
                proposal: u32 [topic],
                /// The voter.
                voter: ::coalition_types::Address [topic],
                /// Aye or nay.
                aye: bool,
            }
            /// A proposal was rejected by the vote.
            ProposalRejected {
                /// Proposal id.
                proposal: u32 [topic],
                /// Why.
                reason: ::coalition_types::types::ProposalRejection,
            }
            /// A proposal was enacted.
            ProposalEnacted {
                /// Proposal id.
                proposal: u32 [topic],
                /// What it did.
                action: ::coalition_types::types::Action,
            }
            /// A passed proposal could no longer apply and was closed.
            ProposalFailed {
                /// Proposal id.
                proposal: u32 [topic],
                /// Why its action could not apply.
                reason: ::coalition_types::types::Error,
            }
            /// A passed proposal was not enacted in time and was closed.
            ProposalExpired {
                /// Proposal id.
                proposal: u32 [topic],
            }
        }
    };
}

/// Plain SCALE types of the events, for decoding off chain.
macro_rules! plain_events {
    ($(
        $(#[doc = $doc:expr])*
        $name:ident {
            $( $(#[doc = $field_doc:expr])* $field:ident : $ty:ty $([$topic:ident])? ),* $(,)?
        }
    )*) => {
        $(
            $(#[doc = $doc])*
            #[derive(Debug, Clone, PartialEq, Eq, codec::Encode, codec::Decode, scale_info::TypeInfo)]
            pub struct $name {
                $( $(#[doc = $field_doc])* pub $field: $ty, )*
            }
        )*

        /// Every event's name, as the contract's metadata labels it.
        pub const NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}

coalition_events!(plain_events);
