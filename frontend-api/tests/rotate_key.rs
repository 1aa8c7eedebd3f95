//! `tclearn-api vault rotate-key` as an operator runs it: on a stopped API's data directory,
//! with no node. Every object reads back under the new key, the data-ID secret is unchanged,
//! and a running API's directory is refused with nothing changed.

use std::{path::Path, process::Command};
use tclearn_api::{
    config::VaultConfig,
    keys::{self, DataDirLock},
    vault::Vault,
};
use tclearn_client::H160;

fn config(dir: &Path) -> VaultConfig {
    VaultConfig::local(dir.to_path_buf(), 1 << 20)
}

/// `tclearn-api vault rotate-key --data-dir <dir>`, from a clean environment.
fn rotate_key(dir: &Path) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tclearn-api"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("TCLEARN_")) {
        command.env_remove(name);
    }
    command.args(["vault", "rotate-key", "--data-dir"]).arg(dir).output().unwrap()
}

#[tokio::test]
async fn an_operator_rotates_the_master_key_and_every_object_and_data_id_survives() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let coalition = H160([3; 20]);
    let old = keys::master_key(&config, false).unwrap();
    let secret = keys::data_id_secret(&config, &coalition, &old, (false, &keys::SecretRecord::None)).unwrap().0;
    std::fs::create_dir_all(dir.path().join("vault")).unwrap();
    let store = object_store::local::LocalFileSystem::new_with_prefix(dir.path().join("vault")).unwrap();
    let vault = Vault::new(std::sync::Arc::new(store), old.clone(), 1 << 20);
    let models: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 4096]).collect();
    let mut hashes = Vec::new();
    for model in &models {
        hashes.push(vault.put(model).await.unwrap());
    }
    let key_file = dir.path().join("vault.key");
    let before = std::fs::read_to_string(&key_file).unwrap();

    // While an API serves the directory: refused, nothing changed.
    let serving = DataDirLock::acquire(dir.path()).unwrap();
    let refused = rotate_key(dir.path());
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("in use by another tclearn-api"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), before);
    drop(serving);

    let rotated = rotate_key(dir.path());
    let (stdout, stderr) = (String::from_utf8_lossy(&rotated.stdout), String::from_utf8_lossy(&rotated.stderr));
    assert!(rotated.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("12 objects re-wrapped, 0 already under the new key"), "{stdout}");
    assert!(stderr.contains("re-wrapped 12 of 12 objects"), "{stderr}");
    assert!(!stdout.contains(before.trim()) && !stderr.contains(before.trim()), "the key is never printed");
    let retired = dir.path().join(format!("vault.key.retired-{}", old.id()));
    assert!(stdout.contains(&retired.display().to_string()), "{stdout}");
    assert_eq!(std::fs::read_to_string(&retired).unwrap(), before, "the old key is kept until destroyed");

    let new = keys::master_key(&config, true).unwrap();
    assert_ne!(new.id(), old.id());
    let store = object_store::local::LocalFileSystem::new_with_prefix(dir.path().join("vault")).unwrap();
    let vault = Vault::new(std::sync::Arc::new(store), new.clone(), 1 << 20);
    for (hash, model) in hashes.iter().zip(&models) {
        assert_eq!(vault.get(hash).await.unwrap().as_ref(), model.as_slice());
    }
    vault.ensure_key_opens(&hashes).await.unwrap();
    let kept = keys::data_id_secret(&config, &coalition, &new, (true, &keys::SecretRecord::None)).unwrap().0;
    assert_eq!(kept.as_bytes(), secret.as_bytes(), "members' data IDs stay valid");
}
