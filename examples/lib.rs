//! Shared helpers for the embedding examples (see the `examples/` targets).
