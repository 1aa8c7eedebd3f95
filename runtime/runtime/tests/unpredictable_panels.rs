//! Can anyone predict a round's panel before proposing? The real runtime, block by block, with
//! BABE pre-digests signed by block authors whose secret keys the adversary does not hold.
//!
//! The adversary knows every public value: it reads the whole state, and it may run the runtime
//! forward on a copy of it (here: inside a storage transaction it rolls back), with any block
//! it likes, to see what a rule will yield. What it lacks is the honest authors' keys. Before each
//! proposal it predicts the panel that the draw will pick:
//!
//! - with the rule the coalition used before (the seed from pallet-revive's Ethereum block hash
//!   of the draw block), it predicts every panel;
//! - with today's rule (the seed from BABE's VRF randomness of the `DRAW_DELAY` blocks after the
//!   proposal's, served by the runtime's precompile), it does no better than chance.
//!
//! A colluding block author is measured too: it may withhold its block when it makes the last
//! block of a window and dislikes the panel, which gives it one re-roll.

use coalition_types::{
    hashing::Keccak,
    rules::{block_randomness_answer, block_randomness_call, round_seed, select_weighted, window_randomness},
    Address, DRAW_DELAY, RANDOMNESS_HISTORY, RANDOMNESS_PRECOMPILE,
};
use codec::Encode;
use polkadot_sdk::{
    frame_support::storage::{with_transaction, TransactionOutcome},
    sp_consensus_babe::{
        self,
        digests::{PreDigest, SecondaryVRFPreDigest},
        AuthorityPair, Slot, BABE_ENGINE_ID, RANDOMNESS_VRF_CONTEXT,
    },
    sp_core::{crypto::Pair as _, crypto::VrfSecret, sr25519, H160, H256, U256},
    sp_io::TestExternalities,
    sp_runtime::{generic, traits::Header as _, BuildStorage, Digest, DigestItem},
    *,
};
use tclearn_runtime::{
    AccountId, BabeConfig, BalancesConfig, Executive, Header, Revive, Runtime, RuntimeCall, RuntimeGenesisConfig,
    RuntimeOrigin, BABE_GENESIS_EPOCH_CONFIG, SLOT_DURATION,
};

struct Keccak256;

impl Keccak for Keccak256 {
    fn keccak256(input: &[u8]) -> [u8; 32] {
        polkadot_sdk::sp_crypto_hashing::keccak_256(input)
    }
}

/// Members of the modelled coalition, equally strong: any 3 of the 9 eligible are equally likely.
const MEMBERS: u8 = 10;
/// Validators per round.
const K: usize = 3;
/// Rounds each test plays.
const ROUNDS: usize = 300;

/// How a rule turns the chain into a draw's randomness, read after the draw window.
#[derive(Clone, Copy, PartialEq)]
enum Rule {
    /// The rule at 18f4962: pallet-revive's Ethereum block hash of `proposal + DRAW_DELAY`.
    EthBlockHash,
    /// Today's: BABE VRF randomness of `proposal + 1 ..= proposal + DRAW_DELAY`, through the
    /// precompile.
    VrfWindow,
}

/// A chain of the real runtime, and the block authors' secret keys (the honest ones'
/// are not the adversary's).
struct Chain {
    ext: TestExternalities,
    authors: Vec<AuthorityPair>,
    parent: H256,
    slot: u64,
}

fn member(index: u8) -> Address {
    Address::from([index + 1; 20])
}

fn caller() -> AccountId {
    AccountId::from([7u8; 32])
}

impl Chain {
    /// A chain whose BABE authorities hold keys from `seeds` (secret to everyone but the test).
    fn new(seeds: &[[u8; 32]]) -> Self {
        let authors: Vec<AuthorityPair> = seeds.iter().map(AuthorityPair::from_seed).collect();
        let genesis = RuntimeGenesisConfig {
            babe: BabeConfig {
                authorities: authors.iter().map(|pair| (pair.public(), 1)).collect(),
                epoch_config: BABE_GENESIS_EPOCH_CONFIG,
                ..Default::default()
            },
            balances: BalancesConfig { balances: vec![(caller(), 1u128 << 100)], ..Default::default() },
            ..Default::default()
        };
        let ext = TestExternalities::new(genesis.build_storage().expect("the genesis builds"));
        Self { ext, authors, parent: H256::zero(), slot: 1_000 }
    }

