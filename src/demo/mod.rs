//! The demo (`serve --demo`): villages, shops and products from `demo/demo.csv`, a proposal
//! on the board, the digital team, orders paid and paid out, a request in each state of
//! buyer protection and printed batches with scans. Above every room it seeds.

pub mod catalog;
pub mod origin;
pub mod payouts;
pub mod pictures;
pub mod protection;
pub mod shipping;
