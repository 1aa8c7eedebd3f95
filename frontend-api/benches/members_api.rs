//! The members' API under measurement, against a dev node (markdown tables on stdout):
//!
//! 1. a 100 MB model (a valid MLP of the coalition's architecture) uploaded to the vault (model
//!    checks, hashing, encryption, storage, audit) and downloaded (decryption, hash check,
//!    streaming), against a plain copy of the same file on the same disk, side by side, five
//!    runs each, min / median / max;
//! 2. latency under a bounded load (wrk, Debian's package: 2 threads, 8 connections, three
//!    runs) of `GET /api/coalition` (8 s) and of token issuance (`POST /api/auth/token`, 1 s,
//!    each request with its own challenge, signed beforehand).
//!
//! Run by `scripts/bench.sh` (`cargo bench --workspace --bench members_api`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::{path::Path, time::Instant};
use tclearn_api_client::{client::ApiClient, sign_in::signed_bytes};
use tclearn_client::{coalition::Coalition, Keypair, H256};
use tclearn_e2e::{artifact, test_genesis, Node, NodeConfig};
use tclearn_model::architectures::{Dense, Mlp};
use tclearn_model::checks as model;
use tclearn_model::genesis::Hash;
use tclearn_model::hash::model_hash;

const RUNS: usize = 5;
const WRK_RUNS: usize = 3;
const TOKENS_PER_RUN: usize = 40_000;
/// Seconds of each wrk run: 8 for reads, 1 for token issuance (each request spends one of
/// the bodies signed beforehand, and the API keeps at most 100,000 challenges).
const READ_SECONDS: u32 = 8;
const TOKEN_SECONDS: u32 = 1;

/// min / median / max of `values`.
fn spread(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(|a, b| a.total_cmp(b));
    (values[0], values[values.len() / 2], values[values.len() - 1])
}

fn show((low, middle, high): (f64, f64, f64)) -> String {
    format!("{low:.0} / {middle:.0} / {high:.0}")
}

/// An MLP 30 → `hidden` → 2 with weights of a given sign pattern: its file is about 132 ×
/// `hidden` bytes.
fn mlp(hidden: usize, seed: f32) -> Vec<u8> {
    let dense = |inputs: usize, outputs: usize| Dense {
        inputs,
        outputs,
        weights: (0..inputs * outputs).map(|i| ((i % 1013) as f32 * 0.001 + seed).sin() * 0.1).collect(),
        bias: vec![0.0; outputs],
    };
    Mlp { hidden: Some(dense(30, hidden)), output: dense(hidden, 2) }.to_onnx()
}

