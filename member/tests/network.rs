//! The coalition on a real network: four validators of tclearn-node on the `local` chain (Aura +
//! GRANDPA), spawned by zombienet's native provider, each with its own oracle connected to its
//! own node, the members' API and vault, the coalition founded through `tclearn`.
//!
//! 1. A round completes and its block is finalized on every node.
//! 2. One validator's node is killed mid-round: the round still completes, and the three others
//!    keep finalizing.
//!
//! zombienet is `zombienet/node_modules/.bin/zombienet` (`scripts/setup.sh` installs it).

mod common;

use common::breast_cancer_rows;
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use tclearn_client::{Client, Keypair};
use tclearn_e2e::{artifacts_dir, free_port, node_binary, MembersApi, Oracle};

const NAMES: [&str; 4] = ["alice", "bob", "charlie", "dave"];

/// The network zombienet spawned; zombienet and its nodes are killed when dropped.
struct Network {
    zombienet: std::process::Child,
    dir: PathBuf,
    rpc: Vec<u16>,
}

impl Network {
    fn spawn(dir: &Path) -> Self {
        let zombienet = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../zombienet/node_modules/.bin/zombienet");
        assert!(zombienet.exists(), "{}: run scripts/setup.sh", zombienet.display());
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(node_binary(), bin.join("tclearn-node")).unwrap();
        let rpc: Vec<u16> = NAMES.iter().map(|_| free_port()).collect();
        let mut toml = String::from("[settings]\ntimeout = 300\nprovider = \"native\"\n\n[relaychain]\ndefault_command = \"tclearn-node\"\nchain = \"local\"\n");
        for (name, port) in NAMES.iter().zip(&rpc) {
            toml.push_str(&format!("\n[[relaychain.nodes]]\nname = \"{name}\"\nvalidator = true\nrpc_port = {port}\n"));
        }
        std::fs::write(dir.join("network.toml"), toml).unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let zombienet = Command::new(zombienet)
            .args(["-p", "native", "-l", "text", "-f", "-d"])
            .arg(dir.join("zombie"))
            .arg("spawn")
            .arg(dir.join("network.toml"))
            .env("PATH", path)
            .stdout(std::fs::File::create(dir.join("zombienet.log")).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("zombienet runs");
        Self { zombienet, dir: dir.to_path_buf(), rpc }
    }

    fn url(&self, node: usize) -> String {
        format!("ws://127.0.0.1:{}", self.rpc[node])
    }

    /// The OS process of node `name`.
    fn pid(&self, name: &str) -> Option<u32> {
        let out = Command::new("pgrep").args(["-f", &format!("{}/zombie/{name}", self.dir.display())]).output().ok()?;
        // The node itself, not zombienet's wrapper script around it.
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).find(|pid: &u32| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe.to_string_lossy().contains("tclearn-node"))
        })
    }

    fn kill(&self, name: &str) {
        let pid = self.pid(name).unwrap_or_else(|| panic!("{name}'s node is not running"));
        assert!(Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
    }

    fn log_tail(&self, name: &str) -> String {
        let log = std::fs::read_to_string(self.dir.join("zombie").join(format!("{name}.log"))).unwrap_or_default();
        log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = self.zombienet.kill();
        let _ = self.zombienet.wait();
        for name in NAMES {
            if let Some(pid) = self.pid(name) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

fn tclearn(env: &[(String, String)], key: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tclearn")).args(args).envs(env.iter().cloned()).env("TCLEARN_KEY_FILE", key).output().unwrap()
}

fn ok(env: &[(String, String)], key: &Path, args: &[&str]) -> serde_json::Value {
    let out = tclearn(env, key, args);
    assert!(out.status.success(), "tclearn {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

async fn finalized(url: &str) -> Option<(u64, Client)> {
    let client = Client::connect(url).await.ok()?;
    Some((client.finalized_number().await.ok()?, client))
}

/// Wait until every node in `nodes` has finalized at least `height`; their hashes there agree.
async fn finalized_everywhere(network: &Network, nodes: &[usize], height: u64, patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        let mut hashes = Vec::new();
        for &node in nodes {
            if let Some((number, client)) = finalized(&network.url(node)).await {
                if number >= height {
                    hashes.push(client.block_hash(height).await.unwrap());
                }
            }
        }
        if hashes.len() == nodes.len() {
            assert!(hashes.windows(2).all(|pair| pair[0] == pair[1]), "forked finality at {height}: {hashes:?}");
            return;
        }
        assert!(Instant::now() < deadline, "block {height} not finalized on all of {nodes:?}\n{}", network.log_tail("alice"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_complete_and_finalize_on_four_validators_and_survive_a_killed_node() {
    tclearn_api::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let started = Instant::now();
    let network = Network::spawn(d);
    for (node, name) in NAMES.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(120);
        while finalized(&network.url(node)).await.is_none_or(|(n, _)| n < 1) {
            assert!(Instant::now() < deadline, "{name}'s node did not finalize a block in 120 s\n{}", network.log_tail(name));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let up = started.elapsed();

    // The data and keys: G every fifth row, each validator's L 25 rows of its own, Alice's rows.
    let path = |name: &str| d.join(name).display().to_string();
    std::fs::write(d.join("g.csv"), breast_cancer_rows((0..569).filter(|r| r % 5 == 0), false)).unwrap();
    for (v, name) in NAMES.iter().enumerate() {
        std::fs::write(d.join(format!("l-{}.csv", capitalised(name))), breast_cancer_rows((0..569).filter(|r| r % 5 == 1).skip(25 * v).take(25), false)).unwrap();
    }
    std::fs::write(d.join("data.csv"), breast_cancer_rows((0..569).filter(|r| r % 5 >= 2), true)).unwrap();
    let mut env: Vec<(String, String)> =
        vec![("TCLEARN_RPC".into(), network.url(0)), ("TCLEARN_ARTIFACTS".into(), artifacts_dir().display().to_string())];
    let keys: Vec<PathBuf> = NAMES.iter().map(|n| d.join(format!("{n}.key"))).collect();
    for (name, key) in NAMES.iter().zip(&keys) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tclearn")).args(["key", "import"]).env("TCLEARN_KEY_FILE", key).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        writeln!(child.stdin.take().unwrap(), "//{}", capitalised(name)).unwrap();
        assert!(child.wait().unwrap().success());
    }
    let founders = NAMES[1..].iter().map(|n| Keypair::dev(&capitalised(n)).unwrap().account_id().to_string()).collect::<Vec<_>>().join(",");
    ok(&env, &keys[0], &["model", "init", "--data", &path("data.csv"), "--out", &path("genesis.onnx")]);
    let founded = ok(&env, &keys[0], &[
        "found", "--json", "--model", &path("genesis.onnx"), "--test-set", &path("g.csv"), "--founders", &founders,
        "--validators-per-round", "3", "--phase-blocks", "20", "--declaration", &path("genesis.json"),
    ]);
    let coalition = founded["coalition"].as_str().unwrap().to_string();
    let api = MembersApi::start_at(&network.url(0), coalition.parse().unwrap(), &d.join("genesis.json")).await;
    env.push(("TCLEARN_API_URL".into(), api.url.clone()));
    ok(&env, &keys[0], &["upload", &path("genesis.onnx")]);
    let oracles: Vec<Oracle> = NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let oracle_env: Vec<(String, String)> = [
                ("TCLEARN_RPC", network.url(i)),
                ("TCLEARN_COALITION", coalition.clone()),
                ("TCLEARN_COALITION_METADATA", artifacts_dir().join("coalition.json").display().to_string()),
                ("TCLEARN_GENESIS", path("genesis.json")),
                ("TCLEARN_GLOBAL_TEST_SET", path("g.csv")),
                ("TCLEARN_VAULT_API", api.url.clone()),
                ("TCLEARN_POLL_MS", "300".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            Oracle::start(&oracle_env, &capitalised(name), d, &[])
        })
        .collect();
    let logs = || oracles.iter().map(|o| o.log().lines().rev().take(8).collect::<Vec<_>>().join("\n")).collect::<Vec<_>>().join("\n---\n");

    // 1. Alice proposes; the round is appended, and every node finalizes the block it is in.
    let round_started = Instant::now();
    ok(&env, &keys[0], &["train", "--data", &path("data.csv"), "--out", &path("r1"), "--max-samples", "40", "--seed", "1"]);
    let out = tclearn(&env, &keys[0], &["propose", "--json", "--candidate", &path("r1"), "--wait-secs", "300"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), logs());
    let round: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(round["phase"], "appended", "{round}");
    let best = Client::connect(&network.url(0)).await.unwrap().best_number().await.unwrap();
    finalized_everywhere(&network, &[0, 1, 2, 3], best, Duration::from_secs(120)).await;
    let first = round_started.elapsed();

    // 2. Bob proposes; once the round is drawn, Dave's node is killed. The round completes with
    //    the others (Dave's oracle, cut off, casts no vote), and three of four keep finalizing.
    let second_started = Instant::now();
    ok(&env, &keys[1], &["train", "--data", &path("data.csv"), "--out", &path("r2"), "--max-samples", "40", "--seed", "2"]);
    let mut propose = tokio::process::Command::new(env!("CARGO_BIN_EXE_tclearn"))
        .args(["propose", "--json", "--candidate", &path("r2"), "--wait-secs", "300"])
        .envs(env.iter().cloned())
        .env("TCLEARN_KEY_FILE", &keys[1])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let current: serde_json::Value = reqwest::get(format!("{}/api/rounds/current", api.url)).await.unwrap().json().await.unwrap();
        if current["id"] == 1 && current["phase"] != "drawing" {
            break;
        }
        assert!(Instant::now() < deadline, "round 1 was not drawn\n{}", logs());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    network.kill("dave");
    let out = tokio::time::timeout(Duration::from_secs(320), async {
        let mut stdout = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(propose.stdout.as_mut().unwrap(), &mut stdout).await.unwrap();
        (propose.wait().await.unwrap(), stdout)
    })
    .await
    .expect("the round ends");
    assert!(out.0.success(), "{}", logs());
    let round: serde_json::Value = serde_json::from_slice(&out.1).unwrap();
    assert_eq!(round["phase"], "appended", "{round}");
    let best = Client::connect(&network.url(0)).await.unwrap().best_number().await.unwrap();
    finalized_everywhere(&network, &[0, 1, 2], best, Duration::from_secs(120)).await;
    let second = second_started.elapsed();
    println!("network up in {up:?}; round 0 appended and finalized everywhere in {first:?}; round 1 with a node killed in {second:?}");
    drop(oracles);
}

fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}
