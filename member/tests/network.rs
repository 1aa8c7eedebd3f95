//! The coalition on a real network (`support/network.rs`: four validators of tclearn-node
//! spawned by zombienet, each with its own oracle on its own node, the members' API and vault),
//! under the faults it must survive, one after the other on the same network:
//!
//! 1. a round completes and its block is finalized on every node;
//! 2. one validator's node is killed mid-round: the round still completes;
//! 3. oracles are killed (SIGKILL) mid-round, one after its commitment is in a block and one
//!    after its reveal is, and restarted: no double commit, no lost reveal;
//! 4. one drawn validator lies, played through the Rust client (a forged G metric, a forged G
//!    digest, a huge local-set size, an out-of-range metric): each round ends as the honest
//!    validators' reports alone decide, and the liar is recorded; then two liars that disagree
//!    make the round fail safe, with no block;
//!    then two liars colluding beyond the bound get a block appended with the performance they
//!    chose, and `tclearn audit blocks` proves their reports forged afterwards;
//! 5. a validator's node is cut off from its peers mid-round (an nftables rule on loopback that
//!    the test makes and removes) and healed: the node catches up and its oracle takes part in
//!    the round;
//! 6. finality stalls with two of four nodes stopped: the oracles keep acting on best blocks,
//!    nothing hangs, and the round completes once the nodes and finality return.
//!
//! It prints each scenario's wall time and blocks from proposal to outcome.

mod common;
#[path = "support/network.rs"]
mod network;

use network::{finalized_everywhere, proposed, CoalitionNetwork, Partition, NAMES};
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};
use tclearn_client::{
    coalition::{
        rules::{self, Reveal, TallyRules},
        Coalition, Committed, Deviation, Phase, Rejection, Report, Revealed, Round, Scores, Verdict, METRIC_ONE,
    },
    AccountId32, Client, Keypair, H160, H256,
};
use tclearn_e2e::{artifact, oracle_binary};

/// The OS group a node is restarted in, so that a partition can tell its packets apart.
const PARTITION_GROUP: u32 = 47_474;
const ROUND: Duration = Duration::from_secs(300);
const ALICE: usize = 0;
const BOB: usize = 1;
const CHARLIE: usize = 2;
const DAVE: usize = 3;

fn address(i: usize) -> H160 {
    Keypair::dev(&network::capitalised(NAMES[i])).unwrap().address()
}

fn me() -> AccountId32 {
    Keypair::dev("Alice").unwrap().account_id()
}

/// Wall time and blocks (on Alice's node) from a start to an outcome.
struct Clock {
    started: Instant,
    block: u64,
}

impl Clock {
    async fn start(c: &Coalition) -> Self {
        Self { started: Instant::now(), block: c.client().best_number().await.unwrap() }
    }

    async fn stop(&self, c: &Coalition) -> (Duration, u64) {
        (self.started.elapsed(), c.client().best_number().await.unwrap() - self.block)
    }
}

/// Commitments and reveals of `validator` in round `round` in Alice's blocks `from..=to`.
async fn acts(c: &Coalition, from: u64, to: u64, round: u64, validator: H160) -> (usize, usize) {
    let (mut commits, mut reveals) = (0, 0);
    for number in from..=to {
        let (_, events) = c.client().block_contract_events(number).await.unwrap();
        commits += c
            .events::<Committed>(&events, "Committed")
            .unwrap()
            .iter()
            .filter(|e| e.round == round && e.validator == validator)
            .count();
        reveals += c
            .events::<Revealed>(&events, "Revealed")
            .unwrap()
            .iter()
            .filter(|e| e.round == round && e.validator == validator)
            .count();
    }
    (commits, reveals)
}

