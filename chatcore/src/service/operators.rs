//! What operators read: the desk report of a period, whether an actor may read the
//! metrics, and the queue's gauges brought up to date before a scrape. Only the admin
//! may read them (`policy::operate`).

use std::time::Duration;

use super::ChatService;
use crate::error::Result;
use crate::identity::Actor;
use crate::policy;
use crate::report::{DeskReport, ReportPeriod};

impl ChatService {
    /// The desk report of `period` (`crate::report` defines each figure): the admin.
    pub async fn desk_report(&self, actor: &Actor, period: ReportPeriod) -> Result<DeskReport> {
        policy::operate(actor)?;
        Ok(self.inner.store.desk_report(period).await?)
    }

    /// Whether `actor` may read what operators read (the metrics, the desk report): the
    /// admin. A transport asks before it reads a report's parameters, so that others
    /// learn nothing of them; one that serves the metrics on an address of their own,
    /// for a scraper, does not ask.
    pub fn may_operate(&self, actor: &Actor) -> Result<()> {
        policy::operate(actor)
    }

    /// Sets the queue's gauges ([`crate::metrics::QUEUE_LENGTH`],
    /// [`crate::metrics::QUEUE_OLDEST_WAIT`]) from this node's view of the queue's order
    /// (refreshed at most a second after a change on any node), the wait measured now:
    /// a transport calls it before rendering the metrics, so that the oldest wait is as
    /// of the scrape, not of the last change.
    pub async fn record_queue_metrics(&self) -> Result<()> {
        let view = self.queue_view().await?;
        let wait = view.oldest().map_or(0, |entered| {
            self.now()
                .unix_millis()
                .saturating_sub(entered.unix_millis())
        });
        crate::metrics::queue(
            view.len(),
            Duration::from_millis(u64::try_from(wait).unwrap_or(0)),
        );
        Ok(())
    }
}
