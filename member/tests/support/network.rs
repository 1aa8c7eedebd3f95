//! A coalition on a real network, for the network tier's tests and the round-latency benchmark:
//! four validators of tclearn-node on the `local` chain (BABE + GRANDPA) spawned by zombienet's
//! native provider, each with its own oracle (own key, own local test set) connected to its own
//! node, the members' API and vault, and the coalition founded through `tclearn`.
//!
//! The faults are real: a node is killed with SIGKILL and started again from the command line
//! zombienet gave it; a node is cut off from its peers by an nftables rule on loopback
//! ([`Partition`]); an oracle is killed and restarted on its journal.
//!
//! zombienet is `zombienet/node_modules/.bin/zombienet` and nft comes from Debian's nftables
//! (`scripts/setup.sh` installs both).
#![allow(dead_code)] // The tests and the benchmark each use their own part.

use crate::common::{breast_cancer, breast_cancer_rows};
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};
use tclearn_client::{coalition::Coalition, Client, Keypair, H160};
use tclearn_e2e::{artifact, artifacts_dir, free_port, last_lines, node_binary, MembersApi, Oracle};

/// The validators, in zombienet's order; node `i` is `NAMES[i]`'s.
pub const NAMES: [&str; 4] = ["alice", "bob", "charlie", "dave"];

/// `alice` → `Alice`: the dev account's name.
pub fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// The network zombienet spawned. zombienet, its nodes and the nodes started again are killed
/// when dropped.
pub struct Network {
    zombienet: std::process::Child,
    dir: PathBuf,
    rpc: Vec<u16>,
    /// Nodes started again by [`Network::restart`].
    restarted: Mutex<Vec<std::process::Child>>,
}

/// A node killed by [`Network::kill`]: what starts it again.
pub struct Stopped {
    name: String,
    argv: Vec<String>,
}

