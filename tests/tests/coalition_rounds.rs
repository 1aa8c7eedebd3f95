//! The coalition protocol on the dev node, through the Rust client, with validators played by dev
//! accounts:
//! - three rounds: accepted, sealed, attested and appended (with the most data IDs a proposal
//!   may carry); rejected by the lambda rule; rejected for inconsistent G digests;
//! - one of four drawn validators lies (a huge local-set size, an out-of-range metric, a forged G
//!   metric with the right digest): each round ends as the honest validators find, and the liar
//!   is recorded;
//! - governance: a hyperparameter change, a member removal (and a second removal of the same
//!   member that closes as failed instead of blocking governance), a revert;
//! - the privacy budget: a proposal that would pass it, or declares no spend, is refused.

use tclearn_client::{
    account_to_address,
    coalition::{
        events, hashing, rdp, rules, Action, BlockAppended, CallError, Coalition, CoalitionError, Deviation,
        DpDeclaration, Genesis, Hyperparameter, LocalTestSet, MemberRemoved, NativeKeccak, Phase, PrivacySpend,
        ProposalEnacted, ProposalFailed, ProposalStatus, Rejection, Report, RoundOpened, RoundTallied, Scores, Sealed,
        StrengthsUpdated, ValidatorDeviated, ValidatorsDrawn, Verdict, DRAW_DELAY, MAX_DATA_IDS,
    },
    ContractEvent, Keypair, H160, H256,
};
use tclearn_e2e::{artifact, seal_blocks, test_genesis, Node, NodeConfig};

struct Scene {
    node: Node,
    coalition: Coalition,
    alice: Keypair,
    validators: Vec<Keypair>,
}

impl Scene {
    /// A coalition of Alice and `validators` (dev names), `k` validators per round.
    async fn new(validators: &[&str], k: u32, change: impl FnOnce(&mut Genesis)) -> Self {
        let node = Node::start(NodeConfig::dev_instant()).await;
        let client = node.client().await;
        let alice = Keypair::dev("Alice").unwrap();
        let validators: Vec<Keypair> = validators.iter().map(|n| Keypair::dev(n).unwrap()).collect();
        let founders: Vec<H160> =
            std::iter::once(&alice).chain(&validators).map(|k| account_to_address(&k.account_id())).collect();
        let mut genesis = test_genesis(k, founders);
        change(&mut genesis);
        let coalition = Coalition::deploy(&client, &alice, &artifact("coalition"), &genesis)
            .await
            .unwrap_or_else(|e| panic!("deploy: {e}\n{}", node.log_tail()));
        Self { node, coalition, alice, validators }
    }

    fn key_of(&self, address: H160) -> &Keypair {
        self.validators.iter().chain([&self.alice]).find(|k| k.address() == address).expect("a known key")
    }