    /// The BABE pre-digest of `author` for `slot`, with its VRF signature over the slot's epoch
    /// (as the author's node makes it).
    fn pre_digest(author: &AuthorityPair, index: u32, slot: u64) -> DigestItem {
        let (randomness, epoch_index) = epoch_of(slot);
        let data = sp_consensus_babe::make_vrf_sign_data(&randomness, Slot::from(slot), epoch_index);
        let digest = PreDigest::SecondaryVRF(SecondaryVRFPreDigest {
            authority_index: index,
            slot: Slot::from(slot),
            vrf_signature: author.as_ref().vrf_sign(&data),
        });
        DigestItem::PreRuntime(BABE_ENGINE_ID, digest.encode())
    }

    /// Open a block at the next slot, authored by `author`, with its timestamp inherent: what
    /// runs next runs as its transactions. Must run inside `ext`.
    fn open(&mut self, author: usize) {
        self.slot += 1;
        let pair = self.authors.get(author).expect("an author of this chain");
        let digest = Digest { logs: vec![Self::pre_digest(pair, author as u32, self.slot)] };
        open_block(self.parent, self.slot, digest);
    }

    /// Finalize the open block.
    fn close(&mut self) {
        self.parent = Executive::finalize_block().hash();
    }

    /// The first block, in which the caller of the precompile maps its account (as every
    /// account that calls pallet-revive must).
    fn start(&mut self) {
        self.open(self.next_author());
        Revive::map_account(RuntimeOrigin::signed(caller())).expect("the account maps");
        self.close();
    }

    /// One whole block.
    fn block(&mut self, author: usize) {
        self.open(author);
        self.close();
    }

    /// The author of the next slot: BABE's secondary slots, modelled round robin.
    fn next_author(&self) -> usize {
        ((self.slot + 1) % self.authors.len() as u64) as usize
    }
}

/// The epoch randomness and index that a block at `slot` signs over.
fn epoch_of(slot: u64) -> ([u8; 32], u64) {
    let current = tclearn_runtime::Babe::current_epoch();
    let started = frame_system::Pallet::<Runtime>::block_number() > 0;
    if !started || slot < *current.start_slot + current.duration {
        (current.randomness, current.epoch_index)
    } else {
        let next = tclearn_runtime::Babe::next_epoch();
        (next.randomness, next.epoch_index)
    }
}

/// Open a block on `parent` with `digest`, and apply its timestamp inherent.
fn open_block(parent: H256, slot: u64, digest: Digest) {
    let number = frame_system::Pallet::<Runtime>::block_number() + 1;
    let header = Header::new(number, Default::default(), Default::default(), parent, digest);
    Executive::initialize_block(&header);
    let now = slot * SLOT_DURATION;
    let inherent: tclearn_runtime::UncheckedExtrinsic =
        generic::UncheckedExtrinsic::new_bare(RuntimeCall::Timestamp(pallet_timestamp::Call::set { now })).into();
    Executive::apply_extrinsic(inherent).expect("valid").expect("applied");
}

/// Ask the precompile, as a contract would, for the randomness of block `number`.
fn precompile_randomness(number: u32) -> Option<[u8; 32]> {
    let result = Revive::bare_call(
        RuntimeOrigin::signed(caller()),
        H160::from(RANDOMNESS_PRECOMPILE),
        U256::zero(),
        pallet_revive::TransactionLimits::WeightAndDeposit {
            weight_limit: <Runtime as frame_system::Config>::BlockWeights::get().max_block / 10,
            deposit_limit: u128::MAX,
        },
        block_randomness_call(number).to_vec(),
        &pallet_revive::ExecConfig::new_substrate_tx(),
    );
    let output = result.result.expect("the precompile answers");
    assert!(!output.did_revert(), "the precompile reverted");
    block_randomness_answer(&output.data).expect("a well-formed answer")
}

/// The randomness a rule reads for a round proposed in block `proposal`, in a block after its
/// window (as the contract's draw does).
fn rule_randomness(rule: Rule, proposal: u32) -> [u8; 32] {
    match rule {
        Rule::EthBlockHash => {
            Revive::eth_block_hash_from_number(U256::from(proposal + DRAW_DELAY))
                .expect("a recent Ethereum block hash")
                .0
        }
        Rule::VrfWindow => {
            let outputs: Vec<[u8; 32]> = (proposal + 1..=proposal + DRAW_DELAY)
                .map(|number| precompile_randomness(number).expect("the window's randomness is recorded"))
                .collect();
            window_randomness::<Keccak256>(&outputs)
        }
    }
}

