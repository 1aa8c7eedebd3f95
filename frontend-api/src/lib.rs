//! # tclearn-api
//!
//! The members' side of TCLearn (level B of the paper: the model is private to the coalition).
//! So far: [`vault`], the encrypted, content-addressed store of models and increments. The HTTP
//! API, the audit log and the dashboard build on it.

pub mod vault;
