pub mod customers;
pub mod keys;
pub mod ledger;
pub mod lending;
pub mod profiles;
pub mod risk;
pub mod system;
pub mod tags;
