//! The time source is the workspace's one clock (`crates/clock`), re-exported here.

pub use clock::{Clock, ManualClock, SystemClock};
