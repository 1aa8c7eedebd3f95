//! Weight and storage deposit of the coalition's messages on the real dev node, for 5 members and
//! k = 4, 17 members and k = 16, and the worst case: 64 members, k = 16, a proposal of the most
//! data IDs (`MAX_DATA_IDS`). Each weight is also given as a share of what normal transactions
//! may use of a block: `cargo bench -p tclearn-e2e --bench coalition_weights` (after
//! `scripts/build-node.sh` and `scripts/build-contracts.sh`; `scripts/bench.sh` does all three).
//!
//! Each number is what the message's dry run reported right before it was submitted: the weight
//! a transaction needs as its limit (`weight_required`) and the most storage deposit it reaches.
//! Commit, reveal and attest are reported twice: an ordinary call, and the last one, which also
//! ends the phase (the last reveal tallies every report; the last attestation appends the block).

use tclearn_client::{
    account_to_address,
    coalition::{
        Action, Coalition, Hyperparameter, LocalTestSet, ProposalStatus, Report, Scores, Verdict, DRAW_DELAY,
        MAX_DATA_IDS,
    },
    CallOutcome, Keypair, H160, H256,
};
use tclearn_e2e::{artifact, seal_blocks, test_genesis, Node, NodeConfig};

/// One token (12 decimals).
const UNIT: u128 = 1_000_000_000_000;

struct Row {
    message: String,
    ref_time: u64,
    proof_size: u64,
    deposit: u128,
}

fn row(message: impl Into<String>, outcome: &CallOutcome) -> Row {
    Row {
        message: message.into(),
        ref_time: outcome.dry_run.weight_required.ref_time,
        proof_size: outcome.dry_run.weight_required.proof_size,
        deposit: outcome.dry_run.max_storage_deposit.charge(),
    }
}

/// Normal transactions may use 75% of a block's two seconds of compute (`runtime/runtime`,
/// `NORMAL_DISPATCH_RATIO` of `MAXIMUM_BLOCK_WEIGHT`); proof size is not limited on this
/// solochain.
const NORMAL_BLOCK_REF_TIME: u64 = 1_500_000_000_000;

