//! Payments: VietQR payloads, payment codes, webhook signature checks per provider.
//!
//! Everything here so far is pure (no I/O), so each rule is unit-tested against the
//! published vectors in `shared/specs/payments.md`. Checkout, matching and reconciliation
//! build on these.

pub use crate::domain::banks;
pub use crate::domain::payment_code as code;
pub mod moves;
pub mod providers;
pub mod refunds;
pub mod service;
pub mod settle;
pub mod signatures;
pub mod state;
pub mod store;
pub use crate::domain::vietqr;
