//! Orders: checkout (one payment, one order per shop), stock reservation, the lifecycle
//! state machine and its audited transitions.

pub mod checkout;
pub mod money;
pub mod release;
pub mod state;
pub mod store;

pub use state::{Actor, OrderStatus};
