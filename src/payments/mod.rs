//! Payments: VietQR payloads, payment codes, webhook signature checks per provider.
//!
//! Everything here so far is pure (no I/O), so each rule is unit-tested against the
//! published vectors in `shared/specs/payments.md`. Checkout, matching and reconciliation
//! build on these.

pub mod banks;
pub mod code;
pub mod providers;
pub mod refunds;
pub mod service;
pub mod signatures;
pub mod state;
pub mod store;
pub mod vietqr;
pub mod webhooks;