/// The panel the contract draws from `randomness` for round `round` on tip `tip`, sorted.
fn panel(randomness: &[u8; 32], round: u64, tip: &[u8; 32]) -> Vec<Address> {
    let eligible: Vec<(Address, u64)> = (1..MEMBERS).map(|m| (member(m), 1)).collect();
    let seed = round_seed::<Keccak256>(randomness, round, tip);
    let mut panel = select_weighted::<Keccak256>(&eligible, K, seed);
    panel.sort();
    panel
}

/// The adversary's prediction, made as its proposal is included in the open block `proposal`:
/// run that block and the window's on a copy of the public state, each signed with the only
/// BABE key it holds (its own, not an authority's), then read what the rule yields in the block
/// after the window. Rolled back: the real chain never sees it.
fn predict(chain: &Chain, rule: Rule, proposal: u32, round: u64, tip: &[u8; 32]) -> Vec<Address> {
    let own_key = AuthorityPair::from_seed(&[0xAD; 32]);
    let authors = chain.authors.len() as u64;
    let mut slot = chain.slot;
    with_transaction(|| {
        let mut parent = Executive::finalize_block().hash();
        for block in 0..=DRAW_DELAY {
            slot += 1;
            let digest = Digest { logs: vec![Chain::pre_digest(&own_key, (slot % authors) as u32, slot)] };
            open_block(parent, slot, digest);
            if block < DRAW_DELAY {
                parent = Executive::finalize_block().hash();
            }
        }
        let predicted = panel(&rule_randomness(rule, proposal), round, tip);
        TransactionOutcome::Rollback(Ok::<_, polkadot_sdk::sp_runtime::DispatchError>(predicted))
    })
    .expect("a prediction")
}

/// Play `ROUNDS` rounds; returns how many panels the adversary predicted.
fn play(rule: Rule) -> usize {
    let seeds: Vec<[u8; 32]> = (0..4u8).map(|i| [0x40 + i; 32]).collect();
    let mut chain = Chain::new(&seeds);
    let mut hits = 0;
    let mut ext = std::mem::take(&mut chain.ext);
    ext.execute_with(|| {
        chain.start();
        for round in 0..ROUNDS as u64 {
            // The proposal's block; its tip is the hash of a block everyone has.
            let tip = chain.parent.0;
            chain.open(chain.next_author());
            let proposal = frame_system::Pallet::<Runtime>::block_number();
            let predicted = predict(&chain, rule, proposal, round, &tip);
            chain.close();
            for _ in 0..DRAW_DELAY {
                chain.block(chain.next_author());
            }
            // The draw, in the block after the window.
            chain.open(chain.next_author());
            let drawn = panel(&rule_randomness(rule, proposal), round, &tip);
            chain.close();
            hits += usize::from(predicted == drawn);
        }
    });
    hits
}

/// The most hits out of `ROUNDS` that chance (1/84 a round, 3.6 expected) allows:
/// Binomial(300, 1/84) has P(X > 15) = 9.3e-7.
const CHANCE_HITS_BOUND: usize = 15;

#[test]
fn the_old_rule_lets_the_adversary_predict_every_panel() {
    assert_eq!(play(Rule::EthBlockHash), ROUNDS);
}

#[test]
fn with_babe_vrf_randomness_the_adversary_predicts_at_chance() {
    let hits = play(Rule::VrfWindow);
    println!("VRF window: {hits} of {ROUNDS} panels predicted (chance: {:.1})", ROUNDS as f64 / 84.0);
    assert!(hits <= CHANCE_HITS_BOUND, "{hits} of {ROUNDS} panels predicted");
}

