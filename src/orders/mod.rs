//! Orders: the lifecycle state machine (pure). Cart, checkout and stock reservation build on it.

pub mod state;
