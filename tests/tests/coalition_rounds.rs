//! The coalition protocol on the dev node: three rounds through the Rust client, with validators
//! played by dev accounts. Round 1 is accepted, sealed, attested and appended; round 2 is
//! rejected by the lambda rule; round 3 is rejected because the validators' G digests disagree.

use tclearn_client::{
    account_to_address,
    coalition::{
        BlockAppended, CallError, Coalition, CoalitionError, Phase, Rejection, Report, RoundOpened,
        RoundTallied, Sealed,
    },
    Keypair, H160, H256,
};
use tclearn_e2e::{artifact, test_genesis, Node, NodeConfig};

struct Scene {
    coalition: Coalition,
    alice: Keypair,
    validators: Vec<Keypair>,
}

impl Scene {
    fn key_of(&self, address: H160) -> &Keypair {
        self.validators.iter().find(|k| k.address() == address).expect("a validator's key")
    }

    /// Alice proposes `candidate`; every drawn validator commits then reveals `report(i)`.
    async fn round(
        &self,
        candidate: H256,
        data_seed: u8,
        report: impl Fn(usize, u64) -> Report,
    ) -> (u64, Vec<H160>, Vec<tclearn_client::ContractEvent>) {
        let c = &self.coalition;
        let parent = c.height(&self.alice.account_id()).await.unwrap();
        let data_ids: Vec<H256> = (0..4).map(|i| H256::repeat_byte(data_seed + i)).collect();
        let (round, outcome) =
            c.propose(&self.alice, parent, candidate, b"vault://candidate", 4, &data_ids).await.unwrap();
        let opened: Vec<RoundOpened> = c.events(&outcome.included.contract_events, "RoundOpened").unwrap();
        assert_eq!(opened.len(), 1);
        let validators = opened[0].validators.clone();
        assert_eq!(validators.len(), 3);
        assert!(!validators.contains(&self.alice.address()), "the proposer never validates");

        let salt = |i: usize| [i as u8 + 1; 32];
        for (i, validator) in validators.iter().enumerate() {
            let commitment = report(i, round).commitment(validator, &salt(i));
            c.commit(self.key_of(*validator), round, commitment).await.unwrap();
        }
        let mut events = Vec::new();
        for (i, validator) in validators.iter().enumerate() {
            let outcome = c.reveal(self.key_of(*validator), round, &report(i, round), &salt(i)).await.unwrap();
            events.extend(outcome.included.contract_events);
        }
        (round, validators, events)
    }
}

fn report(round: u64, candidate: H256, g_metric: i64, digest: u8, accept: bool) -> Report {
    Report {
        round,
        candidate,
        g_metric,
        g_digest: H256::repeat_byte(digest),
        l_metric: g_metric,
        l_size: 50,
        accept,
    }
}

