//! Four oracle processes (Bob, Charlie, Dave, Eve) validate real candidates on the dev node.
//!
//! The node seals a block every 500 ms: a round's validators are drawn from a block made after
//! its proposal, which an instant-sealing node (a block per transaction) would not make.
//!
//! Data: the breast-cancer set split by row number: G is every fifth row, each validator's L
//! another fifth; candidates are logistic regressions trained in Rust and served by an HTTP
//! vault. Round 1's candidate is a well-trained model: accepted, sealed by the general,
//! attested, appended. Round 2's is the same model with its weights negated: every oracle
//! votes against it and the contract rejects it. Round 3's is round 1's with one weight bit
//! flipped, a strength farmer's no-op: appended, crediting nothing, and the oracles attest the
//! block with the strengths unchanged. Round 3 also kills Eve right after its commitment
//! is in a block and before its journal records it; the restarted Eve does not commit again,
//! reveals the journaled report, and the round is appended. Round 4 kills Dave right after his
//! reveal and Eve twice in the middle of an evaluation: Dave does not reveal again, Eve
//! refuses the candidate rather than evaluate it a third time, and the round is appended.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};
use tclearn_client::{
    account_to_address,
    coalition::{Coalition, Committed, Phase, Rejection, Revealed, Verdict},
    Keypair, H160, H256,
};
use tclearn_e2e::{artifact, artifacts_dir, free_port, test_genesis, MembersApi, Node, NodeConfig, Oracle};
use tclearn_evaluation::engine::Engine;
use tclearn_evaluation::evaluate::evaluate;
use tclearn_evaluation::testset::TestSet;
use tclearn_model::architectures::{train_logistic, Mlp};
use tclearn_model::checks as model;
use tclearn_model::genesis::{Declaration, Hash};
use tclearn_model::hash::model_hash;

const VALIDATORS: [&str; 4] = ["Bob", "Charlie", "Dave", "Eve"];
const ROUND_TIMEOUT: Duration = Duration::from_secs(120);

/// Rows of `set` whose index satisfies `keep`, as CSV text (target last, no header).
fn csv_rows(set: &TestSet, keep: impl Fn(usize) -> bool) -> String {
    let inputs = set.inputs(0..set.samples).unwrap();
    let mut text = String::new();
    for (i, row) in inputs.chunks(30).enumerate().filter(|(i, _)| keep(*i)) {
        let fields: Vec<String> = row.iter().map(f32::to_string).collect();
        text.push_str(&format!("{},{}\n", fields.join(","), set.targets[i]));
    }
    text
}

/// The members' API's reference of `model`.
fn vault_ref(model: &[u8]) -> Vec<u8> {
    tclearn_model::hash::members_api_ref(&model_hash(model)).into_bytes()
}

/// `mlp` with the lowest bit of one weight flipped: another hash, the same predictions.
fn nudged(mlp: &Mlp) -> Mlp {
    let mut copy = mlp.clone();
    copy.output.weights[0] = f32::from_bits(copy.output.weights[0].to_bits() ^ 1);
    copy
}

fn negated(mlp: &Mlp) -> Mlp {
    let mut bad = mlp.clone();
    bad.output.weights.iter_mut().for_each(|w| *w = -*w);
    bad.output.bias.iter_mut().for_each(|b| *b = -*b);
    bad
}

/// Data, models in an HTTP vault, a node running the coalition, and the oracles' environment.
struct Scene {
    dir: tempfile::TempDir,
    node: Node,
    client: tclearn_client::Client,
    coalition: Coalition,
    alice: Keypair,
    founders: Vec<H160>,
    env: Vec<(String, String)>,
    models: Vec<(&'static str, Vec<u8>)>,
    good_score: tclearn_evaluation::evaluate::Evaluation,
    _vault: MembersApi,
}

/// The scene on a node started with `node`, with rounds whose phases last `timeout` blocks.
async fn scene(node: NodeConfig, timeout: u32) -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let vault_dir = dir.path().join("vault");
    std::fs::create_dir(&vault_dir).unwrap();
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/breast_cancer.csv");
    let all = TestSet::open(&shared, None).unwrap();
    std::fs::write(dir.path().join("g.csv"), csv_rows(&all, |i| i % 5 == 0)).unwrap();
    for (v, name) in VALIDATORS.iter().enumerate() {
        std::fs::write(dir.path().join(format!("l-{name}.csv")), csv_rows(&all, |i| i % 5 == v + 1)).unwrap();
    }
    let g = TestSet::open(&dir.path().join("g.csv"), None).unwrap();