    /// Alice proposes `candidate` with `samples` data IDs from `data_seed`; the validators are
    /// drawn once `DRAW_DELAY` more blocks exist. Returns the round and its validators.
    async fn propose_and_draw(&self, candidate: H256, data_seed: u16, samples: u32) -> (u64, Vec<H160>) {
        let c = &self.coalition;
        let parent = c.height(&self.alice.account_id()).await.unwrap();
        let data_ids: Vec<H256> = (0..samples)
            .map(|i| {
                let mut id = [0u8; 32];
                id[..2].copy_from_slice(&data_seed.to_be_bytes());
                id[2..6].copy_from_slice(&i.to_be_bytes());
                H256(id)
            })
            .collect();
        let (round, outcome) = c
            .propose(&self.alice, parent, candidate, b"vault://candidate", u64::from(samples), &data_ids, None)
            .await
            .unwrap_or_else(|e| panic!("propose: {e}\n{}", self.node.log_tail()));
        let opened: Vec<RoundOpened> = c.events(&outcome.included.contract_events, "RoundOpened").unwrap();
        assert_eq!(opened[0].samples, u64::from(samples));
        // Nobody knows the panel yet: the blocks whose VRF randomness draws it do not exist.
        assert!(c.round_validators(&self.alice.account_id(), round).await.unwrap().is_empty());
        let early = c.advance(&self.alice).await;
        assert!(matches!(early, Err(CallError::Contract(CoalitionError::DeadlineNotReached))), "{early:?}");
        // Dry runs see the best block's number; the draw needs one past the draw block.
        seal_blocks(c.client(), &self.alice, DRAW_DELAY + 1).await;
        let (phase, outcome) = c.advance(&self.alice).await.unwrap();
        assert_eq!(phase, Phase::Commit);
        let drawn: Vec<ValidatorsDrawn> = c.events(&outcome.included.contract_events, "ValidatorsDrawn").unwrap();
        let validators = drawn[0].validators.clone();
        assert_eq!(c.round_validators(&self.alice.account_id(), round).await.unwrap(), validators);
        assert!(!validators.contains(&self.alice.address()), "the proposer never validates");
        // Anyone recomputes the seed from the chain: the VRF randomness of the three blocks after
        // the proposal's, the round and the tip's hash.
        let mut outputs = Vec::new();
        for number in opened[0].draw_block + 1 - DRAW_DELAY..=opened[0].draw_block {
            outputs.push(c.client().block_randomness(number).await.unwrap().expect("a recorded VRF output"));
        }
        let tip = c.block(&self.alice.account_id(), parent).await.unwrap().expect("the tip").block_hash;
        let randomness = rules::window_randomness::<NativeKeccak>(&outputs);
        assert_eq!(drawn[0].seed.0, rules::round_seed::<NativeKeccak>(&randomness, round, &tip.0));
        (round, validators)
    }

    /// Every drawn validator commits, then reveals `verdict(i)`. Returns the reveals' events.
    async fn commit_and_reveal(
        &self,
        round: u64,
        candidate: H256,
        validators: &[H160],
        verdict: impl Fn(usize) -> Verdict,
    ) -> Vec<ContractEvent> {
        let c = &self.coalition;
        let salt = |i: usize| [i as u8 + 1; 32];
        let report = |i: usize| Report { round, candidate, verdict: verdict(i) };
        for (i, validator) in validators.iter().enumerate() {
            c.commit(self.key_of(*validator), round, c.commitment(validator, &report(i), &salt(i))).await.unwrap();
        }
        let mut events = Vec::new();
        for (i, validator) in validators.iter().enumerate() {
            let outcome = c.reveal(self.key_of(*validator), round, &report(i), &salt(i)).await.unwrap();
            events.extend(outcome.included.contract_events);
        }
        events
    }

    /// The general seals and the others attest until the block is appended; returns its events.
    async fn seal_and_attest(&self, round: u64, validators: &[H160]) -> Vec<BlockAppended> {
        let c = &self.coalition;
        let me = self.alice.account_id();
        let general = c.round(&me, round).await.unwrap().unwrap().general.expect("a general");
        let (block_hash, outcome) = c.seal(self.key_of(general), round, b"vault://block").await.unwrap();
        let sealed: Vec<Sealed> = c.events(&outcome.included.contract_events, "Sealed").unwrap();
        assert_eq!(sealed[0].block_hash, block_hash);
        for validator in validators.iter().filter(|v| **v != general) {
            if c.round(&me, round).await.unwrap().unwrap().phase == Phase::Appended {
                break;
            }
            let outcome = c.attest(self.key_of(*validator), round, block_hash).await.unwrap();
            let appended: Vec<BlockAppended> = c.events(&outcome.included.contract_events, "BlockAppended").unwrap();
            if !appended.is_empty() {
                assert_eq!(appended[0].block_hash, block_hash);
                return appended;
            }
        }
        panic!("round {round} was not appended")
    }
}

