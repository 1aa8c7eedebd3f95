//! The dashboard in a real browser: Debian's headless Chromium, driven by `web/test/browser.mjs`
//! (puppeteer-core), against the API on a dev node whose model chain has three blocks. The
//! page draws the chain chart; Charlie, through the injected test wallet, signs in, the page
//! verifies the audit log (served to members only) against both anchors on chain in the
//! contract the coalition records (the screenshot is kept as a test artifact), and Charlie votes
//! on an open proposal: the vote lands on chain and the page's tally shows it.
//!
//! Needs `npm ci && npm run build` in `frontend-api/web` and `chromium` (`scripts/test.sh` does
//! both).

mod common;

use common::{config, logistic, scene_of, Api};
use std::{path::PathBuf, time::Duration};
use tclearn_client::{
    anchors::AuditAnchors,
    coalition::{Action, Coalition, Phase, Report, Scores, Verdict, DRAW_DELAY},
    Keypair, H160, H256,
};
use tclearn_e2e::{artifact, seal_blocks};
use tclearn_model::hash::model_hash;

/// Play one round by hand: `proposer` proposes `candidate`, every drawn validator finds
/// `g_metric` with the same digest, the general seals and the others attest.
async fn append_block(c: &Coalition, proposer: &Keypair, candidate: H256, g_metric: i64, seed: u8) {
    let alice = Keypair::dev("Alice").unwrap();
    let me = alice.account_id();
    let keys: Vec<Keypair> = ["Alice", "Bob", "Dave"].iter().map(|n| Keypair::dev(n).unwrap()).collect();
    let key_of = |address: H160| keys.iter().find(|k| k.address() == address).unwrap();
    let parent = c.height(&me).await.unwrap();
    let data_ids: Vec<H256> = (0..4).map(|i| H256::repeat_byte(seed.wrapping_mul(8).wrapping_add(i))).collect();
    let (round, _) = c.propose(proposer, parent, candidate, b"objects/candidate", 4, &data_ids, None).await.unwrap();
    seal_blocks(c.client(), &alice, DRAW_DELAY + 1).await;
    assert_eq!(c.advance(&alice).await.unwrap().0, Phase::Commit);
    let validators = c.round_validators(&me, round).await.unwrap();
    let report = Report {
        round,
        candidate,
        verdict: Verdict::Scored(Scores { g_metric, g_digest: H256::repeat_byte(seed), l_keeps: true, l_size: 0 }),
    };
    let salt = [seed; 32];
    for v in &validators {
        c.commit(key_of(*v), round, c.commitment(v, &report, &salt)).await.unwrap();
    }
    for v in &validators {
        c.reveal(key_of(*v), round, &report, &salt).await.unwrap();
    }
    let general = c.round(&me, round).await.unwrap().unwrap().general.expect("a general");
    let (block_hash, _) = c.seal(key_of(general), round, b"objects/candidate").await.unwrap();
    for v in validators.iter().filter(|v| **v != general) {
        if c.round(&me, round).await.unwrap().unwrap().phase == Phase::Appended {
            break;
        }
        c.attest(key_of(*v), round, block_hash).await.unwrap();
    }
    assert_eq!(c.round(&me, round).await.unwrap().unwrap().phase, Phase::Appended);
}

