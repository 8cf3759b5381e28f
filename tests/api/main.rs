//! One integration-test binary: every module runs against the real server over HTTP,
//! on SQLite and (with TEST_POSTGRES_URL) on PostgreSQL.

mod helpers;

mod accounts;
mod api_parity;
mod attacks;
mod browser;
mod carriers;
mod cart;
mod catalog;
mod categories;
mod checkout;
mod cli;
mod contract;
mod faults;
mod figures;
mod fuzz;
mod health;
mod import;
mod integrity;
mod lookup;
mod moderators;
mod money;
mod notices;
mod ocop;
mod ops;
mod origin;
mod pages;
mod payouts;
mod phones;
mod pricing;
mod protection;
mod providers;
mod reach;
mod rules;
mod search;
mod seller_orders;
mod shipping;
mod team;
mod words;
