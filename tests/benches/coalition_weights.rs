//! Weight and storage deposit of the coalition's messages for k = 4 and k = 16 validators, on the
//! real dev node: `cargo bench -p tclearn-e2e --bench coalition_weights` (after
//! `scripts/build-node.sh` and `scripts/build-contracts.sh`; `scripts/bench.sh` does all three).
//!
//! Each number is what the message's dry run reported right before it was submitted: the weight
//! a transaction needs as its limit (`weight_required`) and the most storage deposit it reaches.
//! Commit, reveal and attest are reported twice: an ordinary call, and the last one, which also
//! ends the phase (the last reveal tallies every report; the last attestation appends the block).

use tclearn_client::{
    account_to_address,
    coalition::{Action, Coalition, Hyperparameter, Report},
    CallOutcome, Keypair, H160, H256,
};
use tclearn_e2e::{artifact, test_genesis, Node, NodeConfig};

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


async fn measure(node: &Node, k: u32) -> Vec<Row> {
    let client = node.client().await;
    let alice = Keypair::dev("Alice").unwrap();
    let members: Vec<Keypair> =
        (0..k).map(|i| Keypair::from_uri(&format!("//Member{k}-{i}")).unwrap()).collect();
    for member in &members {
        client.transfer(&alice, &member.account_id(), 1_000 * UNIT).await.unwrap();
    }
    let founders: Vec<H160> =
        std::iter::once(&alice).chain(&members).map(|m| account_to_address(&m.account_id())).collect();
    let coalition = Coalition::deploy(&client, &alice, &artifact("coalition"), &test_genesis(k, founders))
        .await
        .unwrap();
    let key_of = |address: H160| members.iter().find(|m| m.address() == address).unwrap();
    let mut rows = Vec::new();

    let data_ids: Vec<H256> = (0..4u8).map(H256::repeat_byte).collect();
    let (round, outcome) =
        coalition.propose(&alice, 0, H256::repeat_byte(1), b"vault://candidate", 4, &data_ids).await.unwrap();
    rows.push(row("propose (4 data IDs)", &outcome));
    let validators = coalition.round_validators(&alice.account_id(), round).await.unwrap();
    assert_eq!(validators.len(), k as usize);

    let report = Report {
        round,
        candidate: H256::repeat_byte(1),
        g_metric: 820_000,
        g_digest: H256::repeat_byte(7),
        l_metric: 820_000,
        l_size: 50,
        accept: true,
    };
    let salt = [9u8; 32];
    let last = validators.len() - 1;
    for (i, validator) in validators.iter().enumerate() {
        let outcome = coalition.commit(key_of(*validator), round, report.commitment(validator, &salt)).await.unwrap();
        match i {
            0 => rows.push(row("commit", &outcome)),
            i if i == last => rows.push(row("commit (last: starts reveal)", &outcome)),
            _ => {},
        }
    }
    for (i, validator) in validators.iter().enumerate() {
        let outcome = coalition.reveal(key_of(*validator), round, &report, &salt).await.unwrap();
        match i {
            0 => rows.push(row("reveal", &outcome)),
            i if i == last => rows.push(row(format!("reveal (last: tallies {k} reports)"), &outcome)),
            _ => {},
        }
    }
    let general = coalition.round(&alice.account_id(), round).await.unwrap().unwrap().general.unwrap();
    let (block_hash, outcome) = coalition.seal(key_of(general), round, b"vault://block-1").await.unwrap();
    rows.push(row("seal", &outcome));
    let attesters: Vec<H160> = validators.iter().copied().filter(|v| *v != general).collect();
    // Quorum 2/3 of k, the general's seal counting as one.
    let needed = (2 * k as usize).div_ceil(3) - 1;
    for (i, attester) in attesters.iter().take(needed).enumerate() {
        let outcome = coalition.attest(key_of(*attester), round, block_hash).await.unwrap();
        if i == 0 && needed > 1 {
            rows.push(row("attest", &outcome));
        }
        if i + 1 == needed {
            rows.push(row("attest (last: appends the block)", &outcome));
        }
    }
    assert_eq!(coalition.height(&alice.account_id()).await.unwrap(), 1);

    let action = Action::SetHyperparameter(Hyperparameter::Lambda(900_000));
    let (proposal, outcome) = coalition.propose_action(&alice, &action).await.unwrap();
    rows.push(row("propose_action", &outcome));
    let outcome = coalition.vote(key_of(validators[0]), proposal, true).await.unwrap();
    rows.push(row("vote", &outcome));
    rows
}

#[tokio::main]
async fn main() {
    let node = Node::start(NodeConfig::dev_instant()).await;
    println!("coalition contract: {} bytes of PolkaVM code", artifact("coalition").code.len());
    for k in [4, 16] {
        let rows = measure(&node, k).await;
        println!("\nk = {k} validators ({} members)\n", k + 1);
        println!("| message | ref_time (ps) | proof_size (bytes) | storage deposit (planck) |");
        println!("|---|---:|---:|---:|");
        for r in rows {
            println!("| {} | {} | {} | {} |", r.message, r.ref_time, r.proof_size, r.deposit);
        }
    }
    node.stop().await;
}