/// Seal blocks until proposal `id` may be enacted (in a dry run, which sees the best block).
async fn until_enactable(c: &Coalition, alice: &Keypair, id: u32) {
    let due = c.proposal(&alice.account_id(), id).await.unwrap().unwrap().enactable_from;
    let best = c.client().best_number().await.unwrap() as u32;
    if best < due {
        seal_blocks(c.client(), alice, due - best).await;
    }
}

fn scored(g_metric: i64, digest: u8, l_keeps: bool, l_size: u32) -> Verdict {
    Verdict::Scored(Scores { g_metric, g_digest: H256::repeat_byte(digest), l_keeps, l_size })
}

#[tokio::test]
async fn three_rounds_accepted_degraded_inconsistent() {
    let scene = Scene::new(&["Bob", "Charlie", "Dave"], 3, |_| {}).await;
    let c = &scene.coalition;
    let alice = &scene.alice;
    let me = alice.account_id();

    // The client's events and errors are the contract's: its metadata names exactly them.
    let metadata = artifact("coalition").metadata;
    for name in events::NAMES {
        assert!(metadata.event_topic(name).unwrap().is_some(), "{name} in the metadata");
    }

    // Round 1, at the most data IDs a proposal may carry: every validator finds 0.82, which
    // keeps 0.80 within 5%.
    let candidate = H256::repeat_byte(1);
    let (round, validators) = scene.propose_and_draw(candidate, 1, MAX_DATA_IDS).await;
    let events = scene.commit_and_reveal(round, candidate, &validators, |_| scored(820_000, 7, true, 0)).await;
    let tallied: Vec<RoundTallied> = c.events(&events, "RoundTallied").unwrap();
    assert_eq!(tallied.last().map(|t| (t.rejection, t.performance, t.counted)), Some((None, Some(820_000), 3)));
    assert_eq!(c.round(&me, round).await.unwrap().unwrap().phase, Phase::Sealing);
    let appended = scene.seal_and_attest(round, &validators).await;
    assert_eq!((appended[0].index, appended[0].contributor), (1, Some(alice.address())));
    let block = c.block(&me, 1).await.unwrap().unwrap();
    let genesis_block = c.block(&me, 0).await.unwrap().unwrap();
    assert_eq!(block.previous_hash, genesis_block.block_hash);
    assert_eq!((block.parameter_hash, block.samples, block.performance), (candidate, u64::from(MAX_DATA_IDS), 820_000));
    assert_eq!(
        block.block_hash,
        hashing::block_hash::<NativeKeccak>(&block.header::<NativeKeccak>()),
        "the client's hash"
    );
    let strengths = c.strengths(&me).await.unwrap();
    assert_eq!(appended[0].strengths, strengths);
    let alice_strength = strengths.iter().find(|(a, _)| *a == alice.address()).unwrap().1;
    assert_eq!(alice_strength, 1_000_000_000 / 4 + 1_000_000_000, "S = 1/N + D_i/D = 1/4 + 448/448");
    let mut last_id = [0u8; 32];
    last_id[..2].copy_from_slice(&1u16.to_be_bytes());
    last_id[2..6].copy_from_slice(&(MAX_DATA_IDS - 1).to_be_bytes());
    assert_eq!(c.data_id_block(&me, H256(last_id)).await.unwrap(), Some(1), "every data ID is used");

    // A stale parent, a reused data ID and the tip's own parameters are refused on chain.
    let stale = c.propose(alice, 0, H256::repeat_byte(9), b"v", 4, &[H256::repeat_byte(99); 4], None).await;
    assert!(matches!(stale, Err(CallError::Contract(CoalitionError::StaleParent))), "{stale:?}");
    let reused = [H256(last_id), H256::repeat_byte(50), H256::repeat_byte(51), H256::repeat_byte(52)];
    let reused = c.propose(alice, 1, H256::repeat_byte(9), b"v", 4, &reused, None).await;
    assert!(matches!(reused, Err(CallError::Contract(CoalitionError::DataIdUsed))), "{reused:?}");
    let tip = c.propose(alice, 1, candidate, b"v", 4, &[50, 51, 52, 53].map(H256::repeat_byte), None).await;
    assert!(matches!(tip, Err(CallError::Contract(CoalitionError::KnownParameters))), "{tip:?}");

    // Round 2: 0.70 loses more than 5% of 0.82.
    let candidate = H256::repeat_byte(2);
    let (round, validators) = scene.propose_and_draw(candidate, 2, 4).await;
    let events = scene.commit_and_reveal(round, candidate, &validators, |_| scored(700_000, 7, true, 0)).await;
    let tallied: Vec<RoundTallied> = c.events(&events, "RoundTallied").unwrap();
    assert_eq!(tallied.last().map(|t| (t.rejection, t.best_performance)), Some((Some(Rejection::Degrades), 820_000)));
    assert_eq!(c.round(&me, round).await.unwrap().unwrap().phase, Phase::Rejected(Rejection::Degrades));

    // Round 3: three different G digests.
    let candidate = H256::repeat_byte(3);
    let (round, validators) = scene.propose_and_draw(candidate, 3, 4).await;
    let events = scene.commit_and_reveal(round, candidate, &validators, |i| scored(830_000, i as u8, true, 0)).await;
    let tallied: Vec<RoundTallied> = c.events(&events, "RoundTallied").unwrap();
    assert_eq!(tallied.last().map(|t| t.rejection), Some(Some(Rejection::InconsistentPredictions)));
    assert_eq!(c.height(&me).await.unwrap(), 1, "only round 1 appended");
    assert_eq!(c.open_round(&me).await.unwrap(), None);
    scene.node.stop().await;
}