    // Models: a weak genesis (30 rows, few epochs), a good candidate, its degraded mirror, and
    // a second good candidate for round 3.
    let features = all.inputs(0..all.samples).unwrap().into_owned();
    let labels = all.labels().unwrap();
    let training: Vec<usize> = (0..all.samples).filter(|i| i % 5 != 0).collect();
    let rows = |idx: &[usize]| -> (Vec<f32>, Vec<u32>) {
        (
            idx.iter().flat_map(|i| features[i * 30..(i + 1) * 30].to_vec()).collect(),
            idx.iter().map(|i| labels[*i]).collect(),
        )
    };
    let (x_small, y_small) = rows(&training[..30]);
    let (x_train, y_train) = rows(&training);
    let genesis_model = train_logistic(&x_small, 30, &y_small, 2, 20, 0.05);
    let good = train_logistic(&x_train, 30, &y_train, 2, 300, 0.5);
    // The no-op a strength farmer proposes: the tip with one weight bit flipped.
    let third = nudged(&good);
    let fourth = train_logistic(&x_train, 30, &y_train, 2, 250, 0.5);
    let models = vec![
        ("genesis.onnx", genesis_model.to_onnx()),
        ("good.onnx", good.to_onnx()),
        ("degraded.onnx", negated(&good).to_onnx()),
        ("third.onnx", third.to_onnx()),
        ("fourth.onnx", fourth.to_onnx()),
    ];
    for (name, bytes) in &models {
        std::fs::write(vault_dir.join(name), bytes).unwrap();
    }
    let architecture = model::architecture_hash(&onnx_rs::parse(&models[0].1).unwrap());
    let declaration_text = serde_json::json!({
        "metric": "accuracy",
        "input": {"dims": [null, 30]},
        "output": {"dims": [null, 2]},
        "architecture_hash": Hash(architecture),
        "test_set_hash": Hash(g.hash),
        "batch_size": 64,
    });
    std::fs::write(dir.path().join("genesis.json"), declaration_text.to_string()).unwrap();
    let declaration = Declaration::load(&dir.path().join("genesis.json")).unwrap();
    let engine = Engine::new(None, 1).unwrap();
    let score = |bytes: &[u8]| evaluate(&engine, &declaration, bytes, &g).unwrap();
    let genesis_score = score(&models[0].1);
    let good_score = score(&models[1].1);
    let degraded_score = score(&models[2].1);
    assert!(good_score.value >= 0.95 * genesis_score.value, "{} vs {}", good_score.value, genesis_score.value);
    assert!(degraded_score.value < 0.5, "{}", degraded_score.value);

