//! The members' API under measurement, against a dev node (markdown tables on stdout):
//!
//! 1. a 100 MB model (a valid MLP of the coalition's architecture) uploaded to the vault (model
//!    checks, hashing, encryption, storage, audit) and downloaded (decryption, hash check,
//!    streaming), against a plain copy of the same file on the same disk, side by side, five
//!    runs each, min / median / max;
//! 2. latency under a bounded load (wrk, Debian's package: 2 threads, 8 connections, three
//!    runs) of `GET /api/coalition` (8 s);
//! 3. a member's sign-in (challenge, signature, token) and download latencies, p50 / p99, from
//!    its own address (127.0.0.2), alone and while wrk floods the API with anonymous requests
//!    from 127.0.0.1, side by side, three runs each;
//! 4. the API's peak memory (VmHWM) while 32 members' 60 MiB uploads arrive at once, with the
//!    default `--concurrent-uploads 4` and with 32, side by side.
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
/// Seconds of each wrk run.
const READ_SECONDS: u32 = 8;
/// A member's sign-ins (each followed by a download) per run: within the API's 32 sign-ins per
/// account per challenge lifetime.
const SIGN_INS: usize = 30;
/// Uploads arriving at once, and their size.
const UPLOADS: usize = 32;
const UPLOAD_BYTES: usize = 60 << 20;

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
fn wrk(url: &str, seconds: u32) -> (f64, f64, f64, u64) {
    let mut command = std::process::Command::new("wrk");
    command.args(["-t2", "-c8", &format!("-d{seconds}s"), "--latency", url]);
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
    let node = Node::start(NodeConfig::dev_instant()).await;
    let (url, _) = coalition_api(&node, dir.path(), "api", &mlp(hidden, 0.0), |config| {
        config.vault.vault_max_bytes = 256 << 20;
        // The routes' own cost under load, not the per-address limit's (part 3 measures that).
        (config.rate_per_address, config.burst_per_address) = (1_000_000, 1_000_000);
    })
    .await;

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
    for _ in 0..WRK_RUNS {
        coalition_runs.push(wrk(&format!("{url}/api/coalition"), READ_SECONDS));
    }
    println!("\n### Latency under load (wrk: 2 threads, 8 connections; {WRK_RUNS} runs, min / median / max)\n");
    println!("| route | requests/s | p50 (ms) | p99 (ms) | non-2xx |");
    println!("|---|---:|---:|---:|---:|");
    let fmt = |(a, b, c): (f64, f64, f64)| format!("{a:.1} / {b:.1} / {c:.1}");
    let pick = |runs: &[(f64, f64, f64, u64)], f: fn(&(f64, f64, f64, u64)) -> f64| {
        spread(&mut runs.iter().map(f).collect::<Vec<_>>())
    };
    let errors: u64 = coalition_runs.iter().map(|r| r.3).sum();
    println!(
        "| `GET /api/coalition` | {} | {} | {} | {errors} |",
        show(pick(&coalition_runs, |r| r.0)),
        fmt(pick(&coalition_runs, |r| r.1)),
        fmt(pick(&coalition_runs, |r| r.2))
    );

    // 3. A member's sign-in and download, alone and under an anonymous flood, on a coalition of
    // small models (a download is a 4 kB model, not 100 MB).
    let small = mlp(16, 0.5);
    let (small_url, _) = coalition_api(&node, dir.path(), "small", &small, |config| {
        // Nonces are kept for a challenge's lifetime: 2 s, so that each run's 30 sign-ins fit.
        config.challenge_ttl = 2;
    })
    .await;
    let charlie = Keypair::dev("Charlie").unwrap();
    let session = ApiClient::sign_in(&small_url, &charlie).await.unwrap();
    let stored = session.upload_candidate(mlp(16, 0.7)).await.unwrap();
    let flood_url = format!("{small_url}/api/vault/objects/0x{}", "00".repeat(32));
    let (mut alone, mut flooded, mut floods) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..WRK_RUNS {
        alone.push(member_latencies(&small_url, &charlie, &stored.hash).await);
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let flood = {
            let flood_url = flood_url.clone();
            tokio::task::spawn_blocking(move || wrk(&flood_url, 6))
        };
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        flooded.push(member_latencies(&small_url, &charlie, &stored.hash).await);
        floods.push(flood.await.unwrap());
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    }
    println!(
        "\n### A member's sign-in and download from its own address, alone and under an anonymous flood \
         ({WRK_RUNS} runs of {SIGN_INS} each; ms, min / median / max over runs)\n"
    );
    println!(
        "| condition | sign-in p50 | sign-in p99 | download p50 | download p99 | flood requests/s | flood non-2xx |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, runs) in [("alone", &alone), ("under the flood", &flooded)] {
        let of = |f: fn(&Latencies) -> f64| fmt(spread(&mut runs.iter().map(f).collect::<Vec<_>>()));
        let (rate, refused) = if name == "alone" {
            ("-".to_string(), "-".to_string())
        } else {
            (show(pick(&floods, |r| r.0)), floods.iter().map(|r| r.3).sum::<u64>().to_string())
        };
        println!(
            "| {name} | {} | {} | {} | {} | {rate} | {refused} |",
            of(|l| l.sign_in.0),
            of(|l| l.sign_in.1),
            of(|l| l.download.0),
            of(|l| l.download.1)
        );
    }

    // 4. Peak memory while 32 uploads of 60 MiB arrive at once.
    let big = mlp(UPLOAD_BYTES / 132, 0.25);
    let mut peaks = Vec::new();
    for uploads in [4u16, 32] {
        let (big_url, _) = coalition_api(&node, dir.path(), &format!("uploads-{uploads}"), &big, |config| {
            config.concurrent_uploads = uploads;
            config.vault.vault_max_bytes = 256 << 20;
        })
        .await;
        // One upload per member at a time: 32 members upload at once.
        let mut tokens = Vec::new();
        for uploader in uploaders() {
            tokens.push(ApiClient::sign_in(&big_url, &uploader).await.unwrap().token().await.unwrap());
        }
        let model = bytes::Bytes::from(mlp(UPLOAD_BYTES / 132, 0.3));
        let before = resident_kib("VmRSS");
        std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak (Linux)");
        let started = Instant::now();
        let sends = tokens.into_iter().map(|token| {
            let (model, url) = (model.clone(), big_url.clone());
            async move {
                reqwest::Client::new()
                    .post(format!("{url}/api/vault/candidates"))
                    .bearer_auth(token)
                    .body(model)
                    .send()
                    .await
                    .map(|r| r.status())
            }
        });
        let statuses = futures::future::join_all(sends).await;
        let seconds = started.elapsed().as_secs_f64();
        let accepted = statuses.iter().filter(|s| matches!(s, Ok(s) if s.is_success())).count();
        peaks.push((uploads, resident_kib("VmHWM").saturating_sub(before), seconds, accepted));
    }
    println!(
        "\n### Peak memory of the API while {UPLOADS} uploads of {} MiB arrive at once (one run each)\n",
        model_mib(&big)
    );
    println!("| `--concurrent-uploads` | peak RSS over the idle API (MiB) | seconds | uploads stored |");
    println!("|---:|---:|---:|---:|");
    for (uploads, peak, seconds, accepted) in &peaks {
        println!("| {uploads} | {} | {seconds:.1} | {accepted} / {UPLOADS} |", peak / 1024);
    }
    if let [(_, capped, ..), (_, uncapped, ..)] = peaks.as_slice() {
        println!("\nUncapped over capped peak: {:.1}x", *uncapped as f64 / (*capped).max(1) as f64);
    }
    drop(node);
}

