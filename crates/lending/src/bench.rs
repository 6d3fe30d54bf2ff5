//! Benchmark helpers (placeholder, filled below).
