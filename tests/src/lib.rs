//! Harness for end-to-end tests: real `tclearn-node` processes on loopback.
//!
//! - The node binary is `$TCLEARN_NODE` (`scripts/env.sh` sets it to the node workspace's build
//!   in the cache), else `runtime/target/release/tclearn-node` of a plain `cargo build --release`
//!   in `runtime/`.
//! - The oracle and the members' API are this workspace's own binaries, built in the same
//!   profile as the test that runs them ([`workspace_binary`]).
//! - Built contracts are read from `$TCLEARN_ARTIFACTS` (`scripts/build-contracts.sh` fills it).
//! - Each node gets a temporary base path and free loopback ports ([`free_port`]), writes its
//!   log to a file in that base path, and is killed when its [`Node`] is dropped. A node that
//!   does not come up fails the test with the tail of its log.
//! - [`hostile`] writes the hostile models the tests of every program that reads one send it.

pub mod hostile;

use std::{
    net::TcpListener,
    ops::RangeInclusive,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        atomic::{AtomicUsize, Ordering},
        OnceLock,
    },
    time::{Duration, Instant},
};
use tclearn_client::{
    coalition::{Fraction, Genesis, GovernanceParams, Hyperparameters, MetricKind},
    AccountId32, Client, ContractArtifact, Keypair, H160, H256,
};
use tokio::process::{Child, Command};

/// How long a node may take to open its RPC port.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

/// The node binary to test.
pub fn node_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TCLEARN_NODE") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/target/release/tclearn-node")
}

/// A binary of this workspace (`oracle`, `tclearn-api`, `tclearn`), from the profile directory
/// the running test was built in: `cargo test --workspace` builds every package's binaries there
/// with the test's features.
pub fn workspace_binary(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test>: the binaries are in target/<profile>.
    let profile = test.parent().and_then(Path::parent).expect("a test runs from target/<profile>/deps");
    profile.join(name)
}

/// The oracle binary to test.
pub fn oracle_binary() -> PathBuf {
    workspace_binary("oracle")
}

/// The directory of built contracts (`$TCLEARN_ARTIFACTS`).
pub fn artifacts_dir() -> PathBuf {
    std::env::var_os("TCLEARN_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|| {
        panic!("TCLEARN_ARTIFACTS is not set: run scripts/build-contracts.sh (scripts/test.sh does)")
    })
}

/// A built contract, by its crate name with underscores (`audit_anchors`).
pub fn artifact(name: &str) -> ContractArtifact {
    let bundle = artifacts_dir().join(format!("{name}.contract"));
    ContractArtifact::load(&bundle)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/build-contracts.sh)", bundle.display()))
}

/// A free TCP port on 127.0.0.1 for a process the test starts (a node, the API, an oracle's
/// metrics) to bind: free when asked, and never the same port twice in one test process.
///
/// It is taken outside the kernel's ephemeral range, from which every outgoing connection's local
/// port and every bind to port 0 come. A port from inside that range could be taken between this
/// check and the process's bind: a node then served its IPv4 RPC on another port and the test
/// waited on the asked one until it timed out.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static PORTS: OnceLock<(RangeInclusive<u16>, usize)> = OnceLock::new();
    let (ports, offset) = PORTS.get_or_init(|| {
        let ports = non_ephemeral_ports(ephemeral_ports());
        // Test processes that run side by side start at different places in the range.
        let offset = (std::process::id() as usize).wrapping_mul(7919) % ports.len();
        (ports, offset)
    });
    let len = ports.len();
    for _ in 0..len {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = *ports.start() + ((offset + step) % len) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {ports:?}")
}

/// This machine's ephemeral port range (`/proc/sys/net/ipv4/ip_local_port_range`).
fn ephemeral_ports() -> RangeInclusive<u16> {
    parse_port_range(&std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default())
}

