//! chat-http
