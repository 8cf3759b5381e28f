//! Notices to sellers, buyers and admins by email, Zalo and Telegram, through a durable
//! outbox: an event row is written in the same transaction as the change that causes it;
//! the worker expands it into notices and delivers them with retries.

pub mod channels;
pub mod render;
pub mod store;
pub mod worker;

pub use store::event;