#[tokio::test]
async fn three_rounds_accepted_degraded_inconsistent() {
    let node = Node::start(NodeConfig::dev_instant()).await;
    let client = node.client().await;
    let alice = Keypair::dev("Alice").unwrap();
    let validators: Vec<Keypair> =
        ["Bob", "Charlie", "Dave"].into_iter().map(|n| Keypair::dev(n).unwrap()).collect();
    let founders: Vec<H160> =
        std::iter::once(&alice).chain(&validators).map(|k| account_to_address(&k.account_id())).collect();
    let coalition = Coalition::deploy(&client, &alice, &artifact("coalition"), &test_genesis(3, founders))
        .await
        .unwrap_or_else(|e| panic!("deploy: {e}\n{}", node.log_tail()));
    let scene = Scene { coalition, alice: alice.clone(), validators };
    let c = &scene.coalition;
    let me = alice.account_id();

    // Round 1: every validator finds 0.82 >= 0.95 * 0.80 and accepts.
    let candidate = H256::repeat_byte(1);
    let (round, validators, events) =
        scene.round(candidate, 10, |_, r| report(r, candidate, 820_000, 7, true)).await;
    let tallied: Vec<RoundTallied> = c.events(&events, "RoundTallied").unwrap();
    assert_eq!(tallied.last().map(|t| (t.rejection, t.performance)), Some((None, Some(820_000))));
    let state = c.round(&me, round).await.unwrap().unwrap();
    assert_eq!(state.phase, Phase::Sealing);
    let general = state.general.expect("a general");
    assert!(validators.contains(&general));

    let (block_hash, outcome) = c.seal(scene.key_of(general), round, b"vault://block-1").await.unwrap();
    let sealed: Vec<Sealed> = c.events(&outcome.included.contract_events, "Sealed").unwrap();
    assert_eq!(sealed[0].block_hash, block_hash);
    let attester = *validators.iter().find(|v| **v != general).unwrap();
    let outcome = c.attest(scene.key_of(attester), round, block_hash).await.unwrap();
    let appended: Vec<BlockAppended> = c.events(&outcome.included.contract_events, "BlockAppended").unwrap();
    assert_eq!(appended.len(), 1);
    assert_eq!((appended[0].index, appended[0].block_hash), (1, block_hash));
    assert_eq!(appended[0].contributor, Some(alice.address()));

    assert_eq!(c.height(&me).await.unwrap(), 1);
    let block = c.block(&me, 1).await.unwrap().unwrap();
    let genesis_block = c.block(&me, 0).await.unwrap().unwrap();
    assert_eq!(block.previous_hash, genesis_block.block_hash);
    assert_eq!((block.parameter_hash, block.samples, block.performance), (candidate, 4, 820_000));
    assert_eq!(block.vault_ref, b"vault://block-1".to_vec());
    let strengths = c.strengths(&me).await.unwrap();
    assert_eq!(appended[0].strengths, strengths);
    let alice_strength = strengths.iter().find(|(a, _)| *a == alice.address()).unwrap().1;
    assert_eq!(alice_strength, 1_000_000_000 / 4 + 1_000_000_000, "S = 1/N + D_i/D = 1/4 + 4/4");
    assert_eq!(c.data_id_block(&me, H256::repeat_byte(10)).await.unwrap(), Some(1));

    // A stale parent and a reused data ID are refused on chain, with the contract's error.
    let stale = c.propose(&alice, 0, H256::repeat_byte(9), b"v", 4, &[H256::repeat_byte(99); 4]).await;
    assert!(matches!(stale, Err(CallError::Contract(CoalitionError::StaleParent))), "{stale:?}");
    let reused = [10, 50, 51, 52].map(H256::repeat_byte);
    let reused = c.propose(&alice, 1, H256::repeat_byte(9), b"v", 4, &reused).await;
    assert!(matches!(reused, Err(CallError::Contract(CoalitionError::DataIdUsed))), "{reused:?}");

    // Round 2: 0.70 < 0.95 * 0.82: rejected by the lambda rule.
    let candidate = H256::repeat_byte(2);
    let (round, _, events) = scene.round(candidate, 20, |_, r| report(r, candidate, 700_000, 7, false)).await;
    let tallied: Vec<RoundTallied> = c.events(&events, "RoundTallied").unwrap();
    assert_eq!(tallied.last().map(|t| t.rejection), Some(Some(Rejection::Degrades)));
    assert_eq!(tallied.last().map(|t| t.previous_performance), Some(820_000));
    assert_eq!(c.round(&me, round).await.unwrap().unwrap().phase, Phase::Rejected(Rejection::Degrades));

    // Round 3: three different G digests: inconsistent.
    let candidate = H256::repeat_byte(3);
    let (round, _, events) =
        scene.round(candidate, 30, |i, r| report(r, candidate, 830_000, i as u8, true)).await;
    let tallied: Vec<RoundTallied> = c.events(&events, "RoundTallied").unwrap();
    assert_eq!(tallied.last().map(|t| t.rejection), Some(Some(Rejection::InconsistentPredictions)));
    assert_eq!(
        c.round(&me, round).await.unwrap().unwrap().phase,
        Phase::Rejected(Rejection::InconsistentPredictions)
    );

    assert_eq!(c.height(&me).await.unwrap(), 1, "only round 1 appended");
    assert_eq!(c.open_round(&me).await.unwrap(), None);
    node.stop().await;
}
