//! Round latency on the four-validator network (`tests/support/network.rs`: zombienet, one
//! oracle per validator on its own node, the members' API): seconds and blocks from
//! `tclearn propose` to the appended block, split by phase, and the oracles' evaluation time.
//!
//! Each round a member trains 30 new rows (not timed) and proposes with `tclearn propose`; the
//! benchmark follows Alice's node block by block (polling every 100 ms) and notes when each
//! event of the round first appears:
//! - submit: from the command's start to `RoundOpened` (the vault upload and the transaction);
//! - draw: to `ValidatorsDrawn` (the contract's `DRAW_DELAY` blocks);
//! - commit: to the last `Committed`;
//! - reveal: to `RoundTallied`;
//! - seal: to `Sealed` (the general's seal);
//! - attest: to `BlockAppended`.
//!
//! Evaluation is each oracle's `tclearn_oracle_evaluation_seconds` (Prometheus) over the round:
//! the slowest drawn validator's, which the commit phase waits for.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/support/network.rs"]
mod network;

use network::CoalitionNetwork;
use std::time::{Duration, Instant};
use tclearn_client::coalition::{BlockAppended, Committed, RoundOpened, RoundTallied, Sealed, ValidatorsDrawn};

const ROUNDS: usize = 7;
const PHASES: [&str; 7] = ["submit", "draw", "commit", "reveal", "seal", "attest", "total"];

/// `tclearn_oracle_evaluation_seconds_sum` of every oracle.
async fn evaluation_seconds(net: &CoalitionNetwork) -> Vec<f64> {
    let mut sums = Vec::new();
    for i in 0..network::NAMES.len() {
        let addr = net.metrics_addr(i).expect("the oracles serve metrics");
        let body = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
        let sum = body
            .lines()
            .find_map(|l| l.strip_prefix("tclearn_oracle_evaluation_seconds_sum "))
            .map_or(0.0, |v| v.trim().parse().unwrap());
        sums.push(sum);
    }
    sums
}

fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[0], values[values.len() / 2], values[values.len() - 1])
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let net = CoalitionNetwork::start(dir.path(), 20, true).await;
    let c = &net.coalition;
    // Seconds and blocks per phase, per round; the slowest evaluation per round.
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); PHASES.len()];
    let mut blocks: Vec<Vec<f64>> = vec![Vec::new(); PHASES.len()];
    let mut evaluation = Vec::new();
    for round in 0..ROUNDS {
        let who = round % network::NAMES.len();
        let candidate = net.train(who, &format!("r{round}"), round as u64 + 1);
        let evaluated_before = evaluation_seconds(&net).await;
        let mut next = c.client().best_number().await.unwrap() + 1;
        let start_block = next - 1;
        let started = Instant::now();
        let propose = net.propose(who, &candidate);
        // (seconds, block) at which each phase ended; `commits` counts the commitments seen.
        let mut ends: Vec<Option<(f64, u64)>> = vec![None; PHASES.len()];
        let mut commits = 0;
        let id = round as u64;
        while ends[5].is_none() {
            assert!(started.elapsed() < Duration::from_secs(600), "round {id} did not end:\n{}", net.logs());
            let best = c.client().best_number().await.unwrap();
            while next <= best {
                let (_, events) = c.client().block_contract_events(next).await.unwrap();
                let at = Some((started.elapsed().as_secs_f64(), next));
                if c.events::<RoundOpened>(&events, "RoundOpened").unwrap().iter().any(|e| e.round == id) {
                    ends[0] = at;
                }
                if c.events::<ValidatorsDrawn>(&events, "ValidatorsDrawn").unwrap().iter().any(|e| e.round == id) {
                    ends[1] = at;
                }
                commits +=
                    c.events::<Committed>(&events, "Committed").unwrap().iter().filter(|e| e.round == id).count();
                if commits == 3 && ends[2].is_none() {
                    ends[2] = at;
                }
                if let Some(tally) =
                    c.events::<RoundTallied>(&events, "RoundTallied").unwrap().iter().find(|e| e.round == id)
                {
                    assert_eq!(tally.rejection, None, "round {id} was rejected:\n{}", net.logs());
                    ends[3] = at;
                }
                if c.events::<Sealed>(&events, "Sealed").unwrap().iter().any(|e| e.round == id) {
                    ends[4] = at;
                }
                if c.events::<BlockAppended>(&events, "BlockAppended").unwrap().iter().any(|e| e.round == Some(id)) {
                    ends[5] = at;
                }
                next += 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ends[6] = ends[5];
        let (status, outcome, err) = network::proposed(propose, Duration::from_secs(120)).await;
        assert!(status.success() && outcome["phase"] == "appended", "{err}");
        let mut previous = (0.0, start_block);
        for (phase, end) in ends.iter().enumerate() {
            let (at, block) = end.unwrap_or_else(|| panic!("round {id}: no end seen for {}", PHASES[phase]));
            let from = if phase == 6 { (0.0, start_block) } else { previous };
            seconds[phase].push(at - from.0);
            blocks[phase].push((block - from.1) as f64);
            previous = (at, block);
        }
        let evaluated_after = evaluation_seconds(&net).await;
        evaluation.push(evaluated_after.iter().zip(&evaluated_before).map(|(a, b)| a - b).fold(0.0, f64::max));
        eprintln!("round {id} ({}) appended in {:.1} s", network::NAMES[who], ends[6].unwrap().0);
    }
    println!("Round latency on four validators (zombienet, 3 s slots), {ROUNDS} rounds, min / median / max:\n");
    println!("| phase | seconds | blocks |\n|---|---:|---:|");
    for (phase, name) in PHASES.iter().enumerate() {
        let (s0, s1, s2) = spread(seconds[phase].clone());
        let (b0, b1, b2) = spread(blocks[phase].clone());
        println!("| {name} | {s0:.1} / {s1:.1} / {s2:.1} | {b0} / {b1} / {b2} |");
    }
    let (e0, e1, e2) = spread(evaluation);
    println!("| evaluation (slowest validator, within commit) | {e0:.3} / {e1:.3} / {e2:.3} | – |");
}
