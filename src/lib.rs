//! Chợ Làng: a marketplace for Vietnamese craft villages on community-agreed fair prices.

pub mod accounts;
pub mod app;
pub mod backup;
pub mod bankfeed;
pub mod catalog;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod figures;
pub mod import;
pub mod index_queue;
mod layering;
pub mod ledger;
pub mod limits;
pub mod metrics;
pub mod notify;
pub mod orders;
pub mod origin;
pub mod payments;
pub mod payouts;
pub mod pricing;
pub mod protection;
pub mod search;
pub mod treasury;
pub mod web;