/// One round and one governance decision in a coalition of `n` members (Alice and `n - 1`
/// others), `k` validators per round, a proposal of `ids` data IDs.
async fn measure(node: &Node, n: u32, k: u32, ids: u32) -> Vec<Row> {
    let client = node.client().await;
    let alice = Keypair::dev("Alice").unwrap();
    let members: Vec<Keypair> = (1..n).map(|i| Keypair::from_uri(&format!("//Member{n}-{k}-{i}")).unwrap()).collect();
    for member in &members {
        client.transfer(&alice, &member.account_id(), 1_000 * UNIT).await.unwrap();
    }
    let founders: Vec<H160> =
        std::iter::once(&alice).chain(&members).map(|m| account_to_address(&m.account_id())).collect();
    let mut genesis = test_genesis(k, founders);
    genesis.hyperparameters.min_batch_size = 1;
    // Long enough for half of the members to vote, one block per vote.
    (genesis.governance.voting_period, genesis.governance.enactment_delay) = (n + 5, 0);
    let coalition = Coalition::deploy(&client, &alice, &artifact("coalition"), &genesis).await.unwrap();
    let me = alice.account_id();
    let key_of = |address: H160| members.iter().find(|m| m.address() == address).unwrap();
    let mut rows = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let set = LocalTestSet { hash: H256::repeat_byte(1), size: 50 };
        let outcome = coalition.register_local_test_set(member, &set).await.unwrap();
        if i == 0 {
            rows.push(row("register_local_test_set", &outcome));
        }
    }

    let data_ids: Vec<H256> = (0..ids).map(|i| H256::from_low_u64_be(u64::from(i) + 1)).collect();
    let candidate = H256::repeat_byte(1);
    let (round, outcome) =
        coalition.propose(&alice, 0, candidate, b"vault://candidate", u64::from(ids), &data_ids, None).await.unwrap();
    rows.push(row(format!("propose ({ids} data IDs)"), &outcome));
    // Dry runs see the best block's number; the draw needs one past the draw block.
    seal_blocks(&client, &alice, DRAW_DELAY + 1).await;
    let (_, outcome) = coalition.advance(&alice).await.unwrap();
    rows.push(row(format!("advance (draws {k} of {} members)", n - 1), &outcome));
    let validators = coalition.round_validators(&me, round).await.unwrap();
    assert_eq!(validators.len(), k as usize);

    let verdict =
        Verdict::Scored(Scores { g_metric: 820_000, g_digest: H256::repeat_byte(7), l_keeps: true, l_size: 50 });
    let report = Report { round, candidate, verdict };
    let salt = [9u8; 32];
    let last = validators.len() - 1;
    for (i, validator) in validators.iter().enumerate() {
        let commitment = coalition.commitment(validator, &report, &salt);
        let outcome = coalition.commit(key_of(*validator), round, commitment).await.unwrap();
        match i {
            0 => rows.push(row("commit", &outcome)),
            i if i == last => rows.push(row("commit (last: starts reveal)", &outcome)),
            _ => {}
        }
    }
    for (i, validator) in validators.iter().enumerate() {
        let outcome = coalition.reveal(key_of(*validator), round, &report, &salt).await.unwrap();
        match i {
            0 => rows.push(row("reveal", &outcome)),
            i if i == last => rows.push(row(format!("reveal (last: tallies {k} reports)"), &outcome)),
            _ => {}
        }
    }
    let general = coalition.round(&me, round).await.unwrap().unwrap().general.unwrap();
    let (block_hash, outcome) = coalition.seal(key_of(general), round, b"vault://block-1").await.unwrap();
    rows.push(row(format!("seal ({n} strengths hashed)"), &outcome));
    let attesters: Vec<H160> = validators.iter().copied().filter(|v| *v != general).collect();
    // Quorum 2/3 of k, the general's seal counting as one.
    let needed = (2 * k as usize).div_ceil(3) - 1;
    for (i, attester) in attesters.iter().take(needed).enumerate() {
        let outcome = coalition.attest(key_of(*attester), round, block_hash).await.unwrap();
        if i == 0 && needed > 1 {
            rows.push(row("attest", &outcome));
        }
        if i + 1 == needed {
            rows.push(row(format!("attest (last: appends the block, {ids} data IDs)"), &outcome));
        }
    }
    assert_eq!(coalition.height(&me).await.unwrap(), 1);

    let action = Action::SetHyperparameter(Hyperparameter::Lambda(900_000));
    let (proposal, outcome) = coalition.propose_action(&alice, &action).await.unwrap();
    rows.push(row("propose_action", &outcome));
    for (i, voter) in std::iter::once(&alice).chain(&members).take((n as usize).div_ceil(2)).enumerate() {
        let outcome = coalition.vote(voter, proposal, true).await.unwrap();
        if i == 0 {
            rows.push(row("vote", &outcome));
        }
    }
    let due = coalition.proposal(&me, proposal).await.unwrap().unwrap().enactable_from;
    let best = client.best_number().await.unwrap() as u32;
    if best < due {
        seal_blocks(&client, &alice, due - best).await;
    }
    let (status, outcome) = coalition.enact(&alice, proposal).await.unwrap();
    assert_eq!(status, ProposalStatus::Enacted);
    rows.push(row("enact", &outcome));

    // A second proposal that every validator finds degrading: the last reveal rejects it, and
    // its proposer releases its data IDs' claims (the deposit comes back to it).
    let data_ids: Vec<H256> = (0..ids).map(|i| H256::from_low_u64_be(u64::from(i) + 1_000_000)).collect();
    let candidate = H256::repeat_byte(2);
    let (round, _) =
        coalition.propose(&alice, 1, candidate, b"vault://bad", u64::from(ids), &data_ids, None).await.unwrap();
    seal_blocks(&client, &alice, DRAW_DELAY + 1).await;
    coalition.advance(&alice).await.unwrap();
    let validators = coalition.round_validators(&me, round).await.unwrap();
    let verdict =
        Verdict::Scored(Scores { g_metric: 100_000, g_digest: H256::repeat_byte(7), l_keeps: true, l_size: 50 });
    let report = Report { round, candidate, verdict };
    for validator in &validators {
        coalition.commit(key_of(*validator), round, coalition.commitment(validator, &report, &salt)).await.unwrap();
    }
    for (i, validator) in validators.iter().enumerate() {
        let outcome = coalition.reveal(key_of(*validator), round, &report, &salt).await.unwrap();
        if i == last {
            rows.push(row("reveal (last: rejects)", &outcome));
        }
    }
    let (released, outcome) = coalition.release_claims(&alice, round).await.unwrap();
    assert_eq!(released, ids);
    rows.push(row(format!("release_claims ({ids} data IDs)"), &outcome));
    let refund = match outcome.dry_run.storage_deposit {
        tclearn_client::StorageDeposit::Refund(amount) => amount,
        tclearn_client::StorageDeposit::Charge(_) => 0,
    };
    println!("releasing {ids} data IDs refunds {refund} planck to the proposer (k = {k})");
    rows
}

#[tokio::main]
async fn main() {
    let node = Node::start(NodeConfig::dev_instant()).await;
    println!("coalition contract: {} bytes of PolkaVM code", artifact("coalition").code.len());
    for (n, k, ids) in [(5, 4, 4), (17, 16, 4), (64, 16, MAX_DATA_IDS)] {
        let rows = measure(&node, n, k, ids).await;
        println!("\n{n} members, k = {k} validators, {ids} data IDs\n");
        println!("| message | ref_time (ps) | share of a block | proof_size (bytes) | storage deposit (planck) |");
        println!("|---|---:|---:|---:|---:|");
        for r in rows {
            let share = r.ref_time as f64 / NORMAL_BLOCK_REF_TIME as f64 * 100.0;
            println!("| {} | {} | {share:.2}% | {} | {} |", r.message, r.ref_time, r.proof_size, r.deposit);
        }
    }
    node.stop().await;
}