#[test]
fn the_recorded_randomness_is_babes_and_only_past_blocks_in_the_window_are_served() {
    let seeds: Vec<[u8; 32]> = (0..4u8).map(|i| [0x60 + i; 32]).collect();
    let mut chain = Chain::new(&seeds);
    let mut ext = std::mem::take(&mut chain.ext);
    ext.execute_with(|| {
        chain.start();
        // Past an epoch change (200 slots), so that the epoch randomness changes too.
        for _ in 0..(RANDOMNESS_HISTORY + 250) {
            let author = chain.next_author();
            let slot = chain.slot + 1;
            let (randomness, epoch_index) = epoch_of(slot);
            chain.block(author);
            let number = frame_system::Pallet::<Runtime>::block_number();
            // What BABE itself derives from the author's VRF output.
            let public = chain.authors[author].public();
            let transcript = sp_consensus_babe::make_vrf_transcript(&randomness, Slot::from(slot), epoch_index);
            let PreDigest::SecondaryVRF(digest) = frame_system::Pallet::<Runtime>::digest()
                .logs
                .iter()
                .find_map(|item| item.pre_runtime_try_to::<PreDigest>(&BABE_ENGINE_ID))
                .expect("a BABE pre-digest")
            else {
                panic!("a secondary VRF pre-digest");
            };
            let expected: [u8; 32] = AsRef::<sr25519::Public>::as_ref(&public)
                .make_bytes(RANDOMNESS_VRF_CONTEXT, &transcript, &digest.vrf_signature.pre_output)
                .expect("a valid VRF output");
            assert_eq!(tclearn_runtime::randomness::Outputs::<Runtime>::get(number), Some(expected), "block {number}");
        }
        // Read by a transaction of the next block.
        chain.open(chain.next_author());
        let now = frame_system::Pallet::<Runtime>::block_number();
        assert_eq!(precompile_randomness(now), None, "the current block's is not served");
        assert!(precompile_randomness(now - 1).is_some(), "the last block's");
        assert!(precompile_randomness(now - RANDOMNESS_HISTORY).is_some(), "the oldest kept");
        assert_eq!(precompile_randomness(now - RANDOMNESS_HISTORY - 1), None, "older than the window");
        assert_eq!(
            tclearn_runtime::randomness::Outputs::<Runtime>::get(now - RANDOMNESS_HISTORY - 1),
            None,
            "pruned, not just hidden"
        );
        assert_eq!(precompile_randomness(now + 5), None, "a future block");
        assert_eq!(precompile_randomness(0), None, "genesis has no VRF output");
        chain.close();
    });
}

/// The colluding block author: it holds authority 0's key and two partner members. When its slot
/// makes the last block of a window, it knows the whole window before anyone else (the first
/// blocks are public, its own VRF output it computes), and withholds its block unless the
/// panel gives its partners two of the three seats; the next slot's (honest) author then makes
/// that block instead. Returns how many rounds the partners captured.
fn play_withholding(rounds: usize) -> usize {
    let seeds: Vec<[u8; 32]> = (0..4u8).map(|i| [0x50 + i; 32]).collect();
    let mut chain = Chain::new(&seeds);
    let partners = [member(1), member(2)];
    let captured = |panel: &[Address]| partners.iter().all(|p| panel.contains(p));
    let mut captures = 0;
    let mut ext = std::mem::take(&mut chain.ext);
    ext.execute_with(|| {
        chain.start();
        for round in 0..rounds as u64 {
            let tip = chain.parent.0;
            chain.block(chain.next_author());
            let proposal = frame_system::Pallet::<Runtime>::block_number();
            for block in 1..=DRAW_DELAY {
                let author = chain.next_author();
                if block == DRAW_DELAY && author == 0 {
                    let (parent, slot) = (chain.parent, chain.slot);
                    let panel = with_transaction(|| {
                        chain.block(author);
                        chain.open(chain.next_author());
                        let panel = panel(&rule_randomness(Rule::VrfWindow, proposal), round, &tip);
                        TransactionOutcome::Rollback(Ok::<_, polkadot_sdk::sp_runtime::DispatchError>(panel))
                    })
                    .expect("a look ahead");
                    (chain.parent, chain.slot) = (parent, slot);
                    if !captured(&panel) {
                        // Withhold: the slot passes empty.
                        chain.slot += 1;
                    }
                }
                chain.block(chain.next_author());
            }
            chain.open(chain.next_author());
            captures += usize::from(captured(&panel(&rule_randomness(Rule::VrfWindow, proposal), round, &tip)));
            chain.close();
        }
    });
    captures
}

#[test]
fn a_colluding_author_that_withholds_gets_at_most_one_re_roll() {
    const ROUNDS: usize = 600;
    // Honest draw: both partners among 3 of 9 equally strong members: 7 of 84 panels.
    let honest = 7.0 / 84.0;
    // It makes the window's last block in 1 round of 4, and then draws twice.
    let one_reroll = 1.0 - (1.0 - honest) * (1.0 - honest);
    let expected = 0.25 * one_reroll + 0.75 * honest;
    let captures = play_withholding(ROUNDS);
    let rate = captures as f64 / ROUNDS as f64;
    println!(
        "withholding author (1 of 4 validators), 2 partners of 9: captured {captures} of {ROUNDS} rounds \
         ({:.1}%), honest draw {:.1}%, model {:.1}%",
        100.0 * rate,
        100.0 * honest,
        100.0 * expected
    );
    let sigma = (ROUNDS as f64 * expected * (1.0 - expected)).sqrt();
    assert!((captures as f64 - ROUNDS as f64 * expected).abs() <= 5.0 * sigma, "{captures} captures");
}