/// An `ip_local_port_range` ("low high"); Linux's default, 32768–60999, when it cannot be read.
fn parse_port_range(ip_local_port_range: &str) -> RangeInclusive<u16> {
    let mut bounds = ip_local_port_range.split_whitespace().map(str::parse::<u16>);
    match (bounds.next(), bounds.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => low..=high,
        _ => 32768..=60999,
    }
}

/// The largest range of unprivileged ports outside the `ephemeral` range.
fn non_ephemeral_ports(ephemeral: RangeInclusive<u16>) -> RangeInclusive<u16> {
    let (low, high) = ephemeral.into_inner();
    let below = 1024..=low.saturating_sub(1);
    #[allow(clippy::reversed_empty_ranges)]
    let above = high.checked_add(1).map_or(1..=0, |start| start.max(1024)..=u16::MAX);
    match (below.len(), above.len()) {
        (0, 0) => panic!("the ephemeral range {low}-{high} leaves no port to hand out"),
        (b, a) if b >= a => below,
        _ => above,
    }
}

/// The last `n` lines of `text`, for failure messages.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running node.
pub struct Node {
    child: Child,
    /// Its RPC endpoint.
    pub rpc_url: String,
    /// Its p2p port.
    pub p2p_port: u16,
    rpc_port: u16,
    config: NodeConfig,
    log: PathBuf,
    /// Its base path, removed when the node is dropped.
    base: tempfile::TempDir,
}

/// Start the node process, appending to `log`.
fn spawn(config: &NodeConfig, base: &Path, log: &Path, rpc_port: u16, p2p_port: u16) -> Child {
    let binary = node_binary();
    let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("a log file");
    Command::new(&binary)
        .args(&config.args)
        .arg("--base-path")
        .arg(base)
        .args(["--rpc-port", &rpc_port.to_string()])
        .args(["--listen-addr", &format!("/ip4/127.0.0.1/tcp/{p2p_port}")])
        .args(["--no-prometheus", "--no-telemetry", "--no-mdns"])
        .stdout(Stdio::null())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()))
}

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Arguments besides base path, ports and logging (e.g. `--dev --sealing instant`).
    pub args: Vec<String>,
}

impl NodeConfig {
    /// The dev chain, sealing one block per transaction, finalized at once.
    pub fn dev_instant() -> Self {
        Self::with_args(&["--dev", "--sealing", "instant"])
    }

    /// The dev chain, sealing a block every `ms` milliseconds, each finalized at once.
    pub fn dev_interval(ms: u32) -> Self {
        Self { args: vec!["--dev".into(), "--sealing".into(), ms.to_string()] }
    }

    /// A node with these arguments.
    pub fn with_args(args: &[&str]) -> Self {
        Self { args: args.iter().map(|a| a.to_string()).collect() }
    }
}

impl Node {
    /// Start a node and wait until its RPC answers.
    pub async fn start(config: NodeConfig) -> Node {
        let binary = node_binary();
        assert!(
            binary.exists(),
            "{} does not exist: build it with scripts/build-node.sh (scripts/test.sh does)",
            binary.display()
        );
        let base = tempfile::Builder::new().prefix("tclearn-node-").tempdir().expect("a temp dir");
        let log = base.path().join("node.log");
        let rpc_port = free_port();
        let p2p_port = free_port();
        let node = Node {
            child: spawn(&config, base.path(), &log, rpc_port, p2p_port),
            rpc_url: format!("ws://127.0.0.1:{rpc_port}"),
            rpc_port,
            p2p_port,
            config,
            log,
            base,
        };
        node.wait_for_rpc().await;
        node
    }

    /// Kill the node and start it again on the same base path and ports: the chain goes on from
    /// where it was, and clients see their connections drop.
    pub async fn restart(&mut self) {
        let _ = self.child.kill().await;
        self.child = spawn(&self.config, self.base.path(), &self.log, self.rpc_port, self.p2p_port);
        self.wait_for_rpc().await;
    }

