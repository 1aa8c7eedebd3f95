//! Schemathesis (PyPI, pinned in `scripts/env.sh`; `scripts/setup.sh` installs it in a virtual
//! environment of the cache) against the API's own OpenAPI document, with a member's token, on a
//! dev node running the coalition: no answer may be a server error (5xx), and every answer must
//! fit the document's schema for its status. Bounded in time (`--max-time`).
//!
//! The event stream (`/api/events`) is left out: it never ends, so every request to it would
//! time out.

mod common;

use common::{config, scene, Api};
use std::path::PathBuf;

/// Seconds the fuzzer may run.
const FUZZING_SECONDS: u64 = 150;

fn schemathesis() -> PathBuf {
    std::env::var_os("TCLEARN_SCHEMATHESIS").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("TCLEARN_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/tclearn"));
        cache.join("schemathesis-venv/bin/schemathesis")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_schema() {
    let scene = scene().await;
    let mut config = config(&scene, scene.dir.path().join("fuzzed"), 3600, None);
    // The fuzzer is one client that asks as fast as it can.
    (config.rate_per_address, config.burst_per_address) = (100_000, 100_000);
    (config.rate_per_account, config.burst_per_account) = (100_000, 100_000);
    let api = Api::start(config).await;
    let token = api.sign_in("Bob").await;
    let report = scene.dir.path().join("schemathesis");
    let binary = schemathesis();
    let run = tokio::process::Command::new(&binary)
        .arg("run")
        .arg(format!("{}/api/openapi.json", api.url))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--exclude-path", "/api/events"])
        .args(["--max-time", &FUZZING_SECONDS.to_string()])
        .args(["--workers", "1", "--request-timeout", "60", "--seed", "22"])
        .args(["--generation-database", "none", "--report", "junit", "--report-dir"])
        .arg(&report)
        .current_dir(scene.dir.path())
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/setup.sh installs Schemathesis)", binary.display()));
    let said = String::from_utf8_lossy(&run.stdout);
    println!("{said}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "Schemathesis found failures:\n{said}");
    assert!(said.contains("passed"), "Schemathesis ran no test case:\n{said}");
    api.stop().await;
}
