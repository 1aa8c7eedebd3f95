//! The members' API driven through `run`'s parts (`bind`, `serve`) on `127.0.0.1:0`, against a
//! real `tclearn-node --dev` running the coalition contract, over real HTTP.
//!
//! Coalition: Alice, Bob, Charlie and Dave; Eve is not a member. Models are logistic
//! regressions over the breast-cancer set's 30 features (`tclearn_model::architectures`).

mod common;

use common::{config, logistic, scene, Api};
use reqwest::StatusCode;
use serde_json::Value;
use std::{path::PathBuf, time::Duration};
use tclearn_api_client::{
    audit::Tampering,
    client::ApiClient,
    data_ids::{Blinded, MAX_BATCH},
    receipt::Receipt,
    sign_in::signed_bytes,
    verify::VerifyError,
    views::DataIdsAnswer,
};
use tclearn_client::{
    account_to_address,
    anchors::AuditAnchors,
    coalition::{Phase, DRAW_DELAY},
    Keypair, H256,
};
use tclearn_e2e::{artifact, artifacts_dir, hostile, seal_blocks};
use tclearn_model::architectures::train_logistic;
use tclearn_model::hash::model_hash;

/// Models a recursive parser overflows its stack on, each under the tests' 1 MiB upload limit.
fn hostile_models() -> [(&'static str, Vec<u8>); 2] {
    [("nested types", hostile::deep_type(100_000)), ("nested subgraphs", hostile::deep_subgraphs(60_000))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_sign_in_upload_and_read_what_their_role_allows() {
    let scene = scene().await;
    let api = Api::start(config(&scene, scene.dir.path().join("api"), 3, None)).await;
    let (status, health) = api.get("/api/health").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    // Every answer, the dashboard's page included, carries the security headers; HSTS only
    // under TLS. The browser tests' wallet is not served.
    for path in ["/", "/api/health", "/api/vault/objects/0x00"] {
        let response = api.http.get(format!("{}{path}", api.url)).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("frame-ancestors 'none'") && policy.contains("default-src 'self'"), "{path}");
        assert!(!headers.contains_key("strict-transport-security"), "{path}: no HSTS over HTTP");
    }
    let signer = api.http.get(format!("{}/assets/test-signer.js", api.url)).send().await.unwrap();
    assert_eq!(signer.status(), StatusCode::NOT_FOUND, "the test wallet is not served");
    assert!(health["best_block"].as_u64().unwrap() >= 1);

    // Sign-in: a wallet-wrapped signature of a sign-in message naming this API. A raw
    // signature, a forged one, a replay, a non-member, another Host and an expired token are
    // refused.
    let bob_token = api.sign_in("Bob").await;
    let bob = Keypair::dev("Bob").unwrap();
    let charlie = Keypair::dev("Charlie").unwrap();
    let challenge_for = |host: Option<&'static str>| {
        let mut request = api.http.post(format!("{}/api/auth/challenge", api.url));
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let account = bob.account_id().to_string();
        async move {
            let response = request.json(&serde_json::json!({ "account": account })).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = challenge_for(Some("api.attacker.example")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a challenge for another origin: {body}");
    let (_, body) = challenge_for(None).await;
    let challenge = body["challenge"].as_str().unwrap().to_string();
    assert!(challenge.starts_with(&format!("tclearn sign-in: api {}, coalition ", api.url)), "{challenge}");
    let token_request = |signature: [u8; 64]| serde_json::json!({ "account": bob.account_id().to_string(), "challenge": challenge, "signature": format!("0x{}", hex::encode(signature)) });
    let (status, body) = api.post("/api/auth/token", token_request(bob.sign(challenge.as_bytes()))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a raw, unwrapped signature: {body}");
    // A failed attempt (anyone can make one) does not spend the challenge for its account; its
    // signature does, once.
    let (status, body) = api.post("/api/auth/token", token_request(bob.sign(&signed_bytes(&challenge)))).await;
    assert_eq!(status, StatusCode::OK, "the wrapped signature after a failed attempt: {body}");
    let (status, body) = api.post("/api/auth/token", token_request(bob.sign(&signed_bytes(&challenge)))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a replay: {body}");
    let (_, body) = challenge_for(None).await;
    let challenge = body["challenge"].as_str().unwrap().to_string();
    let token_request = |signature: [u8; 64]| serde_json::json!({ "account": bob.account_id().to_string(), "challenge": challenge, "signature": format!("0x{}", hex::encode(signature)) });
    let (status, body) = api.post("/api/auth/token", token_request(charlie.sign(&signed_bytes(&challenge)))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "forged: {body}");
    let (_, body) = challenge_for(None).await;
    let challenge = body["challenge"].as_str().unwrap().to_string();
    let signed = serde_json::json!({
        "account": bob.account_id().to_string(), "challenge": challenge,
        "signature": format!("0x{}", hex::encode(bob.sign(&signed_bytes(&challenge))))
    });
    assert_eq!(api.post("/api/auth/token", signed.clone()).await.0, StatusCode::OK);
    let (status, body) = api.post("/api/auth/token", signed).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "replayed: {body}");
    assert!(body["error"].as_str().unwrap().contains("already used"), "{body}");
    let eve = Keypair::dev("Eve").unwrap().account_id().to_string();
    let (status, body) = api.post("/api/auth/challenge", serde_json::json!({ "account": eve })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "non-member: {body}");
    let (status, _) = api.post("/api/auth/challenge", serde_json::json!({ "account": "not an account" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Upload and download: the hash is the model's SHA3-256, the bytes come back unchanged.
    let candidate = logistic(1);
    let (status, stored) = api.upload(&bob_token, candidate.clone()).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    let hash = format!("0x{}", hex::encode(model_hash(&candidate)));
    assert_eq!(stored["hash"], hash.as_str());
    assert_eq!(stored["vault_ref"], format!("objects/{hash}").as_str());
    let (status, bytes) = api.download(Some(&bob_token), &hash).await;
    assert_eq!((status, model_hash(&bytes)), (StatusCode::OK, model_hash(&candidate)), "the uploader reads it back");
    let charlie_token = api.sign_in("Charlie").await;
    assert_eq!(api.download(Some(&charlie_token), &hash).await.0, StatusCode::FORBIDDEN, "no round names it yet");
    assert_eq!(api.download(None, &hash).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api.download(Some("forged"), &hash).await.0, StatusCode::UNAUTHORIZED);

    // Data IDs by blinded queries: the vault's function, the same for every member, to members
    // only; the secret itself is served to nobody.
    let patients: Vec<String> = ["wdbc-0", "wdbc-1", "wdbc-568"].iter().map(|s| s.to_string()).collect();
    let (status, bobs) = data_ids(&api, Some(&bob_token), &patients).await;
    assert_eq!(status, StatusCode::OK);
    let bobs = bobs.unwrap();
    for (patient, id) in patients.iter().zip(&bobs) {
        assert_eq!(api.state.data_ids.data_id(patient).unwrap(), *id);
    }
    assert_eq!(data_ids(&api, Some(&charlie_token), &patients).await.1.unwrap(), bobs, "one patient, one ID");
    assert_eq!(data_ids(&api, None, &patients).await.0, StatusCode::UNAUTHORIZED);
    let old = api.http.get(format!("{}/api/vault/data-id-key", api.url)).bearer_auth(&bob_token).send().await.unwrap();
    assert_eq!(old.status(), StatusCode::NOT_FOUND, "the secret is no longer served");
    let bad = api
        .http
        .post(format!("{}/api/vault/data-ids", api.url))
        .bearer_auth(&bob_token)
        .json(&serde_json::json!({ "blinded": ["00".repeat(32)] }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("malformed blinded element"));

    // Refused uploads: not a model; another architecture; nothing stored is lost.
    let (status, body) = api.upload(&bob_token, b"not an onnx model".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let mut other = logistic(2);
    let wider = {
        let rows = 10;
        let x: Vec<f32> = (0..rows * 31).map(|i| (i % 13) as f32 / 13.0).collect();
        train_logistic(&x, 31, &(0..rows).map(|i| (i % 2) as u32).collect::<Vec<_>>(), 2, 2, 0.1).to_onnx()
    };
    let (status, body) = api.upload(&bob_token, wider).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].as_str().unwrap().contains("model checks refuse it"), "{body}");
    other.extend(vec![0u8; 2 << 20]);
    assert_eq!(api.upload(&bob_token, other).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // Models that overflow a recursive parser's stack (the old API parsed them on one of its own
    // threads, and the overflow aborted it): refused, and the API serves on.
    for (what, hostile) in hostile_models() {
        let (status, body) = api.upload(&bob_token, hostile).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
        assert!(body["error"].as_str().unwrap().contains("model checks refuse it"), "{what}: {body}");
    }
    assert_eq!(api.get("/api/health").await.0, StatusCode::OK);
    assert_eq!(api.download(Some(&bob_token), &hash).await.0, StatusCode::OK, "a refused upload loses nothing");

    // The genesis model, once uploaded, is every member's to read.
    let alice_token = api.sign_in("Alice").await;
    let (status, _) = api.upload(&alice_token, scene.genesis_model.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let genesis_hash = format!("0x{}", hex::encode(model_hash(&scene.genesis_model)));
    assert_eq!(api.download(Some(&charlie_token), &genesis_hash).await.0, StatusCode::OK, "block 0's model");

    // A weight delta merged onto block 0's model: the candidate's hash is recomputed here, and
    // its weights are the genesis weights plus the delta.
    let genesis_w2 = {
        let parsed = onnx_rs::parse(&scene.genesis_model).unwrap();
        parsed.graph.as_ref().unwrap().get_initializer("w2").unwrap().as_f32().unwrap().into_owned()
    };
    let step: Vec<f32> = (0..60).map(|i| (i as f32 - 30.0) / 1000.0).collect();
    let delta = tclearn_model::delta::encode(&[("w2", vec![30, 2], step.clone())]);
    let bob_token = api.sign_in("Bob").await;
    let post_delta = |parent: u32, body: Vec<u8>| {
        api.http.post(format!("{}/api/vault/deltas?parent={parent}", api.url)).bearer_auth(&bob_token).body(body).send()
    };
    let response = post_delta(0, delta.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let merged: Value = response.json().await.unwrap();
    let recomputed = tclearn_model::delta::merge(&scene.genesis_model, &delta).unwrap();
    assert_eq!(merged["hash"], format!("0x{}", hex::encode(model_hash(&recomputed))).as_str());
    let (status, bytes) = api.download(Some(&bob_token), merged["hash"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let merged_w2 =
        onnx_rs::parse(&bytes).unwrap().graph.unwrap().get_initializer("w2").unwrap().as_f32().unwrap().into_owned();
    let expected: Vec<f32> = genesis_w2.iter().zip(&step).map(|(w, d)| w + d).collect();
    assert_eq!(merged_w2, expected);
    let wrong_shape = tclearn_model::delta::encode(&[("w2", vec![2, 30], step.clone())]);
    assert_eq!(post_delta(0, wrong_shape).await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        post_delta(0, scene.genesis_model.clone()).await.unwrap().status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a model is not a delta"
    );
    assert_eq!(post_delta(5, delta.clone()).await.unwrap().status(), StatusCode::NOT_FOUND, "no block 5");
    for (what, hostile) in hostile_models() {
        assert_eq!(post_delta(0, hostile).await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY, "{what}");
    }

    // Charlie uploads a candidate; Bob, who read its hash in the audit log, proposes it as his
    // own. Nobody but Charlie reads it: not Bob, not the round's validators, who cannot evaluate
    // it. Once Bob uploads the same bytes (he holds them), its validators read it, the member
    // not drawn does not.
    let charlies = logistic(3);
    let (status, _) = api.upload(&charlie_token, charlies.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let hash = format!("0x{}", hex::encode(model_hash(&charlies)));
    let c = &scene.coalition;
    let alice = Keypair::dev("Alice").unwrap();
    let data_ids: Vec<H256> = (0..2).map(|i| H256::repeat_byte(0x40 + i)).collect();
    let vault_ref = format!("objects/{hash}");
    let (round, _) =
        c.propose(&bob, 0, H256(model_hash(&charlies)), vault_ref.as_bytes(), 2, &data_ids, None).await.unwrap();
    seal_blocks(c.client(), &alice, DRAW_DELAY + 1).await;
    assert_eq!(c.advance(&alice).await.unwrap().0, Phase::Commit);
    let validators = c.round_validators(&alice.account_id(), round).await.unwrap();
    assert_eq!(validators.len(), 2);
    let names = ["Alice", "Charlie", "Dave"];
    let address = |n: &str| account_to_address(&Keypair::dev(n).unwrap().account_id());
    let drawn: Vec<&str> = names.iter().copied().filter(|n| validators.contains(&address(n))).collect();
    let outsider = names.iter().copied().find(|n| !validators.contains(&address(n))).unwrap();
    // Tokens live 3 s here: sign in again.
    let (bob_token, charlie_token) = (api.sign_in("Bob").await, api.sign_in("Charlie").await);
    assert_eq!(api.download(Some(&bob_token), &hash).await.0, StatusCode::FORBIDDEN, "the proposer did not upload it");
    for validator in drawn.iter().filter(|v| **v != "Charlie") {
        let token = api.sign_in(validator).await;
        assert_eq!(
            api.download(Some(&token), &hash).await.0,
            StatusCode::FORBIDDEN,
            "{validator}: Bob's stolen proposal"
        );
    }
    assert_eq!(api.download(Some(&charlie_token), &hash).await.0, StatusCode::OK, "Charlie keeps his upload");
    assert_eq!(api.upload(&bob_token, charlies.clone()).await.0, StatusCode::OK);
    let candidate = charlies;
    for validator in &drawn {
        let token = api.sign_in(validator).await;
        let (status, bytes) = api.download(Some(&token), &hash).await;
        assert_eq!((status, bytes == candidate), (StatusCode::OK, true), "{validator}, drawn for round {round}");
    }
    if outsider != "Charlie" {
        let token = api.sign_in(outsider).await;
        assert_eq!(api.download(Some(&token), &hash).await.0, StatusCode::FORBIDDEN, "{outsider} was not drawn");
    }
    let entries = api.audit_entries().await;
    let bobs = bob.account_id().to_string();
    let refusal = entries
        .iter()
        .find(|e| e["account"] == bobs.as_str() && e["action"] == "download" && e["object"] == hash.as_str())
        .unwrap();
    assert!(refusal["outcome"].as_str().unwrap().starts_with("refused: a candidate is readable only"), "{refusal}");
    assert!(entries.iter().any(|e| e["action"] == "upload-candidate"
        && e["outcome"].as_str().unwrap().starts_with("refused: the model checks")));

    // The coalition's state.
    let (_, coalition) = api.get("/api/coalition").await;
    assert_eq!(
        (coalition["tip"].as_u64(), coalition["members"].as_u64(), coalition["open_round"].as_u64()),
        (Some(0), Some(4), Some(round))
    );
    let (_, members) = api.get("/api/members").await;
    assert_eq!(members.as_array().unwrap().len(), 4);
    let (_, blocks) = api.get("/api/blocks").await;
    assert_eq!(blocks[0]["parameter_hash"], genesis_hash.as_str());
    let (_, current) = api.get("/api/rounds/current").await;
    assert_eq!((current["id"].as_u64(), current["phase"].as_str()), (Some(round), Some("commit")));
    assert_eq!(current["validators"].as_array().unwrap().len(), 2);
    assert_eq!(api.get("/api/rounds/99").await.0, StatusCode::NOT_FOUND);
    let (_, document) = api.get("/api/openapi.json").await;
    assert_eq!(document["components"]["securitySchemes"]["bearer"]["scheme"], "bearer", "{document}");
    for path in [
        "/api/auth/token",
        "/api/vault/candidates",
        "/api/vault/objects/{hash}",
        "/api/rounds/{id}",
        "/api/audit/checkpoint",
    ] {
        assert!(document["paths"][path].is_object(), "{path} in the OpenAPI document");
    }

    // A governance call for a wallet to sign: built and dry-run as the member, signed and
    // submitted elsewhere (here by the client, as a wallet would).
    let alice_token = api.sign_in("Alice").await;
    let (status, call) = api
        .http
        .post(format!("{}/api/calls/propose_action", api.url))
        .bearer_auth(&alice_token)
        .json(&serde_json::json!({ "action": "add_member", "argument": format!("{:#x}", address("Eve")) }))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    let call: Value = call.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{call}");
    assert_eq!(call["contract"], format!("{:#x}", c.address).as_str());
    let data = hex::decode(call["call_data"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let outcome = c.client().call(&alice, c.address, tclearn_client::CallData::from_bytes(data), 0).await.unwrap();
    assert!(!outcome.included.contract_events.is_empty(), "ProposalCreated");
    let (_, proposals) = api.get("/api/proposals").await;
    assert_eq!(proposals[0]["status"], "open", "{proposals}");
    let (status, body) = api
        .http
        .post(format!("{}/api/calls/vote", api.url))
        .bearer_auth(&alice_token)
        .json(&serde_json::json!({ "proposal": 7, "aye": true }))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    let body: Value = body.json().await.unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "no proposal 7: {body}");

    // Prometheus metrics count what happened.
    let metrics = api.http.get(format!("{}/metrics", api.url)).send().await.unwrap().text().await.unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0)
    };
    assert!(value("tclearn_api_uploads_total") >= 3.0 && value("tclearn_api_refusals_total") >= 5.0, "{metrics}");
    assert_eq!(value("tclearn_api_audit_entries"), api.audit_entries().await.len() as f64);

    // A member removed from the coalition (here Eve, never one, holding tokens as if she had
    // been) loses all its live tokens at its next request, on every route.
    let routes: Vec<(reqwest::Method, String)> = vec![
        (reqwest::Method::POST, "/api/audit/anchor".into()),
        (reqwest::Method::POST, "/api/calls/enact".into()),
        (reqwest::Method::POST, "/api/vault/candidates".into()),
        (reqwest::Method::GET, format!("/api/vault/objects/{genesis_hash}")),
        (reqwest::Method::POST, "/api/vault/data-ids".into()),
    ];
    for (method, path) in routes {
        let (eves, spare) = (state_token(&api, "Eve"), state_token(&api, "Eve"));
        let request = api.http.request(method, format!("{}{path}", api.url)).bearer_auth(&eves);
        let response = request.json(&serde_json::json!({ "proposal": 0 })).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        for token in [&eves, &spare] {
            assert_eq!(api.download(Some(token), &genesis_hash).await.0, StatusCode::UNAUTHORIZED, "{path}: revoked");
        }
    }

    // Tokens expire (3 s here).
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    assert_eq!(api.download(Some(&bob_token), &hash).await.0, StatusCode::UNAUTHORIZED, "expired");

    // Uploads wait in the spool directory as they arrive, and leave nothing there, stored or
    // refused: over the limit (1 MiB here), refused by the checks, or stored.
    let spool = scene.dir.path().join("api/spool");
    let spooled = || std::fs::read_dir(&spool).unwrap().count();
    let bob_now = api.sign_in("Bob").await;
    assert_eq!(api.upload(&bob_now, vec![7u8; (1 << 20) + 1]).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(spooled(), 0, "an upload over the limit leaves nothing");
    assert_eq!(api.upload(&bob_now, b"not a model".repeat(1000)).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(spooled(), 0, "a refused upload leaves nothing");
    let model = logistic(31);
    let (status, stored) = api.upload(&bob_now, model.clone()).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(spooled(), 0, "a stored upload leaves nothing");
    let object = stored["hash"].as_str().unwrap().to_string();
    assert_eq!(api.download(Some(&bob_now), &object).await, (StatusCode::OK, model.clone()));
    // A stored object tampered with (one bit of its last chunk): the download is cut, never
    // served with the wrong bytes.
    let at_rest = scene.dir.path().join("api/vault/objects").join(object.trim_start_matches("0x"));
    let mut envelope = std::fs::read(&at_rest).unwrap();
    *envelope.last_mut().unwrap() ^= 1;
    std::fs::write(&at_rest, &envelope).unwrap();
    // (Its one chunk does not open: the connection closes before the answer's head is even
    // sent, or, for a larger object, part way through its body.)
    let request = api.http.get(format!("{}/api/vault/objects/{object}", api.url)).bearer_auth(&bob_now);
    match request.send().await {
        Err(error) => assert!(error.is_request() && !error.is_timeout(), "{error}"),
        Ok(response) => {
            assert_eq!(response.status(), StatusCode::OK, "the head opens: the answer starts");
            match response.bytes().await {
                Ok(body) => assert!(body.len() < model.len(), "cut: {} of {} bytes", body.len(), model.len()),
                Err(error) => assert!(error.is_body() || error.is_decode(), "{error}"),
            }
        }
    }
    // The object restored, it downloads again: nothing else was lost.
    *envelope.last_mut().unwrap() ^= 1;
    std::fs::write(&at_rest, &envelope).unwrap();
    assert_eq!(api.download(Some(&bob_now), &object).await, (StatusCode::OK, model));
    api.stop().await;
}

/// The data IDs of `identifiers` by one blinded query, as `token` (none: anonymous), with the
/// answer's status; the IDs when it is 200.
async fn data_ids(api: &Api, token: Option<&str>, identifiers: &[String]) -> (StatusCode, Option<Vec<[u8; 32]>>) {
    let blinded = Blinded::new(identifiers).unwrap();
    let request = api.http.post(format!("{}/api/vault/data-ids", api.url)).json(&blinded.request);
    let response = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
    .send()
    .await
    .unwrap();
    let status = response.status();
    if status != StatusCode::OK {
        return (status, None);
    }
    let answer: DataIdsAnswer = response.json().await.unwrap();
    (status, Some(blinded.finalize(&answer).unwrap()))
}

/// A member that holds the whole public chain and its own credentials has no key to test a
/// guessed identifier against the data IDs on chain: every guess is a query to the vault. Its
/// dictionary sweep stops at the daily quota, every batch and the refusal are in the audit log,
/// and a restart of the API forgives nothing. Another member is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_sweep_of_patients_ids_is_online_throttled_and_in_the_audit() {
    let scene = scene().await;
    let dir = scene.dir.path().join("quota");
    let mut limited = config(&scene, dir.clone(), 600, None);
    limited.vault.data_id_quota = 1_000;
    let api = Api::start(limited.clone()).await;
    let (bob, charlie) = (api.sign_in("Bob").await, api.sign_in("Charlie").await);

    // His own hospital's rows (the demo's 569 identifiers): served.
    let demo: Vec<String> = (0..569).map(|row| format!("wdbc-{row}")).collect();
    for rows in [&demo[..MAX_BATCH], &demo[MAX_BATCH..]] {
        let (status, ids) = data_ids(&api, Some(&bob), rows).await;
        assert_eq!((status, ids.map(|ids| ids.len())), (StatusCode::OK, Some(rows.len())), "a full batch fits");
    }
    // The secret is nowhere in what he is given: the answers carry points and a proof.
    let file: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("data-id.key")).unwrap()).unwrap();
    let secret = file["seed"].as_str().unwrap();
    let answer = api
        .http
        .post(format!("{}/api/vault/data-ids", api.url))
        .bearer_auth(&bob)
        .json(&Blinded::new(&demo[..1]).unwrap().request)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(answer.contains("proof") && !answer.contains(secret), "{answer}");
    assert!(!api.get("/api/openapi.json").await.1.to_string().contains("data-id-key"), "no route serves it");

    // A sweep of guesses, 100 a query: four more fit in the day's 1,000, the fifth does not.
    // (570 spent so far.)
    let guesses: Vec<Vec<String>> =
        (0..5).map(|batch| (0..100).map(|i| format!("national-{}", batch * 100 + i)).collect()).collect();
    for batch in &guesses[..4] {
        assert_eq!(data_ids(&api, Some(&bob), batch).await.0, StatusCode::OK);
    }
    let refused = api
        .http
        .post(format!("{}/api/vault/data-ids", api.url))
        .bearer_auth(&bob)
        .json(&Blinded::new(&guesses[4]).unwrap().request)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 23 * 3_600 && wait <= 24 * 3_600, "retry after {wait} s: when the first batch leaves the day");
    assert_eq!(data_ids(&api, Some(&charlie), &guesses[4]).await.0, StatusCode::OK, "Charlie's own quota");

    // The audit log, which every member reads, shows each count and the refusal.
    let (_, entries) = api.get_as(&charlie, "/api/audit/entries?start=0&count=100").await;
    let bobs_account = Keypair::dev("Bob").unwrap().account_id().to_string();
    let outcomes: Vec<String> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| serde_json::from_str::<Value>(line.as_str().unwrap()).unwrap())
        .filter(|e| e["action"] == "data-ids" && e["account"] == bobs_account.as_str())
        .map(|e| e["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes[..7], ["ok 500", "ok 69", "ok 1", "ok 100", "ok 100", "ok 100", "ok 100"], "{outcomes:?}");
    assert!(outcomes[7].starts_with("refused: rate limited for "), "{outcomes:?}");

    // A restart forgives nothing: the counts are read back from the log.
    api.stop().await;
    let api = Api::start(limited).await;
    let bob = api.sign_in("Bob").await;
    assert_eq!(data_ids(&api, Some(&bob), &guesses[4]).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(data_ids(&api, Some(&bob), &guesses[4][..30]).await.0, StatusCode::OK, "what is left of the day");
}

/// A token issued by `api` to `name`, as sign-in would issue it to a member.
fn state_token(api: &Api, name: &str) -> String {
    api.state.sessions.issue(&Keypair::dev(name).unwrap().account_id()).unwrap().token
}

/// Replace the API's audit log with `edit` applied to its lines.
fn edit_log(data_dir: &std::path::Path, edit: impl FnOnce(&mut Vec<String>)) {
    let path = data_dir.join("audit.jsonl");
    let mut lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(String::from).collect();
    edit(&mut lines);
    std::fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_anchored_and_an_edit_a_removal_or_a_rollback_is_detected() {
    let scene = scene().await;
    let alice = Keypair::dev("Alice").unwrap();
    let client = scene.coalition.client().clone();
    let anchors_artifact = artifact("audit_anchors");
    let anchors = AuditAnchors::deploy(&client, &alice, &anchors_artifact).await.unwrap();
    let data_dir = scene.dir.path().join("api");
    let config = config(&scene, data_dir.clone(), 600, Some(anchors.address));
    let api = Api::start(config.clone()).await;
    let origin = alice.account_id();
    let coalition = scene.coalition.address;
    // A member checks the served log (entries are served to members only) against the anchors
    // and the receipts it holds.
    let verify = |url: String, receipts: Vec<Receipt>| {
        let (anchors, origin) = (anchors.clone(), origin);
        async move {
            let session = ApiClient::sign_in(&url, &Keypair::dev("Bob").unwrap()).await.unwrap();
            tclearn_api_client::verify::verify_served(&session, &anchors, &origin, &coalition, &receipts).await
        }
    };

    // Activity: uploads, downloads, refusals; anchored twice.
    let bob = api.sign_in("Bob").await;
    let anchor = |api: &Api, token: &str| {
        let request = api.http.post(format!("{}/api/audit/anchor", api.url)).bearer_auth(token.to_string());
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let charlie = api.sign_in("Charlie").await;
    for seed in 1..4 {
        let (_, stored) = api.upload(&bob, logistic(seed)).await;
        api.download(Some(&bob), stored["hash"].as_str().unwrap()).await;
        api.download(Some(&charlie), stored["hash"].as_str().unwrap()).await;
    }
    let (status, first) = anchor(&api, &bob).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!((first["index"].as_u64(), first["log_length"].as_u64()), (Some(0), Some(10)));
    let (status, _) = anchor(&api, &bob).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "nothing new to anchor");
    api.upload(&bob, b"junk".to_vec()).await;
    api.upload(&bob, logistic(9)).await;
    // Anyone's requests without a token are counted, not logged one by one: 200 of them make
    // one summary entry, written at the latest when the log is anchored.
    let stored = format!("0x{}", hex::encode(model_hash(&logistic(9))));
    for _ in 0..200 {
        assert_eq!(api.download(None, &stored).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(api.get("/api/audit/checkpoint").await.1["size"].as_u64(), Some(12), "not one entry each");
    let (_, second) = anchor(&api, &bob).await;
    assert_eq!((second["index"].as_u64(), second["log_length"].as_u64()), (Some(1), Some(13)));
    // Entries are read by members only; anyone else's attempt is counted like the rest.
    assert_eq!(api.get("/api/audit/entries?start=0&count=1").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api.get("/api/audit/proof/inclusion?index=0").await.0, StatusCode::UNAUTHORIZED);
    let (_, page) = api.get_as(&bob, "/api/audit/entries?start=12&count=1").await;
    let summary: Value = serde_json::from_str(page["entries"][0].as_str().unwrap()).unwrap();
    assert_eq!((summary["action"].as_str(), summary["account"].as_str()), (Some("refused-anonymous"), None));
    assert!(summary["outcome"].as_str().unwrap().starts_with("refused: 200 attempts since "), "{summary}");
    let on_chain = anchors.latest(&origin).await.unwrap().unwrap().1;
    let (_, checkpoint) = api.get("/api/audit/checkpoint").await;
    assert_eq!(format!("{:#x}", on_chain.root), checkpoint["root"].as_str().unwrap());
    // Bob's own client uploads after the last anchor, and keeps the API's signed receipt.
    let bob_client = ApiClient::sign_in(&api.url, &Keypair::dev("Bob").unwrap()).await.unwrap();
    bob_client.upload_candidate(logistic(10)).await.unwrap();
    let receipts = bob_client.receipts();
    assert_eq!((receipts.len(), receipts[0].index, receipts[0].size), (1, 13, 14));
    let verified = verify(api.url.clone(), receipts.clone()).await.unwrap();
    assert_eq!((verified.entries, verified.anchors, verified.anchored, verified.receipts), (14, 2, 13, 1));
    // Bob's entry names the nonce his client sent with the upload, so an earlier receipt given
    // again for a later access would name the wrong one; a request's nonce that is not 32 hex
    // digits is left out of its entry, its text never logged.
    let entry: Value = serde_json::from_str(&receipts[0].entry).unwrap();
    assert!(entry["nonce"].as_str().and_then(tclearn_api_client::receipt::parse_nonce).is_some(), "{entry}");
    let odd = reqwest::Client::new()
        .post(format!("{}/api/vault/data-ids", api.url))
        .json(&Blinded::new(&["wdbc-0".to_string()]).unwrap().request)
        .bearer_auth(&bob)
        .header(tclearn_api_client::receipt::NONCE_HEADER, "<script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    let header = odd.headers()[tclearn_api_client::receipt::HEADER].to_str().unwrap();
    let odd = Receipt::from_header(header).unwrap();
    assert!(!odd.entry.contains("nonce") && !odd.entry.contains("script"), "{}", odd.entry);

    // Inclusion and consistency proofs check out against the served checkpoints.
    let (_, proof) = api.get_as(&bob, "/api/audit/proof/inclusion?index=4").await;
    let at = tclearn_api_client::audit::Checkpoint {
        size: proof["checkpoint"]["size"].as_u64().unwrap(),
        root: tclearn_client::parse::hash(proof["checkpoint"]["root"].as_str().unwrap()).unwrap(),
    };
    let (_, page) = api.get_as(&bob, "/api/audit/entries?start=4&count=1").await;
    let leaf = page["entries"][0].as_str().unwrap().as_bytes().to_vec();
    assert!(tclearn_api_client::audit::verify_inclusion(
        &at,
        &leaf,
        4,
        &hex::decode(proof["proof"].as_str().unwrap()).unwrap()
    ));
    let (_, proof) = api.get("/api/audit/proof/consistency?from=10").await;
    let first_anchor = tclearn_api_client::audit::Checkpoint {
        size: 10,
        root: anchors.get(&origin, 0).await.unwrap().unwrap().root.0,
    };
    assert!(tclearn_api_client::audit::verify_consistency(
        &first_anchor,
        &at,
        &hex::decode(proof["proof"].as_str().unwrap()).unwrap()
    ));
    api.stop().await;

    // The operator tampers with the log on disk and restarts: each change is found.
    let original = std::fs::read_to_string(data_dir.join("audit.jsonl")).unwrap();
    type Edit = Box<dyn FnOnce(&mut Vec<String>)>;
    let tampered = |edit: Edit, receipts: Vec<Receipt>| {
        let (config, data_dir, original, verify) = (config.clone(), data_dir.clone(), original.clone(), verify);
        async move {
            std::fs::write(data_dir.join("audit.jsonl"), &original).unwrap();
            edit_log(&data_dir, edit);
            let api = Api::start(config).await;
            let outcome = verify(api.url.clone(), receipts).await;
            api.stop().await;
            outcome
        }
    };
    let edited =
        tampered(Box::new(|lines| lines[4] = lines[4].replace("\"ok\"", "\"refused: made up\"")), Vec::new()).await;
    assert!(
        matches!(edited, Err(VerifyError::Tampered(Tampering::Rewritten { anchor: 0, anchored: 10 }))),
        "{edited:?}"
    );
    let removed = tampered(
        Box::new(|lines| {
            lines.remove(10);
        }),
        Vec::new(),
    )
    .await;
    assert!(
        matches!(removed, Err(VerifyError::Tampered(Tampering::Rewritten { anchor: 1, anchored: 13 }))),
        "{removed:?}"
    );
    // Rolled back behind the latest anchor (an old backup restored, or the log cut to lose
    // what it records): the API refuses to serve it, and says why.
    std::fs::write(data_dir.join("audit.jsonl"), &original).unwrap();
    edit_log(&data_dir, |lines| lines.truncate(8));
    let refused = tclearn_api::bind(config.clone()).await.err().expect("a log behind its anchor: refused");
    assert!(refused.to_string().contains("holds 8 entries, but anchor 1 on chain covers 13"), "{refused}");
    let untouched = tampered(Box::new(|_| {}), receipts.clone()).await;
    assert!(untouched.is_ok(), "{untouched:?}");
    // After the last anchor, the anchors alone see nothing: the tail cut, or Bob's upload
    // rewritten as a refusal, verify against them. Bob's receipt catches both.
    let cut_tail = |lines: &mut Vec<String>| lines.truncate(13);
    let rewrite_tail = |lines: &mut Vec<String>| lines[13] = lines[13].replace("\"ok\"", "\"refused: made up\"");
    assert!(tampered(Box::new(cut_tail), Vec::new()).await.is_ok(), "anchors alone: unseen");
    assert!(tampered(Box::new(rewrite_tail), Vec::new()).await.is_ok(), "anchors alone: unseen");
    let cut = tampered(Box::new(cut_tail), receipts.clone()).await;
    assert!(
        matches!(cut, Err(VerifyError::Tampered(Tampering::CutBehindReceipt { index: 13, size: 14, served: 13 }))),
        "{cut:?}"
    );
    let rewritten = tampered(Box::new(rewrite_tail), receipts.clone()).await;
    assert!(
        matches!(rewritten, Err(VerifyError::Tampered(Tampering::ContradictsReceipt { index: 13, size: 14 }))),
        "{rewritten:?}"
    );

    // The CLI says the same.
    let cli = env!("CARGO_BIN_EXE_tclearn-api");
    std::fs::write(data_dir.join("audit.jsonl"), &original).unwrap();
    edit_log(&data_dir, |lines| lines.swap(1, 2));
    let api = Api::start(config.clone()).await;
    let output = tokio::process::Command::new(cli)
        .args(["audit-verify", "--api", &api.url, "--rpc", &scene.node.rpc_url, "--suri", "//Bob"])
        .args(["--audit-anchors", &format!("{:#x}", anchors.address)])
        .args(["--coalition", &format!("{:#x}", scene.coalition.address)])
        .arg("--anchors-metadata")
        .arg(artifacts_dir().join("audit_anchors.json"))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("rewritten: the first 10 entries"), "{stderr}");
    api.stop().await;
}

/// A local S3 endpoint: moto's server (`scripts/test.sh` installs it from PyPI), killed when
/// dropped.
struct Moto {
    url: String,
    _child: tokio::process::Child,
}

impl Moto {
    async fn start() -> Self {
        let binary = std::env::var_os("TCLEARN_MOTO_SERVER").map(PathBuf::from).unwrap_or_else(|| {
            let cache = std::env::var_os("TCLEARN_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/tclearn"));
            cache.join("moto-venv/bin/moto_server")
        });
        let port = tclearn_e2e::free_port();
        let child = tokio::process::Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/test.sh installs moto_server)", binary.display()));
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        tclearn_e2e::eventually(Duration::from_secs(30), "moto_server", || {
            let request = http.put(format!("{url}/tclearn-vault"));
            async move { request.send().await.ok().filter(|r| r.status().is_success()) }
        })
        .await;
        Self { url, _child: child }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_keeps_its_objects_encrypted_on_an_s3_endpoint() {
    let scene = scene().await;
    let moto = Moto::start().await;
    // This API also anchors its audit log on a schedule, every second.
    let alice = Keypair::dev("Alice").unwrap();
    let anchors = AuditAnchors::deploy(scene.coalition.client(), &alice, &artifact("audit_anchors")).await.unwrap();
    let mut config = config(&scene, scene.dir.path().join("api"), 600, Some(anchors.address));
    config.anchor_every = 1;
    config.vault.vault_store = Some("s3://tclearn-vault/coalition".into());
    config.vault.vault_options = [
        ("aws_endpoint", moto.url.as_str()),
        ("aws_allow_http", "true"),
        ("aws_region", "us-east-1"),
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let api = Api::start(config.clone()).await;
    let token = api.sign_in("Bob").await;
    let candidate = logistic(3);
    let (status, stored) = api.upload(&token, candidate.clone()).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    let hash = stored["hash"].as_str().unwrap().to_string();
    assert_eq!(api.upload(&token, candidate.clone()).await.1["hash"], hash.as_str(), "written once, found again");
    let (status, bytes) = api.download(Some(&token), &hash).await;
    assert_eq!((status, bytes == candidate), (StatusCode::OK, true));

    // In the bucket: the envelope, not the model.
    let bucket = tclearn_api::vault::s3_store("s3://tclearn-vault/coalition", &config.vault.vault_options).unwrap();
    let key = object_store::path::Path::from(format!("objects/{}", hash.trim_start_matches("0x")));
    let raw = object_store::ObjectStoreExt::get(&bucket, &key).await.unwrap().bytes().await.unwrap();
    assert!(raw.starts_with(b"tclearn/vault/v3"), "{} bytes at {key}", raw.len());
    assert!(!raw.windows(64).any(|w| w == &candidate[candidate.len() - 64..]), "the weights are not in the clear");

    // An upload dropped half-way (the member reset its connection while the vault sealed its
    // model, so the handler's future was dropped) leaves no parts in the bucket: the vault
    // aborts the multipart upload (it once left it open, its parts kept and billed for good).
    let vault = tclearn_api::vault::Vault::new(bucket.clone(), tclearn_api::vault::MasterKey::generate(), 64 << 20);
    let (mut sender, reader) = tokio::io::duplex(1 << 20);
    let feeding = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        sender.write_all(&vec![7u8; 12 << 20]).await.unwrap();
        std::future::pending::<()>().await; // more never comes, and the pipe stays open
        drop(sender);
    });
    let sealing = tokio::spawn(async move { vault.put_from(&[9; 32], 32 << 20, reader).await });
    let uploads = || {
        let request = reqwest::Client::new().get(format!("{}/tclearn-vault?uploads", moto.url));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let open = || async { uploads().await.contains("<UploadId>").then_some(()) };
    tclearn_e2e::eventually(Duration::from_secs(30), "the dropped upload under way", open).await;
    sealing.abort();
    assert!(sealing.await.unwrap_err().is_cancelled());
    let gone = || async { (!uploads().await.contains("<UploadId>")).then_some(()) };
    tclearn_e2e::eventually(Duration::from_secs(30), "the dropped upload aborted", gone).await;
    feeding.abort();

    let anchored = || async { anchors.latest(&alice.account_id()).await.unwrap().filter(|(_, a)| a.log_length >= 3) };
    tclearn_e2e::eventually(Duration::from_secs(30), "the scheduled anchoring", anchored).await;

    // The master key lost, or another one given: the API refuses to start rather than make a
    // new key that would leave every stored object unreadable.
    api.stop().await;
    let key_file = scene.dir.path().join("api/vault.key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let refused = tclearn_api::bind(config.clone()).await.err().expect("no key, objects stored: refused");
    assert!(refused.to_string().contains("but its master key"), "{refused}");
    assert!(!key_file.exists(), "no new key was made");
    let mut other = config.clone();
    other.vault.vault_key = Some(tclearn_client::Secret("11".repeat(32)));
    let refused = tclearn_api::bind(other).await.err().expect("another key: refused");
    assert!(refused.to_string().contains("is sealed under master key"), "{refused}");
    std::fs::write(&key_file, key).unwrap();

    // Another API on the same bucket and master key serves it.
    let api = Api::start(config).await;
    let token = api.sign_in("Bob").await;
    let (status, bytes) = api.download(Some(&token), &hash).await;
    assert_eq!((status, bytes == candidate), (StatusCode::OK, true));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reads_the_chain_again_after_the_node_restarts() {
    let mut scene = scene().await;
    let api = Api::start(config(&scene, scene.dir.path().join("api"), 600, None)).await;
    assert_eq!(api.get("/api/health").await.0, StatusCode::OK);
    scene.node.restart().await;
    let healthy = || async { (api.get("/api/health").await.0 == StatusCode::OK).then_some(()) };
    tclearn_e2e::eventually(Duration::from_secs(30), "the API back on the restarted node", healthy).await;
    api.sign_in("Dave").await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_certificate_the_api_serves_https_only() {
    let scene = scene().await;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (scene.dir.path().join("cert.pem"), scene.dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let mut config = config(&scene, scene.dir.path().join("api"), 600, None);
    (config.tls_cert, config.tls_key) = (Some(cert), Some(key));
    tclearn_api_client::install_crypto_provider();
    let server = tclearn_api::bind(config).await.unwrap();
    let port = server.local_addr().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));

    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let health = trusting.get(format!("https://localhost:{port}/api/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.headers()["strict-transport-security"], "max-age=31536000", "HSTS under TLS");
    assert!(
        reqwest::get(format!("http://localhost:{port}/api/health")).await.is_err(),
        "no plain HTTP on the TLS port"
    );
    assert!(
        reqwest::get(format!("https://localhost:{port}/api/health")).await.is_err(),
        "an unknown certificate is not trusted"
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// Read from `stream` until the server closes it, or `within` passes; whether it closed.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_slow_clients_and_held_connections_are_bounded() {
    use tokio::io::AsyncWriteExt;
    let scene = scene().await;

    // Per account: Bob over his rate gets 429 with Retry-After; Charlie is served meanwhile.
    let mut limited = config(&scene, scene.dir.path().join("per-account"), 600, None);
    (limited.rate_per_account, limited.burst_per_account) = (1, 3);
    let api = Api::start(limited).await;
    let (bob, charlie) = (api.sign_in("Bob").await, api.sign_in("Charlie").await);
    let one = Blinded::new(&["wdbc-0".to_string()]).unwrap().request;
    let key =
        |token: String| api.http.post(format!("{}/api/vault/data-ids", api.url)).json(&one).bearer_auth(token).send();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(key(bob.clone()).await.unwrap());
    }
    let over = statuses.iter().find(|r| r.status() == StatusCode::TOO_MANY_REQUESTS).expect("Bob over his rate");
    assert!(over.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(statuses.iter().filter(|r| r.status() == StatusCode::OK).count(), 3, "his burst");
    assert_eq!(key(charlie.clone()).await.unwrap().status(), StatusCode::OK, "Charlie's own bucket");
    // Views that take a chain read per block ever made are read once per best block, not per
    // request (the chain seals only on transactions here: its best block stays).
    for _ in 0..20 {
        assert_eq!(api.get("/api/blocks").await.0, StatusCode::OK);
        assert_eq!(api.get("/api/members").await.0, StatusCode::OK);
        assert_eq!(api.get("/api/proposals").await.0, StatusCode::OK);
    }
    let views = &api.state.views;
    let reads = [views.blocks.reads(), views.members.reads(), views.proposals.reads()];
    assert!(reads.iter().all(|r| (1..=2).contains(r)), "reads of blocks, members, proposals: {reads:?}");
    api.stop().await;

    // Per address, on every route, anonymous or not; the buckets fill again.
    let mut limited = config(&scene, scene.dir.path().join("per-address"), 600, None);
    (limited.rate_per_address, limited.burst_per_address) = (5, 10);
    let api = Api::start(limited).await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(api.get("/api/health").await.0);
    }
    let served = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!((10..=15).contains(&served), "a burst of 10 and 5 per second: {statuses:?}");
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(api.get("/api/health").await.0, StatusCode::OK);
    api.stop().await;

    // Slow clients: headers that never end, a body that stalls, connections held open idle.
    let mut slow = config(&scene, scene.dir.path().join("slow"), 600, None);
    (slow.header_timeout, slow.body_timeout, slow.max_connections) = (1, 1, 4);
    let api = Api::start(slow).await;
    let address = api.url.trim_start_matches("http://").to_string();
    let mut half_headers = tokio::net::TcpStream::connect(&address).await.unwrap();
    half_headers.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert!(closed_within(&mut half_headers, Duration::from_secs(5)).await, "unfinished headers are cut off");

    let token = api.sign_in("Bob").await;
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/vault/candidates HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 100000\r\n\r\n0123456789"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = async {
        use tokio::io::AsyncReadExt;
        stalled.read_to_end(&mut answer).await
    };
    tokio::time::timeout(Duration::from_secs(5), read).await.expect("a stalled body is answered").unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A body trickled a byte at a time never stalls; the whole upload has the body timeout and
    // its limit at 256 KiB/s (here 1 s + 4 s). Meanwhile Bob's second upload is refused at once
    // (one at a time per member) and Charlie's is served.
    let mut trickle = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/vault/candidates HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 1000000\r\n\r\n"
    );
    trickle.write_all(head.as_bytes()).await.unwrap();
    let trickling = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (started, mut answer, mut buffer) = (std::time::Instant::now(), Vec::new(), [0u8; 4096]);
        while started.elapsed() < Duration::from_secs(20) && trickle.write_all(b"x").await.is_ok() {
            match tokio::time::timeout(Duration::from_millis(300), trickle.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => answer.extend_from_slice(&buffer[..n]),
                Err(_) => {}
            }
        }
        (started.elapsed(), String::from_utf8_lossy(&answer).to_string())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let upload = |token: String| {
        api.http.post(format!("{}/api/vault/candidates", api.url)).bearer_auth(token).body(vec![0u8; 10]).send()
    };
    assert_eq!(upload(token.clone()).await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS, "Bob's second upload");
    let charlie = api.sign_in("Charlie").await;
    assert_eq!(upload(charlie).await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY, "Charlie's is checked");
    let (took, answer) = trickling.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408") && took < Duration::from_secs(15), "after {took:?}: {answer}");

    // Four idle connections hold every slot: a fifth is served once they time out, not before.
    // (First the client's own pooled connections time out, idle.)
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let health = fresh.get(format!("{}/api/health", api.url)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(500), "served after {waited:?}, while four connections held the slots");
    for mut connection in idle {
        assert!(closed_within(&mut connection, Duration::from_secs(5)).await, "idle connections are closed");
    }
    let entries = api.audit_entries().await;
    assert!(entries.iter().any(|e| e["outcome"].as_str().unwrap_or_default().contains("stalled")), "recorded");
    api.stop().await;

    // One address holds at most its share of the connections: two event streams (which never
    // end) from 127.0.0.1 take it, a third connection from there is closed at once, and
    // 127.0.0.2 is served.
    let mut shared = config(&scene, scene.dir.path().join("per-peer"), 600, None);
    (shared.connections_per_address, shared.header_timeout) = (2, 4);
    let api = Api::start(shared).await;
    let address = api.url.trim_start_matches("http://").to_string();
    // The client's own pooled connections go idle and are closed first.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(format!("GET /api/events HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        tokio::io::AsyncReadExt::read_exact(&mut stream, &mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        streams.push(stream);
    }
    let mut third = tokio::net::TcpStream::connect(&address).await.unwrap();
    assert!(closed_within(&mut third, Duration::from_secs(2)).await, "a third connection from one address");
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = other.connect(address.parse().unwrap()).await.unwrap();
    other
        .write_all(format!("GET /api/health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut other, &mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    drop(streams);
    api.stop().await;
}