    async fn wait_for_rpc(&self) {
        let started = Instant::now();
        loop {
            if Client::connect(&self.rpc_url).await.is_ok() {
                return;
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                panic!("node did not open {} within {STARTUP_TIMEOUT:?}\n{}", self.rpc_url, self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// A client connected to this node.
    pub async fn client(&self) -> Client {
        Client::connect(&self.rpc_url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}\n{}", self.rpc_url, self.log_tail()))
    }

    /// The last lines of the node's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- last lines of {} ---\n{}", self.log.display(), last_lines(&text, 40))
    }

    /// The node's libp2p peer id, read from its log (`Local node identity is: ...`).
    pub fn peer_id(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        text.lines().find_map(|line| line.split("Local node identity is: ").nth(1)).map(|id| id.trim().to_string())
    }

    /// Stop the node now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The members' API binary to test.
pub fn api_binary() -> PathBuf {
    workspace_binary("tclearn-api")
}

/// A running `tclearn-api serve` for a coalition, its vault and audit log in a temporary
/// directory; killed when dropped.
pub struct MembersApi {
    /// Its base URL, `http://127.0.0.1:port`.
    pub url: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl MembersApi {
    /// Start it for the coalition at `coalition` on `node`, checking uploads against the
    /// declaration at `genesis`; it reads the chain as Alice.
    pub async fn start(node: &Node, coalition: H160, genesis: &Path) -> Self {
        Self::start_at(&node.rpc_url, coalition, genesis).await
    }

    /// The same against the node at `rpc_url` (one of a network's).
    pub async fn start_at(rpc_url: &str, coalition: H160, genesis: &Path) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let log = dir.path().join("api.log");
        let binary = api_binary();
        let child = Command::new(&binary)
            .arg("serve")
            .env("TCLEARN_API_LISTEN", format!("127.0.0.1:{port}"))
            .env("TCLEARN_RPC", rpc_url)
            .env("TCLEARN_COALITION", format!("{coalition:?}"))
            .env("TCLEARN_COALITION_METADATA", artifacts_dir().join("coalition.json"))
            // The audit-anchors contract the coalition records, if any (Alice operates it).
            .env("TCLEARN_ANCHORS_METADATA", artifacts_dir().join("audit_anchors.json"))
            .env("TCLEARN_API_SURI", "//Alice")
            .env("TCLEARN_GENESIS", genesis)
            .env("TCLEARN_API_DATA_DIR", dir.path().join("data"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/test.sh builds it)", binary.display()));
        let mut api = Self { url: format!("http://127.0.0.1:{port}"), child, log, _dir: dir };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Ok(Some(status)) = api.child.try_wait() {
                panic!("tclearn-api exited with {status}:\n{}", api.log_tail());
            }
            assert!(Instant::now() < deadline, "tclearn-api did not listen in time:\n{}", api.log_tail());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        api
    }

    /// Sign in as `suri` and upload `models`: one JSON line per model, or a panic with the
    /// API's refusal.
    pub async fn upload(&self, suri: &str, models: &[PathBuf]) -> String {
        let output = Command::new(api_binary())
            .args(["upload", "--api", &self.url, "--suri", suri])
            .args(models)
            .output()
            .await
            .expect("tclearn-api upload runs");
        assert!(output.status.success(), "upload: {}\n{}", String::from_utf8_lossy(&output.stderr), self.log_tail());
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The end of its log.
    pub fn log_tail(&self) -> String {
        last_lines(&std::fs::read_to_string(&self.log).unwrap_or_default(), 40)
    }
}

/// A running `oracle run` as the dev account `name` (`//Name`), configured by `env` (node,
/// coalition, genesis declaration, G, vault), with its journal in `dir` and its local test set
/// at `dir/l-<name>.csv`; `extra` settings go last. Killed when dropped.
pub struct Oracle {
    /// The process.
    pub child: Child,
    /// Its log (standard error).
    pub log: PathBuf,
}

impl Oracle {
    /// Start it.
    pub fn start(env: &[(String, String)], name: &str, dir: &Path, extra: &[(&str, &str)]) -> Self {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let log = dir.join(format!("{name}-{stamp}.log"));
        let file = std::fs::File::create(&log).expect("a log file");
        let mut command = Command::new(oracle_binary());
        command.arg("run").envs(env.iter().cloned()).stdout(Stdio::null()).stderr(file).kill_on_drop(true);
        command.env("TCLEARN_KEY_URI", format!("//{name}"));
        command.env("TCLEARN_JOURNAL", dir.join(format!("{name}.redb")));
        command.env("TCLEARN_LOCAL_TEST_SET", dir.join(format!("l-{name}.csv")));
        for (key, value) in extra {
            if *key == "TCLEARN_VAULT_URL" {
                // Another vault than the members' API.
                command.env_remove("TCLEARN_VAULT_API");
            }
            command.env(key, value);
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("{}: {e} (cargo test --release --workspace builds it)", oracle_binary().display())
        });
        Self { child, log }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Have `n` blocks sealed on a node that seals a block per transaction (`--sealing instant`):
/// `n` transfers of one planck from `signer` to Ferdie.
pub async fn seal_blocks(client: &Client, signer: &Keypair, n: u32) {
    let ferdie: AccountId32 = Keypair::dev("Ferdie").expect("a dev key").account_id();
    for _ in 0..n {
        client.transfer(signer, &ferdie, 1).await.expect("a transfer");
    }
}

/// Poll `check` every 500 ms until it returns `Some`, or panic with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if started.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A coalition genesis for tests: accuracy on a G of 100 samples, the initial model at 0.80,
/// lambda 0.95, `k` validators, quorum 2/3, phases of 500 blocks, governance by half of the
/// members voting and 2/3 of them aye.
pub fn test_genesis(k: u32, founders: Vec<H160>) -> Genesis {
    Genesis {
        architecture_hash: H256::repeat_byte(0xA0),
        parameter_hash: H256::repeat_byte(0xB0),
        vault_ref: b"vault://genesis".to_vec(),
        test_set_hash: H256::repeat_byte(0xC0),
        test_set_size: 100,
        metric: MetricKind::Accuracy,
        higher_is_better: true,
        metric_tolerance: 0,
        performance: 800_000,
        hyperparameters: Hyperparameters {
            lambda_ppm: 950_000,
            validators_per_round: k,
            quorum: Fraction::TWO_THIRDS,
            commit_timeout: 500,
            reveal_timeout: 500,
            seal_timeout: 500,
            attest_timeout: 500,
            min_batch_size: 2,
            learning_rate_e9: 10_000_000,
            epochs: 1,
            batch_size: 32,
            privacy_budget: None,
            min_gain: 1,
            proposal_cooldown: 0,
        },
        governance: GovernanceParams {
            voting_period: 100,
            enactment_delay: 0,
            quorum: Fraction { num: 1, den: 2 },
            threshold: Fraction::TWO_THIRDS,
        },
        founders,
        audit_anchors: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_outside_the_ephemeral_range_and_never_handed_out_twice() {
        let ephemeral = ephemeral_ports();
        let ports: Vec<u16> = (0..500).map(|_| free_port()).collect();
        for port in &ports {
            assert!(!ephemeral.contains(port), "{port} is in the ephemeral range {ephemeral:?}");
            assert!(*port >= 1024, "{port} is privileged");
        }
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
    }

    #[test]
    fn the_larger_side_of_the_ephemeral_range_is_used() {
        let ports = |text: &str| non_ephemeral_ports(parse_port_range(text));
        assert_eq!(ports("32768\t60999\n"), 1024..=32767);
        assert_eq!(ports("1024 50000"), 50001..=65535);
        assert_eq!(ports("10000 65535"), 1024..=9999);
        // Unreadable: Linux's default.
        assert_eq!(ports("garbage"), 1024..=32767);
        assert_eq!(ports("60999 32768"), 1024..=32767);
    }

    #[test]
    #[should_panic(expected = "leaves no port")]
    fn an_ephemeral_range_over_every_port_is_refused() {
        non_ephemeral_ports(1024..=65535);
    }
}