impl Network {
    pub fn spawn(dir: &Path) -> Self {
        let zombienet = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../zombienet/node_modules/.bin/zombienet");
        assert!(zombienet.exists(), "{}: run scripts/setup.sh", zombienet.display());
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(node_binary(), bin.join("tclearn-node")).unwrap();
        let rpc: Vec<u16> = NAMES.iter().map(|_| free_port()).collect();
        let mut toml = String::from("[settings]\ntimeout = 300\nprovider = \"native\"\n\n[relaychain]\ndefault_command = \"tclearn-node\"\nchain = \"local\"\n");
        for (name, port) in NAMES.iter().zip(&rpc) {
            // Every port from our allocator: zombienet's own picks come from the kernel's
            // ephemeral range, where another socket can take them before the node binds.
            let (p2p, prometheus) = (free_port(), free_port());
            toml.push_str(&format!(
                "\n[[relaychain.nodes]]\nname = \"{name}\"\nvalidator = true\nrpc_port = {port}\np2p_port = {p2p}\nprometheus_port = {prometheus}\n"
            ));
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
        Self { zombienet, dir: dir.to_path_buf(), rpc, restarted: Mutex::new(Vec::new()) }
    }

    pub fn url(&self, node: usize) -> String {
        format!("ws://127.0.0.1:{}", self.rpc[node])
    }

    pub fn rpc_port(&self, node: usize) -> u16 {
        self.rpc[node]
    }

    /// Wait until every node has finalized a block.
    pub async fn wait_up(&self, patience: Duration) {
        for (node, name) in NAMES.iter().enumerate() {
            let deadline = Instant::now() + patience;
            while finalized(&self.url(node)).await.is_none_or(|(n, _)| n < 1) {
                assert!(
                    Instant::now() < deadline,
                    "{name}'s node did not finalize a block in {patience:?}\n{}",
                    self.log_tail(name)
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    /// The OS process of node `name`.
    pub fn pid(&self, name: &str) -> Option<u32> {
        let out =
            Command::new("pgrep").args(["-f", &format!("{}/zombie/{name}/", self.dir.display())]).output().ok()?;
        // The node itself, not zombienet's wrapper script around it.
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).find(|pid: &u32| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|exe| exe.to_string_lossy().contains("tclearn-node"))
        })
    }

    /// Kill node `name` with SIGKILL (as a host that loses power); returns what starts it again.
    pub fn kill(&self, name: &str) -> Stopped {
        let pid = self.pid(name).unwrap_or_else(|| panic!("{name}'s node is not running"));
        let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap()
            .split(|b| *b == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        assert!(Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() && self.pid(name) == Some(pid) {
            assert!(Instant::now() < deadline, "{name}'s node outlived SIGKILL");
            std::thread::sleep(Duration::from_millis(50));
        }
        Stopped { name: name.to_string(), argv }
    }

    /// Start a killed node again with its command line, database and keys, appending to its
    /// log. With `group`, it runs in that OS group: what a [`Partition`] tells its packets by.
    pub fn restart(&self, stopped: Stopped, group: Option<u32>) {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("zombie").join(format!("{}.log", stopped.name)))
            .unwrap();
        let mut command = match group {
            Some(gid) => {
                let mut command = Command::new("setpriv");
                command.args([format!("--regid={gid}"), "--clear-groups".into()]).arg(node_binary());
                command
            }
            None => Command::new(node_binary()),
        };
        let child = command
            .args(&stopped.argv[1..])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the node starts again");
        self.restarted.lock().unwrap().push(child);
    }

    /// Every node's best and finalized heights and the tail of its log: what a failed wait
    /// prints.
    pub async fn report(&self) -> String {
        let mut report = String::new();
        for (node, name) in NAMES.iter().enumerate() {
            let heights = match tokio::time::timeout(Duration::from_secs(5), Client::connect(&self.url(node))).await {
                Ok(Ok(client)) => {
                    format!("best {:?}, finalized {:?}", client.best_number().await, client.finalized_number().await)
                }
                Ok(Err(e)) => format!("no RPC: {e}"),
                Err(_) => "no RPC answer in 5 s".into(),
            };
            report.push_str(&format!("--- {name} ({heights}) ---\n{}\n", self.log_tail(name)));
        }
        report
    }

    pub fn log_tail(&self, name: &str) -> String {
        last_lines(
            &std::fs::read_to_string(self.dir.join("zombie").join(format!("{name}.log"))).unwrap_or_default(),
            40,
        )
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
        for child in self.restarted.lock().unwrap().iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A node cut off from its peers at once, in both directions, as a cable cut would: an nftables
/// table on loopback that drops every packet of the TCP connections of the processes of OS
/// group `group`, except those of its RPC port (its oracle still reaches it). A connection is
/// marked (conntrack) when the node sends on it, or when a peer sends to one of the ports the
/// node's sockets had at the cut: so a peer's block announcement cannot reach the node after the
/// cut, and the node sends no request that would then time out (a timed-out request makes the
/// node's sync back off that peer for 60 s after the heal, see docs/network.md). Dropping the
/// partition deletes the table: the network heals.
pub struct Partition {
    table: String,
}

impl Partition {
    pub fn cut(group: u32, rpc_port: u16) -> Self {
        let table = format!("tclearn_partition_{}", std::process::id());
        let ports: Vec<String> =
            group_tcp_ports(group).into_iter().filter(|port| *port != rpc_port).map(|port| port.to_string()).collect();
        assert!(!ports.is_empty(), "no TCP socket of OS group {group}: is the node running in it?");
        let rules = format!(
            "table inet {table} {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n    \
             oifname \"lo\" meta skgid {group} tcp sport != {rpc_port} ct mark set 0x7a\n    \
             oifname \"lo\" tcp dport {{ {} }} ct mark set 0x7a\n    \
             oifname \"lo\" ct mark 0x7a drop\n  }}\n}}\n",
            ports.join(", ")
        );
        let mut nft = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft (scripts/setup.sh installs nftables)");
        nft.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
        assert!(nft.wait().unwrap().success(), "nft refused the partition's rules:\n{rules}");
        Self { table }
    }
}

/// What TCP's retransmission timers of the connections of OS group `group` stand at (`ss -ti`):
/// each connection's local port, retransmission timeout (ms) and backoff (how many times the
/// timeout doubled). A connection that sent during a cut waits its timeout out before it sends
/// again after the heal. Empty if `ss` is missing.
pub fn tcp_backoff(group: u32) -> Vec<(u16, u64, u32)> {
    let ports = group_tcp_ports(group);
    let Ok(out) = Command::new("ss").args(["-tinH", "state", "established"]).output() else { return Vec::new() };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut found = Vec::new();
    let mut local = None;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            // "0 0 127.0.0.1:30333 127.0.0.1:45678": the connection; its details follow.
            local = line.split_whitespace().nth(2).and_then(|a| a.rsplit(':').next()?.parse::<u16>().ok());
            continue;
        }
        let Some(port) = local.take().filter(|p| ports.contains(p)) else { continue };
        let field = |name: &str| line.split_whitespace().find_map(|f| f.strip_prefix(name)?.parse::<f64>().ok());
        found.push((port, field("rto:").unwrap_or(0.0) as u64, field("backoff:").unwrap_or(0.0) as u32));
    }
    found
}

/// The local ports of the TCP sockets (listening or connected) of every process whose effective
/// OS group is `group`: its open sockets' inodes (`/proc/<pid>/fd`), looked up in
/// `/proc/<pid>/net/tcp` and `tcp6`.
fn group_tcp_ports(group: u32) -> std::collections::BTreeSet<u16> {
    let mut ports = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let proc_dir = entry.path();
        let Ok(status) = std::fs::read_to_string(proc_dir.join("status")) else { continue };
        let effective_gid = status
            .lines()
            .find_map(|line| line.strip_prefix("Gid:"))
            .and_then(|gids| gids.split_whitespace().nth(1))
            .and_then(|gid| gid.parse::<u32>().ok());
        if effective_gid != Some(group) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) else { continue };
        let inodes: std::collections::HashSet<String> = fds
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter_map(|link| {
                let link = link.to_string_lossy().into_owned();
                Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
            })
            .collect();
        for table in ["net/tcp", "net/tcp6"] {
            let Ok(sockets) = std::fs::read_to_string(proc_dir.join(table)) else { continue };
            for line in sockets.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (Some(local), Some(inode)) = (fields.get(1), fields.get(9)) else { continue };
                if !inodes.contains(*inode) {
                    continue;
                }
                if let Some(port) = local.rsplit(':').next().and_then(|hex| u16::from_str_radix(hex, 16).ok()) {
                    ports.insert(port);
                }
            }
        }
    }
    ports
}

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = Command::new("nft").args(["delete", "table", "inet", &self.table]).status();
    }
}