#[tokio::test]
async fn one_lying_validator_of_four_decides_nothing() {
    let scene = Scene::new(&["Bob", "Charlie", "Dave", "Eve"], 4, |_| {}).await;
    let c = &scene.coalition;
    let me = scene.alice.account_id();
    for (i, validator) in scene.validators.iter().enumerate() {
        let set = LocalTestSet { hash: H256::repeat_byte(0x10 + i as u8), size: 50 };
        c.register_local_test_set(validator, &set).await.unwrap();
        assert_eq!(c.local_test_set(&me, validator.address()).await.unwrap(), Some(set));
    }
    let again =
        c.register_local_test_set(&scene.validators[0], &LocalTestSet { hash: H256::zero(), size: 5_000 }).await;
    assert!(matches!(again, Err(CallError::Contract(CoalitionError::LocalTestSetRegistered))), "{again:?}");

    // Three honest validators see 0.85 on G and vote for it from their local sets of 50; the
    // fourth lies.
    let honest = scored(850_000, 7, true, 50);
    let lies = [
        ("a huge local set", scored(850_000, 7, false, u32::MAX), Deviation::LocalSetMismatch),
        ("an out-of-range metric", scored(1_000_000_000_000_000, 7, true, 50), Deviation::OutOfRange),
        ("a forged G metric with the right digest", scored(100_000, 7, true, 50), Deviation::GMetric),
    ];
    for (n, (what, lie, deviation)) in lies.into_iter().enumerate() {
        let candidate = H256::repeat_byte(0x20 + n as u8);
        let (round, validators) = scene.propose_and_draw(candidate, 10 + n as u16, 4).await;
        let liar = validators[n];
        let events =
            scene.commit_and_reveal(round, candidate, &validators, |i| if i == n { lie } else { honest }).await;
        let tallied: Vec<RoundTallied> = c.events(&events, "RoundTallied").unwrap();
        assert_eq!(
            tallied.last().map(|t| (t.rejection, t.performance, t.accepts, t.counted)),
            Some((None, Some(850_000), 3, 3)),
            "{what}: the honest outcome"
        );
        let deviated: Vec<ValidatorDeviated> = c.events(&events, "ValidatorDeviated").unwrap();
        assert_eq!(
            deviated.iter().map(|d| (d.validator, d.deviation)).collect::<Vec<_>>(),
            vec![(liar, deviation)],
            "{what}"
        );
        assert_eq!(c.ballot(&me, round, liar).await.unwrap().unwrap().deviation, Some(deviation));
        let honest_validators: Vec<H160> = validators.iter().copied().filter(|v| *v != liar).collect();
        scene.seal_and_attest(round, &honest_validators).await;
        assert_eq!(c.block(&me, c.height(&me).await.unwrap()).await.unwrap().unwrap().performance, 850_000, "{what}");
    }
    assert_eq!(c.height(&me).await.unwrap(), 3);
    scene.node.stop().await;
}

