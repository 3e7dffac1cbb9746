//! Test support shared by chatcore's test binaries (included with `#[path]`): a customer
//! logged in through the service.

use chatcore::{Actor, ChatId, ChatService, CustomerId, CustomerLogin};

/// Logs a customer in (no officer, no signature: a service without a customer secret);
/// returns who they are, their chat, and their token.
pub(crate) async fn customer(s: &ChatService, id: &str) -> (Actor, ChatId, String) {
    let login = s
        .customer_login(CustomerLogin {
            customer_id: CustomerId::parse(id).unwrap(),
            officer_id: None,
            signature: None,
        })
        .await
        .unwrap();
    let actor = s.authenticate(&login.token).await.unwrap().actor;
    (actor, login.chat.id, login.token)
}
