//! chat-cli: placeholder until the CLI issue lands.

fn main() {
    println!("chat-cli: not implemented yet");
}
