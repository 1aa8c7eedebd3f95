//! # tclearn-api-client
//!
//! The members' API from the outside: what its routes take and return, and the one Rust client
//! every TCLearn program signs in with (the member's command line, the oracle, `tclearn-api
//! upload`). The server is `tclearn-api`.
//!
//! - [`views`]: the wire types of every route, with their OpenAPI schemas;
//! - [`sign_in`]: the one message a member signs to sign in, and the checks before signing;
//! - [`client`]: sign-in by an sr25519 signature of the API's challenge, then upload, download
//!   and the public reads;
//! - [`audit`]: RFC 6962 proofs and a served log checked against the roots anchored on chain;
//!   [`verify`] fetches a served log and checks it;
//! - [`data_ids`]: oblivious data IDs (RFC 9497), the member's blinded queries and the vault's
//!   answers;
//! - [`receipt`]: the signed receipt a member gets for each access, which binds the API to its
//!   log before the next anchor.

pub mod audit;
pub mod client;
pub mod data_ids;
pub mod receipt;
pub mod sign_in;
pub mod verify;
pub mod views;

/// Make ring the process's TLS provider (the HTTP clients here use rustls without one of their
/// own). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