/// Where test artifacts go: `$TCLEARN_TEST_ARTIFACTS`, else `test-artifacts` in the cache.
fn artifacts() -> PathBuf {
    let dir = std::env::var_os("TCLEARN_TEST_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("TCLEARN_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/tclearn"));
        cache.join("test-artifacts")
    });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_the_chain_and_a_vote_signed_in_the_browser_lands_on_chain() {
    // Alice, Bob and Dave found the coalition; with two validators per round, each round's
    // panel is the two members other than its proposer.
    let scene = scene_of(&["Alice", "Bob", "Dave"]).await;
    let c = &scene.coalition;
    let (alice, bob, dave) =
        (Keypair::dev("Alice").unwrap(), Keypair::dev("Bob").unwrap(), Keypair::dev("Dave").unwrap());
    let charlie = Keypair::dev("Charlie").unwrap();
    let me = alice.account_id();

    // Three blocks: genesis at 0.80, Bob's at 0.84, Dave's at 0.87.
    append_block(c, &bob, H256(model_hash(&logistic(1))), 840_000, 1).await;
    append_block(c, &dave, H256(model_hash(&logistic(2))), 870_000, 2).await;
    assert_eq!(c.height(&me).await.unwrap(), 2);

    // Charlie joins by governance, never having sent a transaction: the page maps his account.
    // The coalition records its audit-anchors contract, also by governance: the page reads the
    // anchors from the contract the coalition names.
    let anchors = AuditAnchors::deploy(c.client(), &alice, &artifact("audit_anchors")).await.unwrap();
    let (admit, _) = c.propose_action(&alice, &Action::AddMember(charlie.address())).await.unwrap();
    let (record, _) = c.propose_action(&alice, &Action::SetAuditAnchors(Some(anchors.address))).await.unwrap();
    for proposal in [admit, record] {
        c.vote(&alice, proposal, true).await.unwrap();
        c.vote(&bob, proposal, true).await.unwrap();
    }
    let due = c.proposal(&me, admit).await.unwrap().unwrap().voting_ends + 1;
    let best = c.client().best_number().await.unwrap() as u32;
    seal_blocks(c.client(), &alice, due.saturating_sub(best)).await;
    c.enact(&alice, admit).await.unwrap();
    c.enact(&alice, record).await.unwrap();
    assert_eq!(c.audit_anchors(&me).await.unwrap(), Some(anchors.address));
    assert!(c.members(&me).await.unwrap().iter().any(|m| m.account == charlie.address()));
    assert!(!c.client().is_mapped(&charlie.account_id()).await.unwrap());

    // An open proposal with Alice's aye: admit Eve.
    let (proposal, _) =
        c.propose_action(&alice, &Action::AddMember(Keypair::dev("Eve").unwrap().address())).await.unwrap();
    c.vote(&alice, proposal, true).await.unwrap();

    // The API with an audit log anchored twice: the page checks every anchor.
    let api = Api::start(config(&scene, scene.dir.path().join("api"), 600, Some(anchors.address))).await;
    let token = api.sign_in("Bob").await;
    let anchor = || async {
        let anchored = api.http.post(format!("{}/api/audit/anchor", api.url)).bearer_auth(&token).send().await.unwrap();
        let status = anchored.status();
        assert!(status.is_success(), "anchoring: {status} {}", anchored.text().await.unwrap());
    };
    api.upload(&token, logistic(5)).await;
    anchor().await;
    api.download(Some(&token), &format!("0x{}", hex::encode(model_hash(&logistic(5))))).await;
    anchor().await;
    let on_chain = anchors.all(&me).await.unwrap();
    assert_eq!(on_chain.len(), 2);
    let verdict =
        format!("verified against 2 anchors on chain, the latest covering {} entries", on_chain[1].log_length);
    assert_eq!(api.get("/").await.0, reqwest::StatusCode::OK, "the page is served");
    // Each member's contribution: the gains of its blocks (0.80 -> 0.84 -> 0.87).
    let (_, members) = api.get("/api/members").await;
    let contribution = |key: &Keypair| {
        let address = format!("{:#x}", key.address());
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["address"] == address.as_str())
            .and_then(|m| m["contribution"].as_i64())
    };
    assert_eq!((contribution(&bob), contribution(&dave), contribution(&alice)), (Some(40_000), Some(30_000), Some(0)));

    // The browser.
    let web = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/web"));
    let screenshot = artifacts().join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let run = tokio::process::Command::new("node")
        .arg(web.join("test/browser.mjs"))
        .args(["--url", &api.url, "--proposal", &proposal.to_string(), "--account", "//Charlie", "--ayes", "2"])
        .args(["--audit", &verdict])
        .arg("--screenshot")
        .arg(&screenshot)
        .current_dir(&web)
        .kill_on_drop(true)
        .output();
    let output =
        tokio::time::timeout(Duration::from_secs(180), run).await.expect("the browser test within 3 minutes").unwrap();
    let log = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "browser test failed:\n{log}");
    println!("{log}\nscreenshot: {}", screenshot.display());
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000, "a screenshot of the page");

    // On chain: Charlie's account was mapped from the page, and his aye is counted.
    let tallied = c.proposal(&me, proposal).await.unwrap().unwrap();
    assert_eq!((tallied.ayes, tallied.nays), (2, 0));
    assert!(c.client().is_mapped(&charlie.account_id()).await.unwrap());
    api.stop().await;
}