/// The members who upload at once in the memory measure.
fn uploaders() -> Vec<Keypair> {
    (0..UPLOADS).map(|i| Keypair::from_uri(&format!("//Uploader{i}")).unwrap()).collect()
}

fn model_mib(model: &[u8]) -> usize {
    model.len() >> 20
}

/// A line of `/proc/self/status`, KiB.
fn resident_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| {
            line.strip_prefix(field)?.trim_start_matches(':').trim().strip_suffix("kB")?.trim().parse().ok()
        })
        .unwrap_or(0)
}

/// p50 and p99 of a member's sign-ins and of its downloads, ms.
struct Latencies {
    sign_in: (f64, f64),
    download: (f64, f64),
}

fn percentiles(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// `SIGN_INS` sign-ins of `key`, each followed by a download of `hash`, from 127.0.0.2 (its
/// own rate-limit bucket, apart from a flood from 127.0.0.1).
async fn member_latencies(url: &str, key: &Keypair, hash: &str) -> Latencies {
    let http = reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 2])).build().unwrap();
    let account = key.account_id().to_string();
    let (mut sign_ins, mut downloads) = (Vec::new(), Vec::new());
    for _ in 0..SIGN_INS {
        let started = Instant::now();
        let answer = post(&http, &format!("{url}/api/auth/challenge"), serde_json::json!({ "account": account })).await;
        let challenge = answer["challenge"].as_str().expect("a challenge").to_string();
        let signature = format!("0x{}", hex::encode(key.sign(&signed_bytes(&challenge))));
        let body = serde_json::json!({ "account": account, "challenge": challenge, "signature": signature });
        let token = post(&http, &format!("{url}/api/auth/token"), body).await;
        sign_ins.push(started.elapsed().as_secs_f64() * 1e3);
        let token = token["token"].as_str().expect("a token").to_string();
        let started = Instant::now();
        let response = http.get(format!("{url}/api/vault/objects/{hash}")).bearer_auth(token).send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response.bytes().await.unwrap();
        downloads.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Latencies { sign_in: percentiles(&mut sign_ins), download: percentiles(&mut downloads) }
}

