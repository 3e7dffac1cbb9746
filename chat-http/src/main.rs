//! chat-http binary.
fn main() {}