#[tokio::test]
async fn governance_enacts_removes_and_reverts() {
    let scene = Scene::new(&["Bob", "Charlie", "Dave", "Eve"], 3, |g| {
        g.governance.voting_period = 10;
        g.governance.enactment_delay = 0;
    })
    .await;
    let c = &scene.coalition;
    let alice = &scene.alice;
    let me = alice.account_id();
    let members = |n: usize| std::iter::once(alice).chain(&scene.validators).take(n).collect::<Vec<_>>();
    // Propose, three ayes of five, wait out the vote, enact.
    let decide = |proposer: &'static str, action: Action| async move {
        let proposer = Keypair::dev(proposer).unwrap();
        let (id, _) = c.propose_action(&proposer, &action).await.unwrap();
        for member in members(3) {
            c.vote(member, id, true).await.unwrap();
        }
        until_enactable(c, alice, id).await;
        let (status, outcome) = c.enact(alice, id).await.unwrap();
        (id, status, outcome.included.contract_events)
    };

    let (id, status, events) = decide("Bob", Action::SetHyperparameter(Hyperparameter::Lambda(900_000))).await;
    assert_eq!(status, ProposalStatus::Enacted);
    assert_eq!(c.hyperparameters(&me).await.unwrap().lambda_ppm, 900_000);
    let enacted: Vec<ProposalEnacted> = c.events(&events, "ProposalEnacted").unwrap();
    assert_eq!(
        (enacted[0].proposal, enacted[0].action),
        (id, Action::SetHyperparameter(Hyperparameter::Lambda(900_000)))
    );
    assert_eq!(c.proposal(&me, id).await.unwrap().unwrap().status, ProposalStatus::Enacted);

    // Two proposals to remove Eve pass; the first removes her, the second closes as failed.
    let eve = scene.validators[3].address();
    let first = c.propose_action(alice, &Action::RemoveMember(eve)).await.unwrap().0;
    let second = c.propose_action(&scene.validators[0], &Action::RemoveMember(eve)).await.unwrap().0;
    for id in [first, second] {
        for member in members(3) {
            c.vote(member, id, true).await.unwrap();
        }
    }
    until_enactable(c, alice, second).await;
    let (status, outcome) = c.enact(alice, first).await.unwrap();
    assert_eq!(status, ProposalStatus::Enacted);
    let removed: Vec<MemberRemoved> = c.events(&outcome.included.contract_events, "MemberRemoved").unwrap();
    assert_eq!(removed[0].member, eve);
    let strengths: Vec<StrengthsUpdated> = c.events(&outcome.included.contract_events, "StrengthsUpdated").unwrap();
    assert_eq!(strengths[0].members, 4);
    assert!(c.members(&me).await.unwrap().iter().all(|m| m.account != eve));
    assert_eq!(c.strengths(&me).await.unwrap().len(), 4);
    let (status, outcome) = c.enact(alice, second).await.unwrap();
    assert_eq!(status, ProposalStatus::Failed(CoalitionError::NotMember));
    let failed: Vec<ProposalFailed> = c.events(&outcome.included.contract_events, "ProposalFailed").unwrap();
    assert_eq!((failed[0].proposal, failed[0].reason), (second, CoalitionError::NotMember));
    assert!(c.open_proposals(&me).await.unwrap().is_empty(), "nothing is left open");

    // A block, then a revert to genesis: a new block with genesis's parameters.
    let candidate = H256::repeat_byte(1);
    let (round, validators) = scene.propose_and_draw(candidate, 1, 4).await;
    scene.commit_and_reveal(round, candidate, &validators, |_| scored(820_000, 7, true, 0)).await;
    scene.seal_and_attest(round, &validators).await;
    assert_eq!(c.height(&me).await.unwrap(), 1);
    let (_, status, events) = decide("Charlie", Action::Revert(0)).await;
    assert_eq!(status, ProposalStatus::Enacted);
    let appended: Vec<BlockAppended> = c.events(&events, "BlockAppended").unwrap();
    assert_eq!((appended[0].index, appended[0].round, appended[0].contributor), (2, None, None));
    let reverted = c.block(&me, 2).await.unwrap().unwrap();
    let genesis_block = c.block(&me, 0).await.unwrap().unwrap();
    assert_eq!(
        (reverted.parameter_hash, reverted.performance),
        (genesis_block.parameter_hash, genesis_block.performance)
    );
    assert_eq!(reverted.previous_hash, c.block(&me, 1).await.unwrap().unwrap().block_hash);
    assert_eq!(c.height(&me).await.unwrap(), 2);
    scene.node.stop().await;
}

