//! What the API's tests share: a dev node running the coalition, and the API on
//! `127.0.0.1:0` driven over real HTTP.
#![allow(dead_code)]

use reqwest::StatusCode;
use serde_json::Value;
use std::path::PathBuf;
use tclearn_api::config::Config;
use tclearn_api_client::sign_in::{signed_bytes, SignInMessage};
use tclearn_client::args::{ChainArgs, CoalitionArgs};
use tclearn_client::{coalition::Coalition, Keypair, H160, H256};
use tclearn_e2e::{artifact, artifacts_dir, test_genesis, Node, NodeConfig};
use tclearn_model::architectures::train_logistic;
use tclearn_model::checks as model;
use tclearn_model::genesis::Hash;
use tclearn_model::hash::model_hash;

pub const MEMBERS: [&str; 4] = ["Alice", "Bob", "Charlie", "Dave"];

/// A model over 30 features and 2 classes, different for each `seed`.
pub fn logistic(seed: usize) -> Vec<u8> {
    let rows = 40;
    let x: Vec<f32> = (0..rows * 30).map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32) / 1000.0).collect();
    let y: Vec<u32> = (0..rows).map(|i| ((i + seed) % 2) as u32).collect();
    train_logistic(&x, 30, &y, 2, 5, 0.1).to_onnx()
}

/// A node running the coalition, and a declaration the API checks uploads against.
pub struct Scene {
    pub dir: tempfile::TempDir,
    pub node: Node,
    pub coalition: Coalition,
    pub genesis_model: Vec<u8>,
}

pub async fn scene() -> Scene {
    scene_of(&MEMBERS).await
}

/// The scene with `founders` (dev names) as the coalition's members.
pub async fn scene_of(founders: &[&str]) -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let genesis_model = logistic(0);
    let architecture = model::architecture_hash(&onnx_rs::parse(&genesis_model).unwrap());
    let declaration = serde_json::json!({
        "metric": "accuracy",
        "input": {"dims": [null, 30]},
        "output": {"dims": [null, 2]},
        "architecture_hash": Hash(architecture),
    });
    std::fs::write(dir.path().join("genesis.json"), declaration.to_string()).unwrap();
    let node = Node::start(NodeConfig::dev_instant()).await;
    let client = node.client().await;
    let alice = Keypair::dev("Alice").unwrap();
    let founders = founders.iter().map(|n| Keypair::dev(n).unwrap().address()).collect();
    let mut genesis = test_genesis(2, founders);
    genesis.architecture_hash = H256(architecture);
    genesis.parameter_hash = H256(model_hash(&genesis_model));
    genesis.vault_ref = tclearn_model::hash::members_api_ref(&model_hash(&genesis_model)).into_bytes();
    let coalition = Coalition::deploy(&client, &alice, &artifact("coalition"), &genesis)
        .await
        .unwrap_or_else(|e| panic!("deploy: {e}\n{}", node.log_tail()));
    Scene { dir, node, coalition, genesis_model }
}

pub fn config(scene: &Scene, data_dir: PathBuf, token_ttl: u64, anchors: Option<H160>) -> Config {
    let mut config = base_config(&scene.node, scene.coalition.address, scene.dir.path().join("genesis.json"), data_dir);
    config.token_ttl = token_ttl;
    config.anchors_metadata = anchors.map(|_| artifacts_dir().join("audit_anchors.json"));
    config.audit_anchors = anchors;
    config
}

/// The API of the coalition at `coalition` on `node`, on `127.0.0.1:0`, reading the chain as
/// Alice, with small limits (a 1 MiB vault object) and no anchoring.
pub fn base_config(node: &Node, coalition: H160, genesis: PathBuf, data_dir: PathBuf) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_origins: Vec::new(),
        chain: CoalitionArgs {
            chain: ChainArgs { rpc: node.rpc_url.clone() },
            coalition,
            metadata: artifacts_dir().join("coalition.json"),
        },
        anchors_metadata: None,
        audit_anchors: None,
        suri: tclearn_client::Secret("//Alice".into()),
        genesis,
        vault: tclearn_api::config::VaultConfig::local(data_dir, 1 << 20),
        challenge_ttl: 60,
        token_ttl: 600,
        anchor_every: 0,
        max_json_bytes: 64 << 10,
        submit_timeout: 30,
        public_rpc: None,
        tls_cert: None,
        tls_key: None,
        web_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/web/dist")),
        concurrent_checks: 2,
        concurrent_uploads: 4,
        concurrent_downloads: 8,
        max_connections: 1024,
        connections_per_address: 128,
        header_timeout: 10,
        body_timeout: 30,
        rate_per_address: 1000,
        burst_per_address: 2000,
        rate_per_account: 200,
        burst_per_account: 400,
        checker: Some(PathBuf::from(env!("CARGO_BIN_EXE_tclearn-api"))),
    }
}

/// A running API and its base URL; stopped when dropped.
pub struct Api {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), tclearn_api::ServeError>>,
    pub http: reqwest::Client,
    /// The API's state, as its handlers share it.
    pub state: std::sync::Arc<tclearn_api::api::AppState>,
}

impl Api {
    pub async fn start(config: Config) -> Self {
        tclearn_api_client::install_crypto_provider();
        let server = tclearn_api::bind(config).await.expect("the API starts");
        let url = format!("http://{}", server.local_addr());
        let state = server.state();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        Self { url, stop: Some(stop), task, http: reqwest::Client::new(), state }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.task).await.unwrap().unwrap();
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self.http.post(format!("{}{path}", self.url)).json(&body).send().await.unwrap();
        (response.status(), response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(format!("{}{path}", self.url)).send().await.unwrap();
        (response.status(), response.json().await.unwrap_or(Value::Null))
    }

    /// A GET as the member signed in with `token`.
    pub async fn get_as(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(format!("{}{path}", self.url)).bearer_auth(token).send().await.unwrap();
        (response.status(), response.json().await.unwrap_or(Value::Null))
    }

    /// Sign in as `name`: check the challenge as a member does, sign it with its key, wrapped as
    /// browser wallets do.
    pub async fn sign_in(&self, name: &str) -> String {
        let key = Keypair::dev(name).unwrap();
        let account = key.account_id().to_string();
        let (status, body) = self.post("/api/auth/challenge", serde_json::json!({ "account": account })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let challenge = body["challenge"].as_str().unwrap().to_string();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        SignInMessage::check(&challenge, &self.url, &key.account_id(), None, now).expect("a sign-in message for us");
        let signature = format!("0x{}", hex::encode(key.sign(&signed_bytes(&challenge))));
        let (status, body) = self
            .post(
                "/api/auth/token",
                serde_json::json!({ "account": account, "challenge": challenge, "signature": signature }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    pub async fn upload(&self, token: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/api/vault/candidates", self.url))
            .bearer_auth(token)
            .body(bytes)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap_or(Value::Null))
    }

    pub async fn download(&self, token: Option<&str>, hash: &str) -> (StatusCode, Vec<u8>) {
        let mut request = self.http.get(format!("{}/api/vault/objects/{hash}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.bytes().await.unwrap().to_vec())
    }

    /// The log's first 1,000 entries, read as Alice (a founder: entries are served to members
    /// only).
    pub async fn audit_entries(&self) -> Vec<Value> {
        let token = self.sign_in("Alice").await;
        let (_, page) = self.get_as(&token, "/api/audit/entries?start=0&count=1000").await;
        page["entries"].as_array().unwrap().iter().map(|e| serde_json::from_str(e.as_str().unwrap()).unwrap()).collect()
    }
}
