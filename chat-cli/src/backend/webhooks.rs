//! The webhook operations of both backends (`webhook ...`): local mode through
//! `chatcore::ChatService` as the administrator, remote mode through `/api/webhooks`
//! with the admin token. Nothing here prints.

use chatcore::store::DeliveryQuery;
use chatcore::{CreatedWebhook, NewWebhook, Webhook, WebhookDelivery};

use super::{Backend, Local, Remote};
use crate::error::ApiError;

/// What `webhook deliveries` lists.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeliveryFilter {
    pub(crate) dead: bool,
    pub(crate) webhook: Option<String>,
    pub(crate) after: Option<i64>,
    pub(crate) limit: Option<u32>,
}

impl Backend {
    pub(crate) async fn create_webhook(
        &self,
        url: &str,
        secret: Option<String>,
        events: Option<Vec<String>>,
    ) -> anyhow::Result<CreatedWebhook> {
        match self {
            Backend::Local(b) => {
                let actor = b.actor(None).await?;
                let new = NewWebhook {
                    url: url.to_string(),
                    secret,
                    events,
                };
                Ok(b.service
                    .create_webhook(&actor, new)
                    .await
                    .map_err(ApiError::from)?)
            }
            Backend::Remote(b) => Ok(b
                .client()
                .create_webhook(url, secret.as_deref(), events.as_deref())
                .await
                .map_err(|e| b.error(e))?),
        }
    }

    pub(crate) async fn webhooks(&self) -> anyhow::Result<Vec<Webhook>> {
        match self {
            Backend::Local(b) => {
                let actor = b.actor(None).await?;
                Ok(b.service.webhooks(&actor).await.map_err(ApiError::from)?)
            }
            Backend::Remote(b) => Ok(b.client().webhooks().await.map_err(|e| b.error(e))?),
        }
    }

    pub(crate) async fn delete_webhook(&self, id: &str) -> anyhow::Result<()> {
        match self {
            Backend::Local(b) => {
                let actor = b.actor(None).await?;
                Ok(b.service
                    .delete_webhook(&actor, id)
                    .await
                    .map_err(ApiError::from)?)
            }
            Backend::Remote(b) => Ok(b
                .client()
                .delete_webhook(id)
                .await
                .map_err(|e| b.error(e))?),
        }
    }

    pub(crate) async fn webhook_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> anyhow::Result<Vec<WebhookDelivery>> {
        match self {
            Backend::Local(b) => local_deliveries(b, filter).await,
            Backend::Remote(b) => remote_deliveries(b, filter).await,
        }
    }

    pub(crate) async fn retry_webhook_deliveries(
        &self,
        webhook: Option<&str>,
        delivery: Option<i64>,
    ) -> anyhow::Result<u64> {
        match self {
            Backend::Local(b) => {
                let actor = b.actor(None).await?;
                Ok(b.service
                    .retry_webhook_deliveries(&actor, webhook, delivery)
                    .await
                    .map_err(ApiError::from)?)
            }
            Backend::Remote(b) => Ok(b
                .client()
                .retry_webhook_deliveries(webhook, delivery)
                .await
                .map_err(|e| b.error(e))?),
        }
    }
}

async fn local_deliveries(
    b: &Local,
    filter: &DeliveryFilter,
) -> anyhow::Result<Vec<WebhookDelivery>> {
    let actor = b.actor(None).await?;
    let query = DeliveryQuery {
        webhook_id: filter.webhook.clone(),
        dead: filter.dead,
        after_id: filter.after,
        limit: filter.limit.unwrap_or(100),
    };
    Ok(b.service
        .webhook_deliveries(&actor, query)
        .await
        .map_err(ApiError::from)?)
}

async fn remote_deliveries(
    b: &Remote,
    filter: &DeliveryFilter,
) -> anyhow::Result<Vec<WebhookDelivery>> {
    Ok(b.client()
        .webhook_deliveries(
            filter.dead,
            filter.webhook.as_deref(),
            filter.after,
            filter.limit,
        )
        .await
        .map_err(|e| b.error(e))?)
}