    // The chain: Alice proposes, the four validators are drawn every round (k = 4 of 5 members).
    let node = Node::start(node).await;
    let client = node.client().await;
    let alice = Keypair::dev("Alice").unwrap();
    let founders: Vec<H160> = std::iter::once("Alice")
        .chain(VALIDATORS)
        .map(|n| account_to_address(&Keypair::dev(n).unwrap().account_id()))
        .collect();
    let mut genesis = test_genesis(4, founders.clone());
    let params = &mut genesis.hyperparameters;
    (params.commit_timeout, params.reveal_timeout, params.seal_timeout, params.attest_timeout) =
        (timeout, timeout, timeout, timeout);
    genesis.architecture_hash = H256(architecture);
    genesis.parameter_hash = H256(model_hash(&models[0].1));
    genesis.vault_ref = vault_ref(&models[0].1);
    genesis.test_set_hash = H256(g.hash);
    genesis.test_set_size = g.samples as u32;
    genesis.performance = genesis_score.fixed;
    let coalition = Coalition::deploy(&client, &alice, &artifact("coalition"), &genesis)
        .await
        .unwrap_or_else(|e| panic!("deploy: {e}\n{}", node.log_tail()));
    // The members' API is the vault: Alice uploads every model, the oracles sign in to read.
    let vault = MembersApi::start(&node, coalition.address, &dir.path().join("genesis.json")).await;
    let files: Vec<PathBuf> = models.iter().map(|(name, _)| vault_dir.join(name)).collect();
    let uploaded = vault.upload("//Alice", &files).await;
    assert_eq!(uploaded.lines().count(), models.len(), "{uploaded}");
    let env: Vec<(String, String)> = [
        ("TCLEARN_RPC", node.rpc_url.clone()),
        ("TCLEARN_COALITION", format!("{:?}", coalition.address)),
        ("TCLEARN_COALITION_METADATA", artifacts_dir().join("coalition.json").display().to_string()),
        ("TCLEARN_GENESIS", dir.path().join("genesis.json").display().to_string()),
        ("TCLEARN_GLOBAL_TEST_SET", dir.path().join("g.csv").display().to_string()),
        ("TCLEARN_VAULT_API", vault.url.clone()),
        ("TCLEARN_POLL_MS", "200".into()),
        ("RUST_LOG", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Scene { dir, node, client, coalition, alice, founders, env, models, good_score, _vault: vault }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_oracles_accept_a_good_candidate_reject_a_degraded_one_and_survive_a_crash() {
    let Scene { dir, node, client, coalition, alice, founders, env, models, good_score, _vault } =
        scene(NodeConfig::dev_interval(500), 500).await;
    // Bob also serves its Prometheus metrics.
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let mut oracles: Vec<Oracle> = VALIDATORS
        .iter()
        .map(|name| {
            let extra: &[(&str, &str)] = if *name == "Bob" { &[("TCLEARN_METRICS_ADDR", &metrics_addr)] } else { &[] };
            Oracle::start(&env, name, dir.path(), extra)
        })
        .collect();
    let logs = |oracles: &[Oracle]| oracles.iter().map(|o| o.log()).collect::<Vec<_>>().join("\n-----\n");
    let me = alice.account_id();
    let c = &coalition;
    let data_ids = |seed: u8| (0..8).map(|i| H256::repeat_byte(seed + i)).collect::<Vec<_>>();
    // Each oracle registers its local set when it first connects, then follows from there.
    for validator in &founders[1..] {
        let registered = || async { c.local_test_set(&me, *validator).await.ok().flatten() };
        tclearn_e2e::eventually(ROUND_TIMEOUT, "the oracles' local sets", registered).await;
    }

    // Round 1: the good candidate is appended.
    let candidate = H256(model_hash(&models[1].1));
    let (round, _) = c.propose(&alice, 0, candidate, &vault_ref(&models[1].1), 8, &data_ids(10), None).await.unwrap();
    let phase = wait_for_end(c, &me, round, &oracles, &logs).await;
    assert_eq!(phase, Phase::Appended, "{}", logs(&oracles));
    let block = c.block(&me, 1).await.unwrap().unwrap();
    assert_eq!((block.parameter_hash, block.vault_ref.as_slice()), (candidate, &vault_ref(&models[1].1)[..]));
    for validator in &founders[1..] {
        let ballot = c.ballot(&me, round, *validator).await.unwrap().expect("every validator has a ballot");
        let report = ballot.report.expect("every oracle revealed");
        let Verdict::Scored(scores) = report.verdict else { panic!("{report:?}") };
        assert!(ballot.accepting && ballot.deviation.is_none(), "{ballot:?}");
        assert_eq!((scores.g_metric, scores.g_digest), (good_score.fixed, H256(good_score.digest.0)));
        assert!((113..=114).contains(&scores.l_size), "each L is a fifth of 569 rows: {}", scores.l_size);
        let registered = c.local_test_set(&me, *validator).await.unwrap().expect("each oracle registered its L");
        assert_eq!(registered.size, scores.l_size);
    }

    // Round 2: the degraded candidate is rejected by every vote.
    let candidate = H256(model_hash(&models[2].1));
    let (round, _) = c.propose(&alice, 1, candidate, &vault_ref(&models[2].1), 8, &data_ids(20), None).await.unwrap();
    let phase = wait_for_end(c, &me, round, &oracles, &logs).await;
    assert_eq!(phase, Phase::Rejected(Rejection::Degrades), "{}", logs(&oracles));
    assert_eq!(c.height(&me).await.unwrap(), 1);
    let state = c.round(&me, round).await.unwrap().unwrap();
    assert_eq!(state.accepts, 0);

    // Round 3: Eve dies right after its commitment is in a block, before journaling it.
    drop(oracles.pop());
    let eve_address = founders[4];
    let aborting = Oracle::start(&env, "Eve", dir.path(), &[("TCLEARN_ORACLE_ABORT_AFTER", "commit")]);
    let first_block = client.best_number().await.unwrap() + 1;
    let candidate = H256(model_hash(&models[3].1));
    let (round, _) = c.propose(&alice, 1, candidate, &vault_ref(&models[3].1), 8, &data_ids(30), None).await.unwrap();
    let mut aborting = aborting;
    let status = tokio::time::timeout(ROUND_TIMEOUT, aborting.child.wait()).await.expect("Eve aborts").unwrap();
    assert!(!status.success(), "Eve was aborted: {status:?}\n{}", aborting.log());
    assert!(aborting.log().contains("aborting as asked"), "{}", aborting.log());
    let ballot = c.ballot(&me, round, eve_address).await.unwrap().unwrap();
    assert!(ballot.commitment.is_some() && ballot.report.is_none(), "committed, not revealed: {ballot:?}");
    oracles.push(Oracle::start(&env, "Eve", dir.path(), &[]));
    let phase = wait_for_end(c, &me, round, &oracles, &logs).await;
    assert_eq!(phase, Phase::Appended, "{}", logs(&oracles));
    let ballot = c.ballot(&me, round, eve_address).await.unwrap().unwrap();
    assert!(ballot.report.is_some() && ballot.accepting, "the restarted Eve revealed its committed report: {ballot:?}");
    let last_block = client.best_number().await.unwrap();
    let mut eve_commits = 0;
    for number in first_block..=last_block {
        let (_, events) = client.block_contract_events(number).await.unwrap();
        let committed: Vec<Committed> = c.events(&events, "Committed").unwrap();
        eve_commits += committed.iter().filter(|e| e.round == round && e.validator == eve_address).count();
    }
    assert_eq!(eve_commits, 1, "Eve committed once\n{}", logs(&oracles));
    assert!(!oracles[3].log().contains("AlreadyCommitted"), "the restarted Eve did not try again");
    assert_eq!(c.height(&me).await.unwrap(), 2);
    // The no-op does not degrade the model, so it is appended; it gains nothing over the tip,
    // so it credits no strength, and the oracles attested the block with the strengths as they were.
    let block = c.block(&me, 2).await.unwrap().unwrap();
    assert_eq!((block.parameter_hash, block.samples), (candidate, 0), "{}", logs(&oracles));
    assert_eq!(c.round(&me, round).await.unwrap().unwrap().credited, 0);

    // Bob's metrics: three rounds seen and evaluated, a commitment and a reveal in each.
    let metrics = http_get(&metrics_addr, "/metrics").await;
    // Races with the other oracles (to draw, to attest) are not errors.
    for line in [
        "tclearn_oracle_rounds_seen_total 3",
        "tclearn_oracle_evaluations_total 3",
        "tclearn_oracle_reports_posted_total 6",
        "tclearn_oracle_errors_total 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("tclearn_oracle_evaluation_seconds_count 3"), "{metrics}");
    // What shows a stall: the last tick, the best block, an evaluation in flight, the funds.
    let gauge = |name: &str| -> f64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(now - gauge("tclearn_oracle_last_tick_seconds") < 30.0, "{metrics}");
    assert!(gauge("tclearn_oracle_best_block") >= last_block as f64 - 2.0, "{metrics}");
    assert_eq!(gauge("tclearn_oracle_evaluating"), 0.0);
    assert!(gauge("tclearn_oracle_free_balance") > 1e12, "Bob is funded: {metrics}");

    // Round 4: Dave dies right after his reveal is in a block, before journaling it; Eve dies
    // twice in the middle of evaluating the candidate (as when a candidate brings down the
    // host). The restarted Dave does not reveal again; the third Eve refuses the candidate
    // instead of evaluating it once more, and the round goes on with the three others.
    let (dave_address, eve_address) = (founders[3], founders[4]);
    drop(oracles.pop());
    drop(oracles.pop());
    let mut dave = Oracle::start(&env, "Dave", dir.path(), &[("TCLEARN_ORACLE_ABORT_AFTER", "reveal")]);
    let mut eve = Oracle::start(&env, "Eve", dir.path(), &[("TCLEARN_ORACLE_ABORT_AFTER", "evaluation-started")]);
    let first_block = client.best_number().await.unwrap() + 1;
    let candidate = H256(model_hash(&models[4].1));
    let (round, _) = c.propose(&alice, 2, candidate, &vault_ref(&models[4].1), 8, &data_ids(40), None).await.unwrap();
    for attempt in 1..=2 {
        let status = tokio::time::timeout(ROUND_TIMEOUT, eve.child.wait()).await.expect("Eve aborts").unwrap();
        assert!(!status.success() && eve.log().contains("aborting as asked"), "attempt {attempt}: {}", eve.log());
        if attempt == 1 {
            eve = Oracle::start(&env, "Eve", dir.path(), &[("TCLEARN_ORACLE_ABORT_AFTER", "evaluation-started")]);
        }
    }
    oracles.push(Oracle::start(&env, "Eve", dir.path(), &[]));
    let status = tokio::time::timeout(ROUND_TIMEOUT, dave.child.wait()).await.expect("Dave aborts").unwrap();
    assert!(!status.success() && dave.log().contains("aborting as asked"), "{}", dave.log());
    let ballot = c.ballot(&me, round, dave_address).await.unwrap().unwrap();
    assert!(ballot.report.is_some(), "Dave revealed before dying: {ballot:?}");
    oracles.insert(2, Oracle::start(&env, "Dave", dir.path(), &[]));
    let phase = wait_for_end(c, &me, round, &oracles, &logs).await;
    assert_eq!(phase, Phase::Appended, "{}", logs(&oracles));
    let eve_ballot = c.ballot(&me, round, eve_address).await.unwrap().unwrap();
    assert_eq!(
        eve_ballot.report.map(|r| r.verdict),
        Some(Verdict::Refused(tclearn_client::coalition::Refusal::ModelRefused)),
        "{}",
        oracles[3].log()
    );
    assert!(oracles[3].log().contains("interrupted 2 times"), "{}", oracles[3].log());
    let state = c.round(&me, round).await.unwrap().unwrap();
    assert_eq!((state.reveals, state.accepts), (4, 3), "{state:?}");
    let last_block = client.best_number().await.unwrap();
    let mut dave_reveals = 0;
    for number in first_block..=last_block {
        let (_, events) = client.block_contract_events(number).await.unwrap();
        let revealed: Vec<Revealed> = c.events(&events, "Revealed").unwrap();
        dave_reveals += revealed.iter().filter(|e| e.round == round && e.validator == dave_address).count();
    }
    assert_eq!(dave_reveals, 1, "Dave revealed once\n{}", logs(&oracles));
    assert!(!oracles[2].log().contains("AlreadyRevealed"), "the restarted Dave did not try again");
    assert_eq!(c.height(&me).await.unwrap(), 3);
    drop(oracles);
    node.stop().await;
}

/// `oracle` stops on its own with a failure whose log says `reason`.
async fn refuses_to_start(mut oracle: Oracle, reason: &str) {
    let status = tokio::time::timeout(ROUND_TIMEOUT, oracle.child.wait()).await.expect("it stops").unwrap();
    assert!(!status.success(), "{}", oracle.log());
    assert!(oracle.log().contains(reason), "{reason} in\n{}", oracle.log());
}

/// The body of `GET path` from `addr`, over plain HTTP/1.0.
async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or(response)
}

/// Wait until round `id` is over (appended, rejected or failed); fail with the oracles' logs.
async fn wait_for_end(
    c: &Coalition,
    me: &tclearn_client::AccountId32,
    id: u64,
    oracles: &[Oracle],
    logs: &impl Fn(&[Oracle]) -> String,
) -> Phase {
    let started = std::time::Instant::now();
    loop {
        if let Ok(Some(round)) = c.round(me, id).await {
            if matches!(round.phase, Phase::Appended | Phase::Rejected(_) | Phase::Failed(_)) {
                return round.phase;
            }
        }
        if started.elapsed() > ROUND_TIMEOUT {
            panic!("round {id} did not end within {ROUND_TIMEOUT:?}\n{}", logs(oracles));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracles_advance_a_round_past_its_deadlines() {
    // Blocks every 300 ms, phases of 20 blocks; only Bob and Charlie of the four drawn run.
    let Scene { dir, node, coalition, alice, env, models, _vault, .. } =
        scene(NodeConfig::with_args(&["--dev", "--sealing", "300"]), 20).await;
    let oracles: Vec<Oracle> =
        ["Bob", "Charlie"].iter().map(|name| Oracle::start(&env, name, dir.path(), &[])).collect();
    let logs = |oracles: &[Oracle]| oracles.iter().map(|o| o.log()).collect::<Vec<_>>().join("\n-----\n");
    let me = alice.account_id();
    let candidate = H256(model_hash(&models[1].1));
    let data_ids: Vec<H256> = (0..8).map(H256::repeat_byte).collect();
    let (round, _) =
        coalition.propose(&alice, 0, candidate, &vault_ref(&models[1].1), 8, &data_ids, None).await.unwrap();
    let phase = wait_for_end(&coalition, &me, round, &oracles, &logs).await;
    let state = coalition.round(&me, round).await.unwrap().unwrap();
    // Two commitments could not open the reveal phase (it needs all four): only `advance` past
    // the commit deadline did, and only the oracles call it.
    assert_eq!((state.commits, state.reveals), (2, 2), "{phase:?}\n{}", logs(&oracles));
    assert!(matches!(phase, Phase::Rejected(_) | Phase::Failed(_)), "{phase:?}");
    assert!(logs(&oracles).contains("advanced past the deadline"), "{}", logs(&oracles));
    assert_eq!(coalition.height(&me).await.unwrap(), 0);
    drop(oracles);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracles_reconnect_after_the_node_restarts() {
    let Scene { dir, mut node, coalition, alice, env, models, _vault, .. } =
        scene(NodeConfig::dev_interval(500), 500).await;
    let oracles: Vec<Oracle> = VALIDATORS.iter().map(|name| Oracle::start(&env, name, dir.path(), &[])).collect();
    let logs = |oracles: &[Oracle]| oracles.iter().map(|o| o.log()).collect::<Vec<_>>().join("\n-----\n");
    let connections = |oracle: &Oracle| oracle.log().matches(" connected ").count();
    let started = std::time::Instant::now();
    while !oracles.iter().all(|o| connections(o) == 1) {
        assert!(started.elapsed() < ROUND_TIMEOUT, "oracles did not connect\n{}", logs(&oracles));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    node.restart().await;
    let client = node.client().await;
    let coalition = Coalition::at(client, coalition.address, artifact("coalition").metadata);
    let me = alice.account_id();
    let candidate = H256(model_hash(&models[1].1));
    let data_ids: Vec<H256> = (0..8).map(H256::repeat_byte).collect();
    let (round, _) =
        coalition.propose(&alice, 0, candidate, &vault_ref(&models[1].1), 8, &data_ids, None).await.unwrap();
    let phase = wait_for_end(&coalition, &me, round, &oracles, &logs).await;
    assert_eq!(phase, Phase::Appended, "{}", logs(&oracles));
    for oracle in &oracles {
        assert!(connections(oracle) >= 2, "each oracle connected again\n{}", oracle.log());
    }
    // A second oracle of Bob's with another local set refuses to start: Bob registered his.
    let other_l = dir.path().join("l-Charlie.csv").display().to_string();
    let journal = dir.path().join("bob-again.redb").display().to_string();
    let extra = [("TCLEARN_LOCAL_TEST_SET", other_l.as_str()), ("TCLEARN_JOURNAL", journal.as_str())];
    refuses_to_start(Oracle::start(&env, "Bob", dir.path(), &extra), "changes only through governance").await;
    // An oracle whose account has no funds refuses to start: it could send nothing.
    let bob_l = dir.path().join("l-Bob.csv").display().to_string();
    let broke = Oracle::start(&env, "Nobody", dir.path(), &[("TCLEARN_LOCAL_TEST_SET", bob_l.as_str())]);
    refuses_to_start(broke, "has no funds to pay for its transactions").await;
    // An oracle with another G of the same size (two rows swapped) refuses to start too.
    let g = std::fs::read_to_string(dir.path().join("g.csv")).unwrap();
    let mut rows: Vec<&str> = g.lines().collect();
    rows.swap(0, 1);
    let other_g = dir.path().join("g-other.csv");
    std::fs::write(&other_g, rows.join("\n") + "\n").unwrap();
    let other_g = other_g.display().to_string();
    let journal = dir.path().join("charlie-again.redb").display().to_string();
    let extra = [("TCLEARN_GLOBAL_TEST_SET", other_g.as_str()), ("TCLEARN_JOURNAL", journal.as_str())];
    refuses_to_start(Oracle::start(&env, "Charlie", dir.path(), &extra), "this is not the coalition's test set").await;
    drop(oracles);
    node.stop().await;
}

/// An HTTP server that answers every request with `body`, one byte every `pause`.
async fn trickling_vault(body: Vec<u8>, pause: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 2048];
                let _ = stream.read(&mut request).await;
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for byte in body {
                    tokio::time::sleep(pause).await;
                    if stream.write_all(&[byte]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_completes_without_the_oracle_whose_vault_trickles_and_it_casts_no_vote() {
    // Blocks every 300 ms, phases of 40 blocks (12 s). Dave's vault sends one byte every 50 ms:
    // a model of several hundred bytes never arrives within his 2 s fetch deadline.
    let Scene { dir, node, coalition, alice, founders, env, models, _vault, .. } =
        scene(NodeConfig::with_args(&["--dev", "--sealing", "300"]), 40).await;
    let slow_vault = trickling_vault(models[1].1.clone(), Duration::from_millis(50)).await;
    let oracles: Vec<Oracle> = VALIDATORS
        .iter()
        .map(|name| {
            let extra: Vec<(&str, &str)> = if *name == "Dave" {
                vec![("TCLEARN_VAULT_URL", slow_vault.as_str()), ("TCLEARN_VAULT_TIMEOUT", "2")]
            } else {
                vec![]
            };
            Oracle::start(&env, name, dir.path(), &extra)
        })
        .collect();
    let logs = |oracles: &[Oracle]| oracles.iter().map(|o| o.log()).collect::<Vec<_>>().join("\n-----\n");
    let me = alice.account_id();
    for validator in &founders[1..] {
        let registered = || async { coalition.local_test_set(&me, *validator).await.ok().flatten() };
        tclearn_e2e::eventually(ROUND_TIMEOUT, "the oracles' local sets", registered).await;
    }
    let candidate = H256(model_hash(&models[1].1));
    let data_ids: Vec<H256> = (0..8).map(H256::repeat_byte).collect();
    let (round, _) =
        coalition.propose(&alice, 0, candidate, &vault_ref(&models[1].1), 8, &data_ids, None).await.unwrap();
    let phase = wait_for_end(&coalition, &me, round, &oracles, &logs).await;
    assert_eq!(phase, Phase::Appended, "the three others carry the round\n{}", logs(&oracles));
    let state = coalition.round(&me, round).await.unwrap().unwrap();
    assert_eq!((state.commits, state.reveals, state.accepts), (3, 3, 3), "{state:?}");
    let dave = founders[3];
    let ballot = coalition.ballot(&me, round, dave).await.unwrap();
    assert!(ballot.is_none_or(|b| b.commitment.is_none() && b.report.is_none()), "Dave cast no vote: {ballot:?}");
    let dave_log = oracles[2].log();
    assert!(dave_log.contains("did not finish within 2s"), "{dave_log}");
    assert!(!dave_log.contains("candidate refused"), "{dave_log}");
    drop(oracles);
    node.stop().await;
}