/// wrk's report: (requests per second, p50 ms, p99 ms, non-2xx responses).
fn wrk(url: &str, seconds: u32, script: Option<(&Path, &Path)>) -> (f64, f64, f64, u64) {
    let mut command = std::process::Command::new("wrk");
    command.args(["-t2", "-c8", &format!("-d{seconds}s"), "--latency"]);
    if let Some((lua, bodies)) = script {
        command.arg("-s").arg(lua).arg(url).arg("--").arg(bodies).arg("2");
    } else {
        command.arg(url);
    }
    let output = command.output().expect("wrk (scripts/bench.sh installs it)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "wrk: {text}{}", String::from_utf8_lossy(&output.stderr));
    let ms = |field: &str| -> f64 {
        let value = field.trim();
        let (number, unit) = value.split_at(value.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(value.len()));
        let number: f64 = number.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => number / 1000.0,
            "ms" => number,
            "s" => number * 1000.0,
            _ => f64::NAN,
        }
    };
    let line = |prefix: &str| {
        text.lines().find(|l| l.trim_start().starts_with(prefix)).map(|l| l.trim_start()[prefix.len()..].to_string())
    };
    let rps = line("Requests/sec:").and_then(|v| v.trim().parse().ok()).unwrap_or(f64::NAN);
    let p50 = line("50%").map(|v| ms(&v)).unwrap_or(f64::NAN);
    let p99 = line("99%").map(|v| ms(&v)).unwrap_or(f64::NAN);
    let errors = line("Non-2xx or 3xx responses:").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    (rps, p50, p99, errors)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tclearn_api_client::install_crypto_provider();
    // The API's warnings (a chain read that failed under load, ...) on stderr.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    let dir = tempfile::tempdir_in(
        std::env::var_os("TCLEARN_BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into_os_string()),
    )
    .unwrap();
    let hidden = 757_000;
    let genesis_model = mlp(hidden, 0.0);
    let architecture = model::architecture_hash(&onnx_rs::parse(&genesis_model).unwrap());
    let declaration = serde_json::json!({
        "metric": "accuracy",
        "input": {"dims": [null, 30]},
        "output": {"dims": [null, 2]},
        "architecture_hash": Hash(architecture),
        "max_model_bytes": 256u64 << 20,
    });
    std::fs::write(dir.path().join("genesis.json"), declaration.to_string()).unwrap();

    let node = Node::start(NodeConfig::dev_instant()).await;
    let client = node.client().await;
    let alice = Keypair::dev("Alice").unwrap();
    let founders = ["Alice", "Bob", "Charlie", "Dave"].iter().map(|n| Keypair::dev(n).unwrap().address()).collect();
    let mut genesis = test_genesis(2, founders);
    genesis.architecture_hash = H256(architecture);
    genesis.parameter_hash = H256(model_hash(&genesis_model));
    let coalition = Coalition::deploy(&client, &alice, &artifact("coalition"), &genesis).await.unwrap();
    let mut config =
        common::base_config(&node, coalition.address, dir.path().join("genesis.json"), dir.path().join("api"));
    // Challenges and tokens expire within seconds, so that three runs of issuance stay within
    // the API's bound of 100,000 of each (expired ones are dropped when it is reached).
    (config.vault_max_bytes, config.challenge_ttl, config.token_ttl) = (256 << 20, 30, 5);
    let server = tclearn_api::bind(config).await.unwrap();
    let url = format!("http://{}", server.local_addr());
    tokio::spawn(server.serve(std::future::pending()));

    // 1. Throughput: a fresh 100 MB model per run (the vault writes each object once).
    let bob = Keypair::dev("Bob").unwrap();
    let (mut copy, mut synced, mut upload, mut download) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut size = 0;
    for run in 0..RUNS {
        let model = mlp(hidden, run as f32 + 1.0);
        size = model.len();
        let source = dir.path().join("model.onnx");
        std::fs::write(&source, &model).unwrap();
        let mb = model.len() as f64 / 1e6;

        let started = Instant::now();
        std::fs::copy(&source, dir.path().join("copy.onnx")).unwrap();
        copy.push(mb / started.elapsed().as_secs_f64());
        std::fs::remove_file(dir.path().join("copy.onnx")).unwrap();
        let started = Instant::now();
        std::fs::copy(&source, dir.path().join("copy.onnx")).unwrap();
        std::fs::File::open(dir.path().join("copy.onnx")).unwrap().sync_all().unwrap();
        synced.push(mb / started.elapsed().as_secs_f64());
        std::fs::remove_file(dir.path().join("copy.onnx")).unwrap();

        // Tokens last 5 s here (see below): a fresh sign-in per run.
        let session = ApiClient::sign_in(&url, &bob).await.unwrap();
        let started = Instant::now();
        let stored = session.upload_candidate(model.clone()).await.unwrap();
        upload.push(mb / started.elapsed().as_secs_f64());

        let started = Instant::now();
        let bytes = session.download(&stored.hash).await.unwrap();
        download.push(mb / started.elapsed().as_secs_f64());
        assert_eq!(model_hash(&bytes), model_hash(&model));
    }
    let (copy, synced, upload, download) =
        (spread(&mut copy), spread(&mut synced), spread(&mut upload), spread(&mut download));
    println!("\n### Vault throughput, a {:.1} MB model ({RUNS} runs, MB/s min / median / max)\n", size as f64 / 1e6);
    println!(
        "| file copy | file copy + fsync | upload | download | copy / upload | copy / download | copy+fsync / upload |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
        show(copy),
        show(synced),
        show(upload),
        show(download),
        copy.1 / upload.1,
        copy.1 / download.1,
        synced.1 / upload.1
    );

    // 2. Latency under load.
    let mut coalition_runs = Vec::new();
    let mut token_runs = Vec::new();
    let lua = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/token.lua");
    let http = reqwest::Client::new();
    let charlie = Keypair::dev("Charlie").unwrap();
    for _ in 0..WRK_RUNS {
        coalition_runs.push(wrk(&format!("{url}/api/coalition"), READ_SECONDS, None));
        // Challenges asked for beforehand, eight at a time, and signed.
        let account = charlie.account_id().to_string();
        let ask = |_| {
            let (http, url, account) = (http.clone(), url.clone(), account.clone());
            async move {
                let answer: serde_json::Value = http
                    .post(format!("{url}/api/auth/challenge"))
                    .json(&serde_json::json!({ "account": account }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                answer["challenge"].as_str().unwrap().to_string()
            }
        };
        use futures::StreamExt;
        let challenges: Vec<String> =
            futures::stream::iter(0..TOKENS_PER_RUN).map(ask).buffer_unordered(8).collect().await;
        let bodies: String = challenges
            .iter()
            .map(|challenge| {
                let signature = format!("0x{}", hex::encode(charlie.sign(&signed_bytes(challenge))));
                format!(
                    "{}\n",
                    serde_json::json!({ "account": account, "challenge": challenge, "signature": signature })
                )
            })
            .collect();
        let path = dir.path().join("tokens.txt");
        std::fs::write(&path, bodies).unwrap();
        let run = wrk(&url, TOKEN_SECONDS, Some((&lua, &path)));
        assert!(run.0 * f64::from(TOKEN_SECONDS) < TOKENS_PER_RUN as f64, "more requests than bodies: {:.0}/s", run.0);
        token_runs.push(run);
    }
    println!("\n### Latency under load (wrk: 2 threads, 8 connections; {WRK_RUNS} runs, min / median / max)\n");
    println!("| route | requests/s | p50 (ms) | p99 (ms) | non-2xx |");
    println!("|---|---:|---:|---:|---:|");
    for (name, runs) in [("GET /api/coalition", &coalition_runs), ("POST /api/auth/token", &token_runs)] {
        let pick = |f: fn(&(f64, f64, f64, u64)) -> f64| spread(&mut runs.iter().map(f).collect::<Vec<_>>());
        let fmt = |(a, b, c): (f64, f64, f64)| format!("{a:.1} / {b:.1} / {c:.1}");
        let errors: u64 = runs.iter().map(|r| r.3).sum();
        println!("| `{name}` | {} | {} | {} | {errors} |", show(pick(|r| r.0)), fmt(pick(|r| r.1)), fmt(pick(|r| r.2)));
    }
    drop(node);
}