/// A node's finalized height, and a client of it.
pub async fn finalized(url: &str) -> Option<(u64, Client)> {
    let client = Client::connect(url).await.ok()?;
    Some((client.finalized_number().await.ok()?, client))
}

/// Wait until every node in `nodes` has finalized at least `height`; their hashes there agree.
pub async fn finalized_everywhere(network: &Network, nodes: &[usize], height: u64, patience: Duration) {
    let deadline = Instant::now() + patience;
    // One connection per node, made again only when it fails: a connection a poll (twice a
    // second, for minutes) would reach the nodes' RPC connection limit (HTTP 429).
    let mut clients: Vec<Option<Client>> = vec![None; nodes.len()];
    loop {
        let mut hashes = Vec::new();
        for (&node, slot) in nodes.iter().zip(clients.iter_mut()) {
            if slot.is_none() {
                *slot = Client::connect(&network.url(node)).await.ok();
            }
            let Some(client) = slot.as_ref() else { continue };
            match client.finalized_number().await {
                Ok(number) if number >= height => match client.block_hash(height).await {
                    Ok(hash) => hashes.push(hash),
                    Err(_) => *slot = None,
                },
                Ok(_) => {}
                Err(_) => *slot = None,
            }
        }
        if hashes.len() == nodes.len() {
            assert!(hashes.windows(2).all(|pair| pair[0] == pair[1]), "forked finality at {height}: {hashes:?}");
            return;
        }
        if Instant::now() >= deadline {
            panic!("block {height} not finalized on all of {nodes:?}\n{}", network.report().await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The coalition of the four validators' accounts on the network, with the members' API and one
/// oracle per validator on its own node.
pub struct CoalitionNetwork {
    pub network: Network,
    pub dir: PathBuf,
    pub api: MembersApi,
    /// `tclearn`'s environment: Alice's node, the artifacts, the API.
    pub env: Vec<(String, String)>,
    /// Each validator's key file.
    pub keys: Vec<PathBuf>,
    /// The coalition, read and called through Alice's node.
    pub coalition: Coalition,
    /// Each validator's oracle, while it runs.
    pub oracles: Vec<Option<Oracle>>,
    oracle_env: Vec<Vec<(String, String)>>,
    /// How long the network took to come up, and the coalition to be founded.
    pub up: Duration,
    pub founded: Duration,
}

impl CoalitionNetwork {
    /// Spawn the network in `dir` and found the coalition: G every fifth row of the breast-cancer
    /// data, each validator's L 25 rows of its own, the members' data the other rows; three
    /// validators a round (every member but the proposer) and `phase_blocks` blocks a phase.
    /// `metrics` gives each oracle a Prometheus endpoint.
    pub async fn start(dir: &Path, phase_blocks: u32, metrics: bool) -> Self {
        tclearn_api_client::install_crypto_provider();
        let started = Instant::now();
        let network = Network::spawn(dir);
        network.wait_up(Duration::from_secs(120)).await;
        let up = started.elapsed();
        let path = |name: &str| dir.join(name).display().to_string();
        std::fs::write(dir.join("g.csv"), breast_cancer_rows((0..569).filter(|r| r % 5 == 0), false)).unwrap();
        for (v, name) in NAMES.iter().enumerate() {
            let rows = (0..569).filter(|r| r % 5 == 1).skip(25 * v).take(25);
            std::fs::write(dir.join(format!("l-{}.csv", capitalised(name))), breast_cancer_rows(rows, false)).unwrap();
        }
        std::fs::write(dir.join("data.csv"), breast_cancer_rows((0..569).filter(|r| r % 5 >= 2), true)).unwrap();
        let mut env: Vec<(String, String)> = vec![
            ("TCLEARN_RPC".into(), network.url(0)),
            ("TCLEARN_ARTIFACTS".into(), artifacts_dir().display().to_string()),
        ];
        let keys: Vec<PathBuf> = NAMES.iter().map(|n| dir.join(format!("{n}.key"))).collect();
        for (name, key) in NAMES.iter().zip(&keys) {
            let mut child = Command::new(env!("CARGO_BIN_EXE_tclearn"))
                .args(["key", "import"])
                .env("TCLEARN_KEY_FILE", key)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            writeln!(child.stdin.take().unwrap(), "//{}", capitalised(name)).unwrap();
            assert!(child.wait().unwrap().success());
        }
        let founders = NAMES[1..]
            .iter()
            .map(|n| Keypair::dev(&capitalised(n)).unwrap().account_id().to_string())
            .collect::<Vec<_>>()
            .join(",");
        // The tier tests consensus, not privacy: its genesis standardises by the public data
        // set's own means and deviations (declared as the ranges mean ± deviation), as the tier
        // was tuned with, so that its honest rounds keep lambda on every validator's L.
        let ranges = path("ranges.json");
        std::fs::write(&ranges, z_score_ranges((0..569).filter(|r| r % 5 >= 2))).unwrap();
        ok(&env, &keys[0], &["model", "init", "--standardisation", &ranges, "--out", &path("genesis.onnx")]);
        let founded = ok(
            &env,
            &keys[0],
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
                &phase_blocks.to_string(),
                // Alice proposes every round of the tier.
                "--proposal-cooldown",
                "0",
                "--declaration",
                &path("genesis.json"),
                "--standardisation",
                &ranges,
            ],
        );
        let address: H160 = founded["coalition"].as_str().unwrap().parse().unwrap();
        let api = MembersApi::start_at(&network.url(0), address, &dir.join("genesis.json")).await;
        env.push(("TCLEARN_API_URL".into(), api.url.clone()));
        ok(&env, &keys[0], &["upload", &path("genesis.onnx")]);
        let oracle_env: Vec<Vec<(String, String)>> = (0..NAMES.len())
            .map(|i| {
                let mut oracle = vec![
                    ("TCLEARN_RPC", network.url(i)),
                    ("TCLEARN_COALITION", format!("{address:?}")),
                    ("TCLEARN_COALITION_METADATA", artifacts_dir().join("coalition.json").display().to_string()),
                    ("TCLEARN_GENESIS", path("genesis.json")),
                    ("TCLEARN_GLOBAL_TEST_SET", path("g.csv")),
                    ("TCLEARN_VAULT_API", api.url.clone()),
                    ("TCLEARN_POLL_MS", "300".into()),
                ];
                if metrics {
                    oracle.push(("TCLEARN_METRICS_ADDR", format!("127.0.0.1:{}", free_port())));
                }
                oracle.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            })
            .collect();
        let coalition =
            Coalition::at(Client::connect(&network.url(0)).await.unwrap(), address, artifact("coalition").metadata);
        let mut this = Self {
            network,
            dir: dir.to_path_buf(),
            api,
            env,
            keys,
            coalition,
            oracles: Vec::new(),
            oracle_env,
            up,
            founded: started.elapsed(),
        };
        for i in 0..NAMES.len() {
            let oracle = this.start_oracle(i, &[]);
            this.oracles.push(Some(oracle));
        }
        this
    }

    /// Start validator `i`'s oracle on its node and journal (with `extra` settings); the caller
    /// keeps it.
    pub fn start_oracle(&self, i: usize, extra: &[(&str, &str)]) -> Oracle {
        Oracle::start(&self.oracle_env[i], &capitalised(NAMES[i]), &self.dir, extra)
    }

    /// Validator `i`'s Prometheus endpoint, if it has one.
    pub fn metrics_addr(&self, i: usize) -> Option<&str> {
        self.oracle_env[i].iter().find(|(k, _)| k == "TCLEARN_METRICS_ADDR").map(|(_, v)| v.as_str())
    }

    /// The last lines of every oracle's log.
    pub fn logs(&self) -> String {
        self.oracles.iter().flatten().map(|o| last_lines(&o.log(), 8)).collect::<Vec<_>>().join("\n---\n")
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Validator `who` trains a candidate on 30 new rows into `dir/<out>`.
    pub fn train(&self, who: usize, out: &str, seed: u64) -> PathBuf {
        ok(
            &self.env,
            &self.keys[who],
            &[
                "train",
                "--data",
                &self.path("data.csv"),
                "--out",
                &self.path(out),
                "--max-samples",
                "30",
                // Reproducible rounds: the network tier tests consensus, not privacy.
                "--without-privacy",
                "--seed",
                &seed.to_string(),
            ],
        );
        self.dir.join(out)
    }

    /// Validator `who` proposes the candidate in `candidate` with `tclearn propose`, which
    /// follows the round to its end; the caller awaits [`proposed`].
    pub fn propose(&self, who: usize, candidate: &Path) -> tokio::process::Child {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tclearn"))
            .args(["propose", "--json", "--candidate"])
            .arg(candidate)
            .args(["--wait-secs", "600"])
            .envs(self.env.iter().cloned())
            .env("TCLEARN_KEY_FILE", &self.keys[who])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    /// Alice's view of the chain: the open round once it is in `phase` or later (by `ready`),
    /// within `patience`.
    pub async fn wait_round<F: Fn(&tclearn_client::coalition::Round) -> bool>(
        &self,
        round: u64,
        what: &str,
        patience: Duration,
        ready: F,
    ) -> tclearn_client::coalition::Round {
        let me = Keypair::dev("Alice").unwrap().account_id();
        let deadline = Instant::now() + patience;
        loop {
            if let Ok(Some(state)) = self.coalition.round(&me, round).await {
                if ready(&state) {
                    return state;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "round {round}: {what} not seen in {patience:?}\n{}\n{}",
                    self.logs(),
                    self.network.report().await
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// The end of a `tclearn propose`: its exit status and the round it printed.
pub async fn proposed(
    mut child: tokio::process::Child,
    patience: Duration,
) -> (std::process::ExitStatus, serde_json::Value, String) {
    output(&mut child, patience).await
}

/// What a `tclearn propose` that ends within `patience` printed: its exit status, the round on
/// its stdout, and its stderr.
pub async fn output(
    child: &mut tokio::process::Child,
    patience: Duration,
) -> (std::process::ExitStatus, serde_json::Value, String) {
    use tokio::io::AsyncReadExt;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let status = tokio::time::timeout(patience, async {
        let (a, b) = tokio::join!(out.read_to_end(&mut stdout), err.read_to_end(&mut stderr));
        a.unwrap();
        b.unwrap();
        child.wait().await.unwrap()
    })
    .await
    .expect("the round ends");
    (
        status,
        serde_json::from_slice(&stdout).unwrap_or(serde_json::Value::Null),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

pub fn tclearn(env: &[(String, String)], key: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tclearn"))
        .args(args)
        .envs(env.iter().cloned())
        .env("TCLEARN_KEY_FILE", key)
        .output()
        .unwrap()
}

pub fn ok(env: &[(String, String)], key: &Path, args: &[&str]) -> serde_json::Value {
    let out = tclearn(env, key, args);
    assert!(out.status.success(), "tclearn {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// A standardisation file whose ranges are each feature's mean ± standard deviation over the
/// breast-cancer rows `rows`: a genesis standardised by them is the z-scores of the data.
fn z_score_ranges(rows: impl Iterator<Item = usize>) -> String {
    let data = breast_cancer();
    let rows: Vec<usize> = rows.collect();
    let n = rows.len() as f64;
    let ranges: Vec<String> = (0..data.width)
        .map(|j| {
            let mean = rows.iter().map(|&i| f64::from(data.row(i)[j])).sum::<f64>() / n;
            let deviation = (rows.iter().map(|&i| (f64::from(data.row(i)[j]) - mean).powi(2)).sum::<f64>() / n).sqrt();
            format!(r#"{{"low": {}, "high": {}}}"#, mean - deviation, mean + deviation)
        })
        .collect();
    format!(
        r#"{{"source": "the public data set's own means and deviations (a test of consensus)", "ranges": [{}]}}"#,
        ranges.join(",")
    )
}
