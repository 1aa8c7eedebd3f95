//! `tclearn` against a dev node, the members' API and three real oracles, as a hospital uses it:
//! keys, a genesis model, founding, splitting off L, training with DP-SGD, proposing (a delta)
//! and following the round to its block, a proposal refused past the privacy budget with its
//! reason, governance (a proposal and a vote), status, an audited download, the audit log
//! verified against the chain.

mod common;

use common::breast_cancer_rows;
use std::{
    io::Write,
    path::Path,
    process::{Command, Output, Stdio},
};
use tclearn_client::{
    coalition::{
        rdp::{self, Rdp},
        rules, PrivacySpend,
    },
    Keypair,
};
use tclearn_e2e::{artifacts_dir, MembersApi, Node, NodeConfig, Oracle};

const VALIDATORS: [&str; 3] = ["Bob", "Charlie", "Dave"];

struct Cli {
    env: Vec<(String, String)>,
}

impl Cli {
    /// Run `tclearn` as the member whose key file is `key`.
    fn run(&self, key: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tclearn"))
            .args(args)
            .envs(self.env.iter().cloned())
            .env("TCLEARN_KEY_FILE", key)
            .output()
            .expect("tclearn runs")
    }

    /// Run it and expect success; its standard output as JSON when `--json` was passed.
    fn ok(&self, key: &Path, args: &[&str]) -> serde_json::Value {
        let out = self.run(key, args);
        assert!(
            out.status.success(),
            "tclearn {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(&text)
            .or_else(|_| serde_json::from_str(text.lines().last().unwrap_or("null")))
            .unwrap_or(serde_json::Value::String(text.into_owned()))
    }

    fn import(&self, key: &Path, secret: &str) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tclearn"))
            .args(["key", "import"])
            .env("TCLEARN_KEY_FILE", key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{secret}").unwrap();
        assert!(child.wait_with_output().unwrap().status.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hospital_founds_trains_proposes_and_governs_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = |name: &str| d.join(name).display().to_string();
    // G: every 5th row; each validator's L: 25 rows of its own; Alice's data: the other rows.
    std::fs::write(d.join("g.csv"), breast_cancer_rows((0..569).filter(|r| r % 5 == 0), false)).unwrap();
    for (v, name) in VALIDATORS.iter().enumerate() {
        std::fs::write(
            d.join(format!("l-{name}.csv")),
            breast_cancer_rows((0..569).filter(|r| r % 5 == 1).skip(25 * v).take(25), false),
        )
        .unwrap();
    }
    std::fs::write(d.join("alice.csv"), breast_cancer_rows((0..569).filter(|r| r % 5 >= 2), true)).unwrap();

    let node = Node::start(NodeConfig::dev_interval(300)).await;
    let mut cli = Cli {
        env: vec![
            ("TCLEARN_RPC".into(), node.rpc_url.clone()),
            ("TCLEARN_ARTIFACTS".into(), artifacts_dir().display().to_string()),
        ],
    };
    let (alice, bob) = (d.join("alice.key"), d.join("bob.key"));
    cli.import(&alice, "//Alice");
    cli.import(&bob, "//Bob");
    let shown = cli.ok(&alice, &["key", "show", "--json"]);
    assert_eq!(shown["account"], Keypair::dev("Alice").unwrap().account_id().to_string().as_str());
    let refused = cli.run(&alice, &["key", "new"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("exists: pass --force to replace it"),
        "a key is never overwritten silently"
    );

    // Founding: a genesis perceptron, the coalition with a budget of epsilon 20.
    // Its standardisation is the public ranges of the features, declared in the genesis.
    let ranges = common::breast_cancer_standardisation_path().display().to_string();
    cli.ok(&alice, &["model", "init", "--standardisation", &ranges, "--hidden", "8", "--out", &path("genesis.onnx")]);
    let founders = VALIDATORS.map(|n| Keypair::dev(n).unwrap().account_id().to_string()).join(",");
    let founded = cli.ok(
        &alice,
        &[
            "found",
            "--json",
            "--model",
            &path("genesis.onnx"),
            "--test-set",
            &path("g.csv"),
            "--founders",
            &founders,
            "--validators-per-round",
            "3",
            "--phase-blocks",
            "60",
            // Alice proposes again at once, to be refused for her budget.
            "--proposal-cooldown",
            "0",
            "--privacy-budget",
            "20,1e-4",
            "--epochs",
            "10",
            "--declaration",
            &path("genesis.json"),
            "--standardisation",
            &ranges,
        ],
    );
    let coalition = founded["coalition"].as_str().unwrap().to_string();
    let api = MembersApi::start(&node, coalition.parse().unwrap(), &d.join("genesis.json")).await;
    cli.env.push(("TCLEARN_API_URL".into(), api.url.clone()));
    cli.ok(&alice, &["upload", &path("genesis.onnx")]);
    let env: Vec<(String, String)> = [
        ("TCLEARN_RPC", node.rpc_url.clone()),
        ("TCLEARN_COALITION", coalition.clone()),
        ("TCLEARN_COALITION_METADATA", artifacts_dir().join("coalition.json").display().to_string()),
        ("TCLEARN_GENESIS", path("genesis.json")),
        ("TCLEARN_GLOBAL_TEST_SET", path("g.csv")),
        ("TCLEARN_VAULT_API", api.url.clone()),
        ("TCLEARN_POLL_MS", "200".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let oracles: Vec<Oracle> = VALIDATORS.iter().map(|name| Oracle::start(&env, name, d, &[])).collect();

    // Alice keeps 20% as L, trains on 150 new rows with DP-SGD, proposes and follows the round.
    cli.ok(
        &alice,
        &["split", "--data", &path("alice.csv"), "--train", &path("train.csv"), "--local", &path("local.csv")],
    );
    let trained = cli.ok(
        &alice,
        &[
            "train",
            "--json",
            "--data",
            &path("train.csv"),
            "--out",
            &path("round1"),
            "--max-samples",
            "150",
            "--noise-multiplier",
            "1.0",
        ],
    );
    assert_eq!((trained["samples"].as_u64(), trained["parent"].as_u64()), (Some(150), Some(0)));
    assert!(trained["loss_after"].as_f64() < trained["loss_before"].as_f64(), "{trained}");
    let epsilon = trained["epsilon"].as_f64().unwrap();
    // As a delta: the vault merges it onto block 0's model.
    let out = cli.run(&alice, &["propose", "--json", "--delta", "--candidate", &path("round1"), "--wait-secs", "240"]);
    let logs = || {
        oracles
            .iter()
            .map(|o| o.log().lines().rev().take(15).collect::<Vec<_>>().join("\n"))
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let declared = |folder: &str| -> Rdp {
        let file = std::fs::read_to_string(path(&format!("{folder}/candidate.json"))).unwrap();
        let file: serde_json::Value = serde_json::from_str(&file).unwrap();
        let rdp: Vec<u64> = serde_json::from_value(file["privacy"]["rdp"].clone()).unwrap();
        Rdp::try_from(rdp.as_slice()).unwrap()
    };
    let first = declared("round1");
    assert!(
        out.status.success(),
        "propose: {}\n{}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
        logs(),
        node.log_tail()
    );
    let round: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((round["phase"].as_str(), round["block"].as_u64()), (Some("appended"), Some(1)), "{round}");
    assert!(
        round["performance"].as_i64().unwrap() > founded["genesis_metric"].as_f64().map(|m| (m * 1e6) as i64).unwrap()
    );

    // A second run noisier by far would spend more than the budget: `train` says so before it
    // trains, with what is left.
    let train = |out: &str, more: &[&str]| {
        let (data, out) = (path("train.csv"), path(out));
        let mut args = vec!["train", "--json", "--data", &data, "--max-samples", "150", "--out", &out];
        args.extend(more);
        cli.run(&alice, &args)
    };
    let noisy = train("round2", &["--noise-multiplier", "0.4"]);
    let message = String::from_utf8_lossy(&noisy.stderr);
    assert_eq!(noisy.status.code(), Some(1), "{message}");
    assert!(message.contains("the coalition's budget is 20") && message.contains("raise the noise"), "{message}");
    assert!(!std::path::Path::new(&path("round2")).exists(), "refused before training");
    // A seed with DP-SGD is refused: it would let anyone regenerate the noise.
    let seeded = train("round2", &["--noise-multiplier", "1.0", "--seed", "1"]);
    assert!(String::from_utf8_lossy(&seeded.stderr).contains("cannot be used with"), "{seeded:?}");
    let seeded = train("round2", &["--seed", "1"]);
    assert!(String::from_utf8_lossy(&seeded.stderr).contains("--without-privacy"), "{seeded:?}");
    // Without privacy, in a coalition with a budget: refused before training.
    let plain = train("round2", &["--without-privacy"]);
    assert!(String::from_utf8_lossy(&plain.stderr).contains("has a privacy budget"), "{plain:?}");
    // DP-SGD by default; a candidate that declares more than the budget leaves is refused by the
    // coalition too.
    let default = train("round2", &[]);
    assert!(default.status.success(), "{default:?}");
    let default: serde_json::Value = serde_json::from_slice(&default.stdout).unwrap();
    assert!(default["epsilon"].as_f64().is_some_and(|e| e > 0.0), "DP on by default: {default}");
    let file = path("round2/candidate.json");
    let mut candidate: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let more: Vec<u64> = declared("round2").iter().map(|r| r.saturating_mul(20)).collect();
    candidate["privacy"]["rdp"] = serde_json::json!(more);
    std::fs::write(&file, candidate.to_string()).unwrap();
    let refused = cli.run(&alice, &["propose", "--candidate", &path("round2")]);
    assert_eq!(refused.status.code(), Some(1));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains(
            "the coalition refused: this would take your privacy spend past the coalition's budget of epsilon 20"
        ),
        "{message}"
    );
    // A member that trains with DP-SGD but declares a tenth of what it spent: the chain composes
    // what it declares, but every validator recomputes the declaration from its noise and the
    // round's samples, batch size and epochs, and refuses the candidate before fetching it.
    let under = train("round3", &["--attack", "under-declare"]);
    assert!(under.status.success(), "{under:?}");
    let out = cli.run(&alice, &["propose", "--json", "--candidate", &path("round3"), "--wait-secs", "240"]);
    assert_eq!(out.status.code(), Some(2), "not appended: {}", String::from_utf8_lossy(&out.stderr));
    let refused: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (refused["phase"].as_str(), refused["reason"].as_str()),
        (Some("rejected"), Some("Refused")),
        "{refused}"
    );
    let whole_logs: Vec<String> = oracles.iter().map(|o| o.log()).collect();
    for log in &whole_logs {
        let log = without_colours(log);
        assert!(log.contains("verdict=Refused(PrivacyUnderDeclared)") && log.contains("its noise gives"), "{log}");
    }
    let third = declared("round3");
    // Stale: the first candidate's parent is no longer the tip.
    let stale = cli.run(&alice, &["propose", "--candidate", &path("round1")]);
    assert!(
        String::from_utf8_lossy(&stale.stderr).contains("the tip moved to block 1"),
        "{}",
        String::from_utf8_lossy(&stale.stderr)
    );

    // Governance: Alice proposes three epochs, Bob votes aye.
    let proposal =
        cli.ok(&alice, &["proposal", "new", "--json", "--action", "set_hyperparameter", "--argument", "epochs=3"]);
    let id = proposal["proposal"].as_u64().unwrap().to_string();
    let vote = cli.ok(&bob, &["vote", "--json", "--proposal", &id, "--aye"]);
    assert_eq!((vote["ayes"].as_u64(), vote["nays"].as_u64()), (Some(1), Some(0)), "{vote}");
    let twice = cli.run(&bob, &["vote", "--proposal", &id, "--nay"]);
    assert!(String::from_utf8_lossy(&twice.stderr).contains("AlreadyVoted"));

    // Status: the block, Alice's spend and contribution, the proposal.
    let status = cli.ok(&alice, &["status", "--json"]);
    assert_eq!(status["coalition"]["tip"], 1);
    assert_eq!(status["blocks"][1]["epsilon"].as_f64().map(|e| (e - epsilon).abs() < 1e-6), Some(true), "{status}");
    // Alice's spend: her two declarations (the appended block's and the under-declared one, which
    // reached the chain) composed in RDP, at the budget's delta.
    let delta = PrivacySpend::DELTA_ONE / 10_000;
    let spent = rules::privacy_spent(&rdp::compose(&first, &third), delta).epsilon_real();
    assert!(spent > epsilon && spent < 20.0, "{spent} vs {epsilon}");
    let me = status["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] == format!("{:?}", Keypair::dev("Alice").unwrap().address()).as_str())
        .cloned()
        .unwrap();
    assert!((me["epsilon_spent"].as_f64().unwrap() - spent).abs() < 1e-6, "{me}");
    assert!(me["contribution"].as_i64().unwrap() > 0, "{me}");
    assert_eq!(status["proposals"][0]["ayes"], 1);
    // A member who pins its coalition refuses an API that serves another: nothing is read or
    // signed in to.
    for command in [&["status"][..], &["download", "--block", "1", "--out", &path("elsewhere.onnx")]] {
        let elsewhere =
            cli.run(&alice, &[&["--coalition", "0x0101010101010101010101010101010101010101"], command].concat());
        let said = String::from_utf8_lossy(&elsewhere.stderr);
        assert!(!elsewhere.status.success() && said.contains("serves coalition"), "{command:?}: {said}");
    }
    let pinned = cli.ok(&alice, &["--coalition", &coalition, "status", "--json"]);
    assert_eq!(pinned["coalition"]["tip"], 1);
    let table = cli.run(&alice, &["status"]);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("privacy budget epsilon 20"),
        "{}",
        String::from_utf8_lossy(&table.stdout)
    );

    // Download block 1's model (the hash is checked), then verify the audit log that recorded it.
    let got = cli.ok(&bob, &["download", "--json", "--block", "1", "--out", &path("block1.onnx")]);
    assert_eq!(got["hash"], round["candidate"]);
    let anchored = cli.ok(&bob, &["audit", "anchor", "--json"]);
    assert_eq!(anchored["index"], 0, "{anchored}");
    let verified = cli.ok(&bob, &["audit", "verify", "--json"]);
    assert!(verified["entries"].as_u64().unwrap() >= 4 && verified["anchors"] == 1, "{verified}");
    drop(oracles);
    node.stop().await;
}

/// A log without its terminal colours (`ESC [ ... m`).
fn without_colours(log: &str) -> String {
    let mut plain = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&d| d == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
}
