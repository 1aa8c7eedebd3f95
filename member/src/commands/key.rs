//! `tclearn key`: the member's signing key (sr25519), new, imported or shown.

use super::*;

/// `tclearn key new`.
pub fn key_new(g: &Global, force: bool) -> Result<i32> {
    use sp_core::crypto::Pair as _;
    let (_, phrase, _) = sp_core::sr25519::Pair::generate_with_phrase(None);
    let key = store_key(g, &phrase, force)?;
    print_key(g, &key, "the secret (a 12-word phrase) is in ")
}

/// `tclearn key import`: the secret comes on standard input, never on the command line.
pub fn key_import(g: &Global, force: bool) -> Result<i32> {
    let mut secret = String::new();
    std::io::stdin().read_line(&mut secret).context("reading the secret from standard input")?;
    if secret.trim().is_empty() {
        bail!("no secret on standard input");
    }
    let key = store_key(g, &secret, force)?;
    print_key(g, &key, "the secret is in ")
}

/// `tclearn key show`.
pub fn key_show(g: &Global) -> Result<i32> {
    let key = load_key(g)?;
    print_key(g, &key, "key file ")
}