#[tokio::test]
async fn a_proposal_past_the_privacy_budget_is_refused_on_chain() {
    // Declarations of `nats` of Rényi DP at every order; the budget is what two such nats spend.
    let declaration = |nats: u64| DpDeclaration {
        noise_multiplier: 1.0f32.to_bits(),
        clip_norm: 1.0f32.to_bits(),
        rdp: [nats * rdp::RDP_ONE; rdp::RDP_ORDERS],
    };
    let delta = PrivacySpend::DELTA_ONE / 100_000;
    let spend = |nats: u64| PrivacySpend { epsilon: rdp::epsilon(&declaration(nats).rdp, delta).unwrap(), delta };
    let budget = spend(2);
    let scene =
        Scene::new(&["Bob", "Charlie"], 2, |genesis| genesis.hyperparameters.privacy_budget = Some(budget)).await;
    let (c, alice) = (&scene.coalition, &scene.alice);
    let me = alice.account_id();
    assert_eq!(c.hyperparameters(&me).await.unwrap().privacy_budget, Some(budget));
    let ids: Vec<H256> = (1..=4u8).map(H256::repeat_byte).collect();
    let candidate = H256::repeat_byte(0xD1);
    let propose = |privacy| c.propose(alice, 0, candidate, b"vault://candidate", 4, &ids, privacy);
    let over = propose(Some(declaration(3))).await;
    assert!(matches!(over, Err(CallError::Contract(CoalitionError::PrivacyBudgetExceeded))), "{over:?}");
    let undeclared = propose(None).await;
    assert!(matches!(undeclared, Err(CallError::Contract(CoalitionError::PrivacyBudgetExceeded))), "{undeclared:?}");
    let (round, outcome) = propose(Some(declaration(1))).await.unwrap();
    let opened: Vec<RoundOpened> = c.events(&outcome.included.contract_events, "RoundOpened").unwrap();
    assert_eq!((opened[0].round, opened[0].privacy), (round, Some(spend(1))));
    assert_eq!(c.round_privacy(&me, round).await.unwrap(), Some(declaration(1)), "what the validators check");
    assert_eq!(c.privacy_totals(&me, alice.address()).await.unwrap(), declaration(1).rdp);
    let members = c.members(&me).await.unwrap();
    let spent = |who: H160| members.iter().find(|m| m.account == who).unwrap().privacy_spent;
    assert_eq!(spent(alice.address()), spend(1));
    assert_eq!(spent(scene.validators[0].address()), PrivacySpend::default());
    scene.node.stop().await;
}