/// The scores an honest validator reports for `candidate` on G: `oracle evaluate`.
fn honest_g_scores(net: &CoalitionNetwork, candidate: &Path) -> (i64, H256) {
    let out = Command::new(oracle_binary())
        .args(["evaluate", "--model"])
        .arg(candidate.join("candidate.onnx"))
        .args(["--test-set", &net.path("g.csv"), "--genesis", &net.path("genesis.json")])
        .output()
        .unwrap();
    assert!(out.status.success(), "oracle evaluate: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (report["fixed"].as_i64().unwrap(), report["digest"].as_str().unwrap().parse().unwrap())
}

/// Wait until round `id` is open (its proposal is in a block of Alice's node). A `tclearn
/// propose` that gave up, or a round that never opens, fails the test with the proposal's
/// output and every node's log.
async fn opened(net: &CoalitionNetwork, propose: &mut tokio::process::Child, id: u64) -> u64 {
    let deadline = Instant::now() + ROUND;
    while net.coalition.open_round(&me()).await.ok().flatten() != Some(id) {
        if Instant::now() > deadline || propose.try_wait().ok().flatten().is_some() {
            let _ = propose.start_kill();
            let (status, outcome, err) = network::output(propose, Duration::from_secs(10)).await;
            panic!(
                "round {id} did not open: tclearn propose {status}: {err}\n{outcome}\n{}\n{}",
                net.logs(),
                net.network.report().await
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    id
}

/// Wait for a `tclearn propose` whose round must be appended.
async fn appended(net: &CoalitionNetwork, propose: tokio::process::Child) {
    let (status, round, err) = proposed(propose, ROUND).await;
    assert!(status.success(), "{err}\n{}", net.logs());
    assert_eq!(round["phase"], "appended", "{round}");
}

/// Alice proposes `candidate` as round `id`; returns once its panel is drawn: the clock started
/// at the proposal, the running `tclearn propose`, the round, and the honest G scores.
async fn drawn(
    net: &CoalitionNetwork,
    candidate: &Path,
    id: u64,
) -> (Clock, tokio::process::Child, Round, (i64, H256)) {
    let clock = Clock::start(&net.coalition).await;
    let mut propose = net.propose(ALICE, candidate);
    opened(net, &mut propose, id).await;
    let round = net.wait_round(id, "the draw", ROUND, |r| r.phase != Phase::Drawing).await;
    (clock, propose, round, honest_g_scores(net, candidate))
}

/// A validator played by the test through the Rust client, on its own node.
struct Liar {
    key: Keypair,
    coalition: Coalition,
}

impl Liar {
    async fn new(net: &CoalitionNetwork, i: usize) -> Self {
        let client = Client::connect(&net.network.url(i)).await.unwrap();
        let coalition = Coalition::at(client, net.coalition.address, artifact("coalition").metadata);
        Self { key: Keypair::dev(&network::capitalised(NAMES[i])).unwrap(), coalition }
    }

    /// Commit `verdict` once the round is drawn, reveal it once the reveal phase opens. As an
    /// oracle does, a call that fails because another validator's transaction came first in
    /// the block (the last reveal tallies, and needs more gas than the dry run before it saw)
    /// is tried again while the chain does not have it.
    async fn lie(&self, net: &CoalitionNetwork, round: &Round, verdict: Verdict) {
        let report = Report { round: round.id, candidate: round.candidate, verdict };
        let salt: [u8; 32] = rand::random();
        let commitment = self.coalition.commitment(&self.key.address(), &report, &salt);
        let me = self.key.account_id();
        let ballot = || async {
            self.coalition.ballot(&me, round.id, self.key.address()).await.ok().flatten().unwrap_or_default()
        };
        let commit = async || self.coalition.commit(&self.key, round.id, commitment).await;
        until_on_chain("the liar's commit", commit, async || ballot().await.commitment.is_some()).await;
        net.wait_round(round.id, "the reveal phase", ROUND, |r| r.phase != Phase::Commit).await;
        let reveal = async || self.coalition.reveal(&self.key, round.id, &report, &salt).await;
        until_on_chain("the liar's reveal", reveal, async || ballot().await.report.is_some()).await;
    }

    /// Play the liar's part after the tally, as its oracle would: seal the block when drawn as
    /// general (with the candidate's vault reference), attest the seal otherwise, until the
    /// round is over.
    async fn conclude(&self, net: &CoalitionNetwork, id: u64) {
        let (alice, me) = (me(), self.key.address());
        let deadline = Instant::now() + ROUND;
        loop {
            let round = net.coalition.round(&alice, id).await.unwrap().unwrap();
            match round.phase {
                phase if phase.is_final() => return,
                Phase::Sealing if round.general == Some(me) => {
                    let vault_ref = net.coalition.candidate_ref(&alice, id).await.unwrap().unwrap();
                    if let Err(e) = self.coalition.seal(&self.key, id, &vault_ref).await {
                        eprintln!("the liar's seal, again: {e}");
                    }
                }
                Phase::Attesting => {
                    let seal = net.coalition.seal_of(&alice, id).await.unwrap().unwrap();
                    let ballot = net.coalition.ballot(&alice, id, me).await.unwrap().unwrap_or_default();
                    if ballot.attested != Some(seal.block_hash) {
                        if let Err(e) = self.coalition.attest(&self.key, id, seal.block_hash).await {
                            eprintln!("the liar's attestation, again: {e}");
                        }
                    }
                }
                _ => {}
            }
            assert!(Instant::now() < deadline, "round {id} did not end\n{}", net.logs());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Send `call` until it succeeds or the chain shows it done (`done`), at most five times.
async fn until_on_chain<T, E: std::fmt::Display>(
    what: &str,
    call: impl AsyncFn() -> Result<T, E>,
    done: impl AsyncFn() -> bool,
) {
    for attempt in 1..=5 {
        match call().await {
            Ok(_) => return,
            Err(_) if done().await => return,
            Err(e) => {
                assert!(attempt < 5, "{what}: {e}");
                eprintln!("{what}, again: {e}");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What the honest validators' reports alone decide for `round`: the tally of their reveals.
async fn honest_outcome(c: &Coalition, round: &Round, honest: &[usize]) -> rules::Tally {
    let me = me();
    let mut reveals = Vec::new();
    for &i in honest {
        let ballot = c.ballot(&me, round.id, address(i)).await.unwrap().unwrap();
        let registered = c.local_test_set(&me, address(i)).await.unwrap().map_or(0, |set| set.size);
        reveals.push(Reveal { report: ballot.report.expect("an honest reveal"), registered_l_size: registered });
    }
    let rules = TallyRules {
        spec: c.evaluation_spec(&me).await.unwrap(),
        previous: c.block(&me, round.parent).await.unwrap().unwrap().best_performance,
        lambda_ppm: round.params.lambda_ppm,
        quorum: round.params.quorum,
        validators: round.validators,
    };
    rules::tally(&rules, &reveals)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coalition_survives_crashes_liars_partitions_and_stalls() {
    // `TCLEARN_KEEP_NETWORK_DIR=1` keeps the nodes', oracles' and API's files for a post-mortem.
    let keep = std::env::var_os("TCLEARN_KEEP_NETWORK_DIR").is_some();
    let dir = tempfile::Builder::new().prefix("tclearn-network").disable_cleanup(keep).tempdir().unwrap();
    if keep {
        println!("the network's files: {}", dir.path().display());
    }
    // 40 blocks (2 min) a phase: a validator's node healed from a partition must catch up and
    // its oracle commit before the commit deadline (docs/network.md, sync's backoff).
    let mut net = CoalitionNetwork::start(dir.path(), 40, false).await;
    let c = net.coalition.clone();
    let me = me();
    let mut measured: Vec<(String, Duration, u64)> = Vec::new();
    let mut seed = 0;
    let mut candidate = |net: &CoalitionNetwork, who: usize| {
        seed += 1;
        net.train(who, &format!("r{seed}"), seed)
    };

    // 1. Alice proposes; the round is appended, and every node finalizes the block it is in.
    let r = candidate(&net, ALICE);
    let clock = Clock::start(&c).await;
    appended(&net, net.propose(ALICE, &r)).await;
    let (wall, blocks) = clock.stop(&c).await;
    let best = c.client().best_number().await.unwrap();
    finalized_everywhere(&net.network, &[0, 1, 2, 3], best, Duration::from_secs(120)).await;
    measured.push(("1. a round appended".into(), wall, blocks));
    measured.push((
        "1. ... and finalized on every node".into(),
        clock.started.elapsed(),
        c.client().best_number().await.unwrap() - clock.block,
    ));

    // 2. Bob proposes; once the round is drawn, Dave's node is killed. The round completes with
    //    the others (Dave's oracle, cut off, casts no vote), and three of four keep finalizing.
    //    Dave's node is then started again, in its own OS group for scenario 5.
    let r = candidate(&net, BOB);
    let clock = Clock::start(&c).await;
    let mut propose = net.propose(BOB, &r);
    opened(&net, &mut propose, 1).await;
    net.wait_round(1, "the draw", ROUND, |r| r.phase != Phase::Drawing).await;
    let dave_node = net.network.kill("dave");
    appended(&net, propose).await;
    let (wall, blocks) = clock.stop(&c).await;
    let best = c.client().best_number().await.unwrap();
    finalized_everywhere(&net.network, &[0, 1, 2], best, Duration::from_secs(120)).await;
    measured.push(("2. a round with a validator's node killed".into(), wall, blocks));
    net.network.restart(dave_node, Some(PARTITION_GROUP));
    let best = c.client().best_number().await.unwrap();
    finalized_everywhere(&net.network, &[0, 1, 2, 3], best, Duration::from_secs(120)).await;

    // 3. Oracles killed with SIGKILL mid-round and restarted on their journals. Dave's oracle
    //    is stopped, so the commit phase waits: Charlie's is killed once its commitment is on
    //    chain, before it can reveal, and restarted (it must reveal the report it committed, and
    //    not commit again). Then Dave's oracle starts, commits, and is killed once its reveal is
    //    on chain, and restarted (it must not reveal again).
    drop(net.oracles[DAVE].take());
    let r = candidate(&net, ALICE);
    let clock = Clock::start(&c).await;
    let mut propose = net.propose(ALICE, &r);
    opened(&net, &mut propose, 2).await;
    let ballot_of = |i: usize| {
        let c = c.clone();
        async move { c.ballot(&me, 2, address(i)).await.ok().flatten().unwrap_or_default() }
    };
    let deadline = Instant::now() + ROUND;
    while ballot_of(CHARLIE).await.commitment.is_none() {
        assert!(Instant::now() < deadline, "Charlie did not commit\n{}", net.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    net.oracles[CHARLIE].as_mut().unwrap().child.start_kill().unwrap();
    net.oracles[CHARLIE].take().unwrap().child.wait().await.unwrap();
    let ballot = ballot_of(CHARLIE).await;
    assert!(ballot.report.is_none(), "killed after its commitment, before its reveal: {ballot:?}");
    net.oracles[CHARLIE] = Some(net.start_oracle(CHARLIE, &[]));
    net.oracles[DAVE] = Some(net.start_oracle(DAVE, &[]));
    while ballot_of(DAVE).await.report.is_none() {
        assert!(Instant::now() < deadline, "Dave did not reveal\n{}", net.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    net.oracles[DAVE].as_mut().unwrap().child.start_kill().unwrap();
    net.oracles[DAVE].take().unwrap().child.wait().await.unwrap();
    assert!(c.round(&me, 2).await.unwrap().unwrap().block.is_none(), "killed before the round ended");
    net.oracles[DAVE] = Some(net.start_oracle(DAVE, &[]));
    appended(&net, propose).await;
    let (wall, blocks) = clock.stop(&c).await;
    let last = c.client().best_number().await.unwrap();
    for i in [CHARLIE, DAVE] {
        let ballot = c.ballot(&me, 2, address(i)).await.unwrap().unwrap();
        assert!(ballot.report.is_some() && ballot.accepting, "{}: {ballot:?}", NAMES[i]);
        assert_eq!(
            acts(&c, clock.block, last, 2, address(i)).await,
            (1, 1),
            "{}: one commitment, one reveal\n{}",
            NAMES[i],
            net.logs()
        );
        let log = net.oracles[i].as_ref().unwrap().log();
        assert!(
            !log.contains("AlreadyCommitted") && !log.contains("AlreadyRevealed") && !log.contains("evaluated"),
            "restarted, it evaluated nothing again and acted once:\n{log}"
        );
    }
    measured.push(("3. a round with oracles killed after commit and after reveal".into(), wall, blocks));

    // 4. Dave lies, played by the test on his own node; Bob and Charlie are honest. Each round
    //    ends as Bob's and Charlie's reports alone decide, and Dave's ballot records his lie.
    drop(net.oracles[DAVE].take());
    let dave = Liar::new(&net, DAVE).await;
    let spec = c.evaluation_spec(&me).await.unwrap();
    let dave_l = c.local_test_set(&me, address(DAVE)).await.unwrap().expect("Dave's oracle registered its L").size;
    type Lie = fn(i64, H256, u32, u32) -> Scores;
    let lies: [(&str, Lie, Deviation); 4] = [
        (
            "random scores on the right G digest",
            |g, digest, l, tolerance| {
                // A G metric anywhere in range but further than the tolerance from the true one.
                let forged = (g + i64::from(tolerance) + 1 + rand::random_range(0..METRIC_ONE / 2)) % METRIC_ONE;
                Scores { g_metric: forged, g_digest: digest, l_keeps: rand::random(), l_size: l }
            },
            Deviation::GMetric,
        ),
        (
            "a forged G digest",
            |g, _, l, _| Scores { g_metric: g, g_digest: H256(rand::random()), l_keeps: true, l_size: l },
            Deviation::Digest,
        ),
        (
            "a huge local-set size",
            |g, digest, _, _| Scores { g_metric: g, g_digest: digest, l_keeps: true, l_size: u32::MAX },
            Deviation::LocalSetMismatch,
        ),
        (
            "an out-of-range G metric",
            |_, digest, l, _| Scores { g_metric: 1_000 * METRIC_ONE, g_digest: digest, l_keeps: true, l_size: l },
            Deviation::OutOfRange,
        ),
    ];
    for (n, (what, lie, deviation)) in lies.into_iter().enumerate() {
        let height = c.height(&me).await.unwrap();
        let r = candidate(&net, ALICE);
        let id = 3 + n as u64;
        let (clock, propose, round, (g, digest)) = drawn(&net, &r, id).await;
        let forged = lie(g, digest, dave_l, spec.metric_tolerance);
        assert!(
            forged.g_metric.abs_diff(g) > u64::from(spec.metric_tolerance) || deviation != Deviation::GMetric,
            "{what}: {forged:?} against {g}"
        );
        dave.lie(&net, &round, Verdict::Scored(forged)).await;
        let (status, outcome, err) = proposed(propose, ROUND).await;
        let (wall, blocks) = clock.stop(&c).await;
        let round = c.round(&me, id).await.unwrap().unwrap();
        let honest = honest_outcome(&c, &round, &[BOB, CHARLIE]).await;
        assert_eq!(honest.rejection, None, "{what}: the honest validators accept: {honest:?}");
        assert!(status.success(), "{what}: {err}\n{}", net.logs());
        assert_eq!(
            (round.phase, round.performance, round.accepts),
            (Phase::Appended, honest.performance, honest.accepts),
            "{what}: {outcome}"
        );
        assert_eq!(c.block(&me, height + 1).await.unwrap().unwrap().performance, honest.performance.unwrap(), "{what}");
        let ballot = c.ballot(&me, id, address(DAVE)).await.unwrap().unwrap();
        assert_eq!(
            (ballot.deviation, ballot.accepting, round.deviants),
            (Some(deviation), false, 1),
            "{what}: Dave is recorded"
        );
        measured.push((format!("4. a round with one liar: {what}"), wall, blocks));
    }
    //    Charlie lies too, with another forged digest than Dave's: no G digest has 2/3 of the
    //    reveals, so the round fails safe and no block is appended.
    drop(net.oracles[CHARLIE].take());
    let charlie = Liar::new(&net, CHARLIE).await;
    let height = c.height(&me).await.unwrap();
    let r = candidate(&net, ALICE);
    let id = 7;
    let (clock, propose, round, (g, _)) = drawn(&net, &r, id).await;
    let charlie_l =
        c.local_test_set(&me, address(CHARLIE)).await.unwrap().expect("Charlie's oracle registered its L").size;
    let forged = |byte: u8, l_size| {
        Verdict::Scored(Scores { g_metric: g, g_digest: H256::repeat_byte(byte), l_keeps: true, l_size })
    };
    tokio::join!(charlie.lie(&net, &round, forged(0xC1, charlie_l)), dave.lie(&net, &round, forged(0xD1, dave_l)));
    let (status, outcome, _) = proposed(propose, ROUND).await;
    let (wall, blocks) = clock.stop(&c).await;
    assert_eq!(status.code(), Some(2), "a rejected round: {outcome}");
    let round = c.round(&me, id).await.unwrap().unwrap();
    assert_eq!(round.phase, Phase::Rejected(Rejection::InconsistentPredictions), "{outcome}");
    assert_eq!(c.height(&me).await.unwrap(), height, "no block");
    measured.push(("4. a round with two liars that disagree (rejected)".into(), wall, blocks));
    //    Charlie and Dave collude beyond the bound: the same forged digest and a G metric 0.03
    //    off the model's. Their digest has 2/3 of the reveals: the block is appended with the
    //    performance they chose, and honest Bob is the one recorded as a deviant. What finds
    //    them afterwards: `tclearn audit blocks` re-evaluates every block's model on G and
    //    proves their reports forged (and Bob's true), exiting 3.
    let height = c.height(&me).await.unwrap();
    let r = candidate(&net, ALICE);
    let id = 8;
    let (clock, propose, round, (g, _)) = drawn(&net, &r, id).await;
    // 0.03 above the model's G metric, or below it if that would leave the metric's range.
    let forged_g =
        if g + METRIC_ONE * 3 / 100 <= METRIC_ONE { g + METRIC_ONE * 3 / 100 } else { g - METRIC_ONE * 3 / 100 };
    let colluded = |l_size| {
        Verdict::Scored(Scores { g_metric: forged_g, g_digest: H256::repeat_byte(0xCD), l_keeps: true, l_size })
    };
    tokio::join!(charlie.lie(&net, &round, colluded(charlie_l)), dave.lie(&net, &round, colluded(dave_l)));
    // The colluders accept, so the general is one of them: they seal and attest themselves.
    tokio::join!(charlie.conclude(&net, id), dave.conclude(&net, id));
    let (status, outcome, err) = proposed(propose, ROUND).await;
    let (wall, blocks) = clock.stop(&c).await;
    assert!(status.success(), "{err}\n{outcome}");
    let block = c.block(&me, height + 1).await.unwrap().unwrap();
    assert_eq!(block.performance, forged_g, "the colluders' performance is recorded, not the model's {g}");
    let bob = c.ballot(&me, id, address(BOB)).await.unwrap().unwrap();
    assert_eq!(bob.deviation, Some(Deviation::Digest), "honest Bob is outvoted");
    measured.push(("4. a round with two colluding liars (appended, forged)".into(), wall, blocks));
    let audit = network::tclearn(
        &net.env,
        &net.keys[BOB],
        &["audit", "blocks", "--json", "--test-set", &net.path("g.csv"), "--declaration", &net.path("genesis.json")],
    );
    assert_eq!(audit.status.code(), Some(3), "forged reports found: {}", String::from_utf8_lossy(&audit.stderr));
    let audit: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    let mut forged: Vec<(u64, String)> = audit["reports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["forged"] == true)
        .map(|r| (r["block"].as_u64().unwrap(), r["validator"].as_str().unwrap_or("(the block)").to_string()))
        .collect();
    forged.sort();
    let who = |i: usize| format!("{:?}", address(i));
    let block = u64::from(height) + 1;
    // Dave's forged G metric, forged digest and out-of-range G metric (blocks 4, 5 and 7; his
    // huge local set, block 6, carried true G scores), and the colluders' block: their reports
    // and the performance it recorded.
    let mut expected = vec![
        (4, who(DAVE)),
        (5, who(DAVE)),
        (7, who(DAVE)),
        (block, who(CHARLIE)),
        (block, who(DAVE)),
        (block, "(the block)".to_string()),
    ];
    expected.sort();
    assert_eq!(forged, expected, "exactly the forged G reports and recorded performance:\n{audit}");
    let bob_row = audit["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["block"] == block && r["validator"] == who(BOB))
        .unwrap();
    assert_eq!(bob_row["audit"], "matches", "Bob told the truth");
    net.oracles[CHARLIE] = Some(net.start_oracle(CHARLIE, &[]));
    net.oracles[DAVE] = Some(net.start_oracle(DAVE, &[]));

    // 5. Once the round opens, Dave's node is cut off from its peers: it cannot see the draw
    //    nor Bob's and Charlie's commitments, and finalizes nothing while the others do. Healed,
    //    it catches up, and its oracle commits and reveals in the round.
    let r = candidate(&net, ALICE);
    let clock = Clock::start(&c).await;
    let mut propose = net.propose(ALICE, &r);
    let id = opened(&net, &mut propose, 9).await;
    let dave_client = Client::connect(&net.network.url(DAVE)).await.unwrap();
    let partition = Partition::cut(PARTITION_GROUP, net.network.rpc_port(DAVE));
    let round = net.wait_round(id, "Bob's and Charlie's commitments", ROUND, |r| r.commits >= 2).await;
    assert_eq!(round.phase, Phase::Commit, "the commit phase waits for Dave");
    // Cut off: in the same 9 s, the others finalize and Dave's node does not. Dave's node is
    // read over one connection made before the cut, as its oracle reads it.
    let finalized_on = |client: &Client| {
        let client = client.clone();
        async move { client.finalized_number().await.unwrap_or_else(|e| panic!("Dave's node over RPC: {e}")) }
    };
    let (dave_before, others_before) = (finalized_on(&dave_client).await, c.client().finalized_number().await.unwrap());
    tokio::time::sleep(Duration::from_secs(9)).await;
    let (dave_after, others_after) = (finalized_on(&dave_client).await, c.client().finalized_number().await.unwrap());
    assert!(
        dave_after == dave_before && others_after > others_before,
        "cut off: Dave finalized {dave_before} → {dave_after}, the others {others_before} → {others_after}"
    );
    let dave_ballot = c.ballot(&me, id, address(DAVE)).await.unwrap();
    assert!(dave_ballot.is_none_or(|b| b.commitment.is_none()), "nothing of Dave's reached the others");
    let timers = network::tcp_backoff(PARTITION_GROUP);
    drop(partition);
    let healed = Instant::now();
    let longest = timers.iter().max_by_key(|(_, rto, _)| *rto);
    println!("5. at the heal, Dave's node's connections (port, TCP retransmission timeout ms, backoff): {timers:?}; longest {longest:?}");
    // How long Dave's node takes to finalize what the others had finalized at the heal.
    let catching_up = tokio::spawn({
        let dave_client = dave_client.clone();
        async move {
            while dave_client.finalized_number().await.map_or(true, |n| n < others_after) {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            healed.elapsed()
        }
    });
    appended(&net, propose).await;
    let (wall, blocks) = clock.stop(&c).await;
    let caught_up = if catching_up.is_finished() {
        catching_up.await.ok()
    } else {
        catching_up.abort();
        None
    };
    println!("5. Dave's node caught up {caught_up:?} after the heal");
    let ballot = c.ballot(&me, id, address(DAVE)).await.unwrap();
    assert!(
        ballot.is_some_and(|b| b.report.is_some() && b.accepting),
        "Dave's oracle took part after the heal (his node caught up {caught_up:?} after it): {ballot:?}\n{}\n{}",
        net.logs(),
        net.network.log_tail("dave")
    );
    let last = c.client().best_number().await.unwrap();
    assert_eq!(
        acts(&c, clock.block, last, id, address(DAVE)).await,
        (1, 1),
        "Dave committed and revealed once on the chain the others finalized"
    );
    finalized_everywhere(&net.network, &[0, 1, 2, 3], last, Duration::from_secs(120)).await;
    measured.push(("5. a round with a validator's node cut off, then healed".into(), wall, blocks));
    println!("5. healed: round appended {:?} after the heal", healed.elapsed());

    // 6. Once the round opens, Charlie's and Dave's nodes are stopped: two of four validators
    //    cannot finalize. Alice's and Bob's oracles go on on best blocks (the draw, Bob's
    //    commitment) while finality stands still; the nodes come back, finality resumes, and
    //    the round completes.
    let r = candidate(&net, ALICE);
    let clock = Clock::start(&c).await;
    let mut propose = net.propose(ALICE, &r);
    let id = opened(&net, &mut propose, 10).await;
    let stopped = [net.network.kill("charlie"), net.network.kill("dave")];
    let round = net.wait_round(id, "Bob's commitment", ROUND, |r| r.commits >= 1).await;
    assert_eq!(round.phase, Phase::Commit);
    assert!(c.ballot(&me, id, address(BOB)).await.unwrap().unwrap().commitment.is_some());
    // Stalled: while best blocks go on (two more; with two of four authors, BABE may leave a
    // few slots in a row empty), finality does not, and the draw and Bob's commitment are in
    // blocks that are not final.
    let (best_before, final_before) =
        (c.client().best_number().await.unwrap(), c.client().finalized_number().await.unwrap());
    let stalled_since = Instant::now();
    let mut best_after = best_before;
    while best_after < best_before + 2 && stalled_since.elapsed() < Duration::from_secs(90) {
        tokio::time::sleep(Duration::from_secs(3)).await;
        best_after = c.client().best_number().await.unwrap();
    }
    let final_after = c.client().finalized_number().await.unwrap();
    let mut committed_in = None;
    for number in clock.block..=best_before {
        let (_, events) = c.client().block_contract_events(number).await.unwrap();
        if c.events::<Committed>(&events, "Committed")
            .unwrap()
            .iter()
            .any(|e| e.round == id && e.validator == address(BOB))
        {
            committed_in = Some(number);
        }
    }
    let committed_in = committed_in.expect("Bob's commitment is in a block");
    assert!(
        final_after == final_before && best_after > best_before && committed_in > final_after,
        "finality stalled: best {best_before} → {best_after}, finalized {final_before} → {final_after}, Bob committed in {committed_in}"
    );
    for i in [ALICE, BOB, CHARLIE, DAVE] {
        let oracle = net.oracles[i].as_mut().unwrap();
        assert!(oracle.child.try_wait().unwrap().is_none(), "{}'s oracle still runs:\n{}", NAMES[i], oracle.log());
    }
    let [charlie_node, dave_node] = stopped;
    net.network.restart(charlie_node, None);
    net.network.restart(dave_node, Some(PARTITION_GROUP));
    appended(&net, propose).await;
    let (wall, blocks) = clock.stop(&c).await;
    let last = c.client().best_number().await.unwrap();
    finalized_everywhere(&net.network, &[0, 1, 2, 3], last, Duration::from_secs(180)).await;
    measured.push(("6. a round while finality stalled (two nodes stopped, then back)".into(), wall, blocks));

    println!("network up in {:?}, coalition founded at {:?}", net.up, net.founded);
    println!("| scenario | wall time (s) | blocks |\n|---|---:|---:|");
    for (what, wall, blocks) in &measured {
        println!("| {what} | {:.1} | {blocks} |", wall.as_secs_f64());
    }
    assert_eq!(c.height(&me).await.unwrap(), 10, "every round appended but the two disagreeing liars'");
}
