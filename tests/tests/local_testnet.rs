//! The `local` chain: four validators (Alice, Bob, Charlie, Dave) on loopback produce blocks with
//! BABE and finalize them with GRANDPA, which needs more than 2/3 of them, i.e. all four here
//! online save one.

use std::time::Duration;
use tclearn_e2e::{eventually, Node, NodeConfig};

fn validator(name: &str, bootnode: Option<&str>) -> NodeConfig {
    // A fixed node key per validator: validators must not generate one on the fly.
    let key = format!("{:0>64}", hex::encode(name));
    let mut args = vec!["--chain", "local", "--validator", "--node-key", &key];
    let flag = format!("--{}", name.to_lowercase());
    args.push(&flag);
    if let Some(bootnode) = bootnode {
        args.extend(["--bootnodes", bootnode]);
    }
    NodeConfig::with_args(&args)
}

#[tokio::test]
async fn four_validators_produce_and_finalize_blocks() {
    let alice = Node::start(validator("Alice", None)).await;
    let peer_id = eventually(Duration::from_secs(30), "Alice's peer id in her log", || async { alice.peer_id() }).await;
    let bootnode = format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer_id}", alice.p2p_port);
    let mut nodes = vec![alice];
    for name in ["Bob", "Charlie", "Dave"] {
        nodes.push(Node::start(validator(name, Some(&bootnode))).await);
    }
    let mut clients = Vec::new();
    for node in &nodes {
        clients.push(node.client().await);
    }

    // Finality must pass block 3 on every node, and keep growing.
    let finality = async {
        loop {
            let mut lowest = u64::MAX;
            for client in &clients {
                lowest = lowest.min(client.finalized_number().await.unwrap_or(0));
            }
            if lowest >= 3 {
                return lowest;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let Ok(first) = tokio::time::timeout(Duration::from_secs(180), finality).await else {
        let logs: Vec<String> = nodes.iter().map(|n| n.log_tail()).collect();
        panic!("finalized height did not reach 3 on all four within 180 s\n{}", logs.join("\n"));
    };
    let later = eventually(Duration::from_secs(120), "finalized height to grow", || async {
        let height = clients[3].finalized_number().await.ok()?;
        (height > first).then_some(height)
    })
    .await;
    assert!(later > first);

    // All four agree on the finalized chain: the same hash at height `first`.
    let mut hashes = Vec::new();
    for client in &clients {
        let hash = client.block_hash(first).await.expect("a finalized block hash");
        hashes.push(hash);
    }
    assert!(hashes.windows(2).all(|pair| pair[0] == pair[1]), "forked finality: {hashes:?}");
    for node in &nodes {
        let log = node.log_tail();
        assert!(!log.contains("panicked"), "{log}");
    }
    for node in nodes {
        node.stop().await;
    }
}

/// `--dev` without `--sealing`: Alice alone authors a block every 3 s slot and GRANDPA, with her
/// as its only voter, finalizes them.
#[tokio::test]
async fn the_dev_chain_authors_and_finalizes_on_its_own() {
    let node = Node::start(NodeConfig::with_args(&["--dev"])).await;
    let client = node.client().await;
    let started = std::time::Instant::now();
    let height = eventually(Duration::from_secs(60), "finalized height >= 3 on --dev", || async {
        let height = client.finalized_number().await.ok()?;
        (height >= 3).then_some(height)
    })
    .await;
    // Blocks come one per 3 s slot: three of them take at least two slot lengths.
    assert!(started.elapsed() >= Duration::from_secs(6), "{height} blocks in {:?}", started.elapsed());
    assert!(client.best_number().await.unwrap() >= height);
    node.stop().await;
}