/// `body` posted to `url`, and the JSON answer.
async fn post(http: &reqwest::Client, url: &str, body: serde_json::Value) -> serde_json::Value {
    http.post(url).json(&body).send().await.unwrap().json().await.unwrap()
}

/// A coalition whose genesis model is `genesis_model`, deployed on `node`, and an API for it
/// (its configuration changed by `tweak`), serving in this process: its URL and the coalition.
async fn coalition_api(
    node: &Node,
    dir: &Path,
    name: &str,
    genesis_model: &[u8],
    tweak: impl FnOnce(&mut tclearn_api::config::Config),
) -> (String, Coalition) {
    let architecture = model::architecture_hash(&onnx_rs::parse(genesis_model).unwrap());
    let declaration = serde_json::json!({
        "metric": "accuracy",
        "input": {"dims": [null, 30]},
        "output": {"dims": [null, 2]},
        "architecture_hash": Hash(architecture),
        "max_model_bytes": 256u64 << 20,
    });
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, declaration.to_string()).unwrap();
    let client = node.client().await;
    let alice = Keypair::dev("Alice").unwrap();
    let named = ["Alice", "Bob", "Charlie", "Dave"].iter().map(|n| Keypair::dev(n).unwrap().address());
    let founders = named.chain(uploaders().iter().map(Keypair::address)).collect();
    let mut genesis = test_genesis(2, founders);
    genesis.architecture_hash = H256(architecture);
    genesis.parameter_hash = H256(model_hash(genesis_model));
    let coalition = Coalition::deploy(&client, &alice, &artifact("coalition"), &genesis).await.unwrap();
    let mut config = common::base_config(node, coalition.address, path, dir.join(name));
    // The defaults, but for the per-account rate: the member measured here makes hundreds of
    // requests a minute on purpose.
    (config.rate_per_address, config.burst_per_address) = (50, 200);
    (config.rate_per_account, config.burst_per_account) = (1000, 1000);
    tweak(&mut config);
    let server = tclearn_api::bind(config).await.unwrap();
    let url = format!("http://{}", server.local_addr());
    tokio::spawn(server.serve(std::future::pending()));
    (url, coalition)
}
