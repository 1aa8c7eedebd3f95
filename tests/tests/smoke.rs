//! Smoke test of the whole foundation: start `tclearn-node --dev`, deploy an ink! 6 contract
//! built to PolkaVM, call a message that changes state and emits an event, read both back; and
//! the two ways a call fails: the contract refuses (typed error decoded from its revert data) and
//! the runtime refuses (module error by name).

use tclearn_client::{
    anchors::{Anchor, AnchorError, Anchored},
    decode_return, Error, Keypair, H256,
};
use tclearn_e2e::{artifact, Node, NodeConfig};

#[tokio::test]
async fn deploy_call_and_read_back_state_and_event() {
    let node = Node::start(NodeConfig::dev_instant()).await;
    let client = node.client().await;
    let contract = artifact("audit_anchors");
    let meta = &contract.metadata;
    let alice = Keypair::dev("Alice").unwrap();

    // Deploy: dry run, then instantiate_with_code with the limits it reported.
    let deployed = client
        .deploy(&alice, &contract.code, meta.constructor("new").unwrap().call(), 0, None)
        .await
        .unwrap_or_else(|e| panic!("deploy: {e}\n{}", node.log_tail()));
    assert!(deployed.dry_run.weight_required.ref_time > 0);
    assert!(deployed.included.storage_deposit_limit > 0, "a new contract pays a deposit");

    // A message that changes state and emits an event.
    let root = H256::from([0xAB; 32]);
    let anchor = meta.message("anchor").unwrap().call().arg(&root).arg(&10u64);
    let outcome = client.call(&alice, deployed.address, anchor, 0).await.unwrap();
    assert_eq!(outcome.decode::<Result<u64, AnchorError>>().unwrap(), Ok(0));

    // The event, read back from the block.
    let topic = meta.event_topic("Anchored").unwrap().expect("Anchored has a signature topic");
    let events = &outcome.included.contract_events;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].contract, deployed.address);
    let event: Anchored = events[0].decode_if(&topic).expect("an Anchored event").unwrap();
    assert_eq!(event, Anchored { index: 0, root, log_length: 10 });

    // The state, read back with a dry run (any account may read).
    let bob = Keypair::dev("Bob").unwrap();
    let count: u64 =
        client.read(&bob.account_id(), deployed.address, meta.message("count").unwrap().call()).await.unwrap();
    assert_eq!(count, 1);
    let stored: Option<Anchor> =
        client.read(&bob.account_id(), deployed.address, meta.message("get").unwrap().call().arg(&0u64)).await.unwrap();
    let stored = stored.expect("anchor 0 is stored");
    assert_eq!((stored.root, stored.log_length), (root, 10));
    assert!(stored.block >= 1 && stored.timestamp > 0, "{stored:?}");

    // The contract refuses Bob: the call reverts in its dry run and is never submitted.
    let best_before = client.best_number().await.unwrap();
    let refused = client
        .call(&bob, deployed.address, meta.message("anchor").unwrap().call().arg(&root).arg(&11u64), 0)
        .await
        .unwrap_err();
    let Error::Reverted { contract: Some(address), data } = refused else {
        panic!("expected a revert, got {refused}");
    };
    assert_eq!(address, deployed.address);
    assert_eq!(decode_return::<Result<u64, AnchorError>>(&data).unwrap(), Err(AnchorError::NotOperator));
    // Bob's one transaction was his account mapping; the refused call made no block.
    assert!(client.best_number().await.unwrap() <= best_before + 1);

    // The runtime refuses code that is not a valid program, and says which error it is.
    let refused = client.deploy(&alice, b"PVM\0not a program", vec![], 0, None).await.unwrap_err();
    let Error::Module { pallet, error, .. } = refused else {
        panic!("expected a module error, got {refused}");
    };
    assert_eq!(pallet, "Revive");
    assert!(!error.is_empty());

    node.stop().await;
}

/// Ask a `--sealing manual` node to seal one block, finalized or not (`engine_createBlock`).
async fn create_block(node: &Node, finalize: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = node.rpc_url.trim_start_matches("ws://").to_string();
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"engine_createBlock","params":[true,{finalize},null]}}"#);
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.contains("\"result\""), "{response}");
}

#[tokio::test]
async fn a_transaction_waits_for_its_block_within_a_timeout_not_forever_for_finality() {
    use std::time::{Duration, Instant};
    use tclearn_client::WaitFor;
    // Blocks are made on demand and never finalized: as under a GRANDPA stall.
    let node = Node::start(NodeConfig::with_args(&["--dev", "--sealing", "manual"])).await;
    let alice = Keypair::dev("Alice").unwrap();
    let bob = Keypair::dev("Bob").unwrap().account_id();
    let finalized = node.client().await.with_submit_timeout(Duration::from_secs(3));
    let started = Instant::now();
    let (outcome, ()) = tokio::join!(finalized.transfer(&alice, &bob, 1_000_000), async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        create_block(&node, false).await;
    });
    assert!(matches!(outcome, Err(Error::Timeout(_))), "{:?}", outcome.map(|_| ()));
    assert!(started.elapsed() < Duration::from_secs(10), "gave up after {:?}", started.elapsed());

    // In a block is enough for a caller that checks the chain before acting again.
    let in_block = node.client().await.with_wait_for(WaitFor::InBlock).with_submit_timeout(Duration::from_secs(20));
    let (outcome, ()) = tokio::join!(in_block.transfer(&alice, &bob, 1_000_000), async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        create_block(&node, false).await;
    });
    assert!(outcome.is_ok(), "{:?}", outcome.map(|_| ()));
}

/// Two programs of one key (a member's oracle and its `tclearn propose`, say) submit at once.
/// subxt signs with the nonce of the best block, which does not count what waits in the pool, so
/// the second of two concurrent transactions took the first's nonce and the node refused it
/// ("The priority of the transaction is too low"). The client signs with the pool's next nonce
/// and signs again when the nonce was taken meanwhile: every transaction lands.
#[tokio::test]
async fn two_programs_with_one_key_submit_at_once() {
    let node = Node::start(NodeConfig::dev_interval(2000)).await;
    let (first, second) = (node.client().await, node.client().await);
    let alice = Keypair::dev("Alice").unwrap();
    let ferdie = Keypair::dev("Ferdie").unwrap().account_id();
    let before = first.free_balance(&ferdie).await.unwrap();
    let mut sent = 0u128;
    for round in 0..3u128 {
        let (a, b) =
            tokio::join!(first.transfer(&alice, &ferdie, 1 + round), second.transfer(&alice, &ferdie, 2 + round));
        a.unwrap_or_else(|e| panic!("round {round}, first program: {e}\n{}", node.log_tail()));
        b.unwrap_or_else(|e| panic!("round {round}, second program: {e}\n{}", node.log_tail()));
        sent += 3 + 2 * round;
    }
    assert_eq!(first.free_balance(&ferdie).await.unwrap(), before + sent);
    node.stop().await;
}
