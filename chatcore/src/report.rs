//! The desk report (`GET /api/reports/desk`): what it counts, for which period, and the
//! one definition of its percentiles. The stores compute it in their own query language
//! (SQL on SQLite and PostgreSQL, over indexes); [`summarize`] is the same computation on
//! rows in memory, for `MemoryStore` and for tests. Nothing here reads a store.
//!
//! # Definitions
//!
//! - A chat **enters the queue** when it is created. A chat released back to the queue
//!   keeps its place by creation time (the queue's order), so its wait counts from there.
//!   A chat created already assigned (a login naming its officer, automatic assignment)
//!   is measured from its creation too.
//! - **Chats created**: created in the period, `from <= createdAt < to`.
//! - **First reply**: the chat's first message sent by any officer (its lowest `seq`
//!   among officers' messages; system entries and the customer's messages do not count),
//!   whenever it was sent; the **time to first reply** is its `createdAt` minus the chat's.
//!   Measured over the chats created in the period that have one, and attributed to the
//!   officer who sent it, whoever holds the chat now. A transfer does not start a new
//!   measurement, nor does a reopening: a chat has at most one first reply.
//! - **Chats resolved**: chats whose resolution falls in the period and that are still
//!   resolved. A chat that is reopened counts no more until it is resolved again, then
//!   at its latest resolution; so a chat is counted as resolved once, in one period.
//! - **Time to resolution**: that latest resolution minus the chat's creation (reopened
//!   time included), over the chats resolved in the period, attributed to the officer
//!   the chat was assigned to when it was resolved (none when the admin resolved a chat
//!   no one held: counted in the totals only).
//! - **Median and p90** are nearest-rank percentiles: of `n` durations in ascending
//!   order, the one at rank `ceil(p * n)` (1-based), so always a measured duration (the
//!   lower middle one for an even `n`). `null` when there is none.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::OfficerId;
use crate::model::Timestamp;

/// The longest period a report may cover: about a year, so that one request reads a
/// bounded part of the store.
pub const MAX_REPORT_PERIOD: Duration = Duration::from_secs(366 * 24 * 3600);

/// A report's period, `from <= t < to`, checked: `from` before `to`, at most
/// [`MAX_REPORT_PERIOD`] apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportPeriod {
    from: Timestamp,
    to: Timestamp,
}

impl ReportPeriod {
    /// The period, or [`Error::InvalidParameter`] naming what is wrong.
    pub fn new(from: Timestamp, to: Timestamp) -> Result<Self> {
        if from >= to {
            return Err(Error::InvalidParameter {
                name: "to",
                reason: "must be after from".into(),
            });
        }
        let span = to.unix_millis().saturating_sub(from.unix_millis());
        if u128::try_from(span).unwrap_or(u128::MAX) > MAX_REPORT_PERIOD.as_millis() {
            return Err(Error::InvalidParameter {
                name: "to",
                reason: "the period may be at most 366 days".into(),
            });
        }
        Ok(Self { from, to })
    }

    /// Parses the query's `from` and `to` (RFC 3339, as the contract's timestamps).
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self> {
        let read = |name: &'static str, value: Option<&str>| {
            let value = value.ok_or_else(|| Error::InvalidParameter {
                name,
                reason: "is required (an RFC 3339 time, such as 2026-11-01T00:00:00Z)".into(),
            })?;
            Timestamp::parse(value).ok_or_else(|| Error::InvalidParameter {
                name,
                reason: "must be an RFC 3339 time, such as 2026-11-01T00:00:00Z".into(),
            })
        };
        Self::new(read("from", from)?, read("to", to)?)
    }

    /// The start (included).
    pub fn from(&self) -> Timestamp {
        self.from
    }

    /// The end (excluded).
    pub fn to(&self) -> Timestamp {
        self.to
    }
}

/// A set of durations, summarized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"count": 42, "medianSeconds": 38.5, "p90Seconds": 212.0}))
)]
pub struct Durations {
    /// How many were measured.
    pub count: u64,
    /// Median, in seconds (millisecond precision); `null` when none.
    pub median_seconds: Option<f64>,
    /// 90th percentile, in seconds; `null` when none.
    pub p90_seconds: Option<f64>,
}

impl Durations {
    /// From a count and the two percentiles in milliseconds, as the stores' queries give
    /// them.
    pub fn from_millis(count: u64, median: Option<i64>, p90: Option<i64>) -> Self {
        let secs = |ms: Option<i64>| ms.map(|ms| ms as f64 / 1000.0);
        Self {
            count,
            median_seconds: secs(median),
            p90_seconds: secs(p90),
        }
    }
}

/// One officer's part of the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"officerId": "alice", "firstReply": {"count": 42, "medianSeconds": 38.5, "p90Seconds": 212.0}, "resolution": {"count": 40, "medianSeconds": 610.0, "p90Seconds": 1805.2}}))
)]
pub struct OfficerFigures {
    /// The officer.
    pub officer_id: OfficerId,
    /// First replies they sent to chats created in the period.
    pub first_reply: Durations,
    /// Chats they held when resolved in the period (`count` is how many).
    pub resolution: Durations,
}

/// The desk report of a period (see the module documentation for each figure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"from": "2026-11-01T00:00:00.000Z", "to": "2026-11-02T00:00:00.000Z", "chatsCreated": 57, "chatsResolved": 52, "firstReply": {"count": 55, "medianSeconds": 41.0, "p90Seconds": 230.5}, "resolution": {"count": 52, "medianSeconds": 640.0, "p90Seconds": 1900.0}, "officers": [{"officerId": "alice", "firstReply": {"count": 42, "medianSeconds": 38.5, "p90Seconds": 212.0}, "resolution": {"count": 40, "medianSeconds": 610.0, "p90Seconds": 1805.2}}]}))
)]
pub struct DeskReport {
    /// Start of the period (included).
    pub from: Timestamp,
    /// End of the period (excluded).
    pub to: Timestamp,
    /// Chats created in the period.
    pub chats_created: u64,
    /// Chats resolved in the period.
    pub chats_resolved: u64,
    /// Time to first reply over the chats created in the period.
    pub first_reply: Durations,
    /// Time to resolution over the chats resolved in the period.
    pub resolution: Durations,
    /// Per officer, by id: those with a first reply or a resolution counted here.
    pub officers: Vec<OfficerFigures>,
}

/// The nearest-rank index (0-based) of percentile `p` (in hundredths) among `n`
/// ascending values: rank `ceil(p * n / 100)`. The stores' SQL writes the same as
/// `(n * p + 99) / 100` in integers.
fn rank(n: usize, p: usize) -> usize {
    (n * p).div_ceil(100).max(1) - 1
}

fn summary(mut millis: Vec<i64>) -> Durations {
    millis.sort_unstable();
    let n = millis.len();
    if n == 0 {
        return Durations::default();
    }
    Durations::from_millis(
        n as u64,
        Some(millis[rank(n, 50)]),
        Some(millis[rank(n, 90)]),
    )
}

/// One measured duration: the officer it is attributed to (if any) and its length in
/// milliseconds.
pub type Measured = (Option<OfficerId>, i64);

/// The report from the measured durations, the way the stores' SQL computes it: totals
/// over every duration, and per officer over theirs.
pub fn summarize(
    period: ReportPeriod,
    chats_created: u64,
    first_replies: Vec<Measured>,
    resolutions: Vec<Measured>,
) -> DeskReport {
    let mut per: BTreeMap<OfficerId, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for (officer, ms) in &first_replies {
        if let Some(o) = officer {
            per.entry(o.clone()).or_default().0.push(*ms);
        }
    }
    for (officer, ms) in &resolutions {
        if let Some(o) = officer {
            per.entry(o.clone()).or_default().1.push(*ms);
        }
    }
    let resolution = summary(resolutions.into_iter().map(|(_, ms)| ms).collect());
    DeskReport {
        from: period.from,
        to: period.to,
        chats_created,
        chats_resolved: resolution.count,
        first_reply: summary(first_replies.into_iter().map(|(_, ms)| ms).collect()),
        resolution,
        officers: per
            .into_iter()
            .map(|(officer_id, (first, resolved))| OfficerFigures {
                officer_id,
                first_reply: summary(first),
                resolution: summary(resolved),
            })
            .collect(),
    }
}

/// Per-officer rows as the stores' queries return them, with the totals' row (no
/// officer, `total` true), assembled into the report.
#[derive(Debug, Clone)]
pub struct FigureRow {
    /// True for the totals over every duration.
    pub total: bool,
    /// The officer, for a per-officer row.
    pub officer: Option<OfficerId>,
    /// How many durations.
    pub count: u64,
    /// The median, in milliseconds.
    pub median_ms: Option<i64>,
    /// The 90th percentile, in milliseconds.
    pub p90_ms: Option<i64>,
}

/// Assembles a report from the stores' rows: one query's rows for first replies, one's
/// for resolutions.
pub fn assemble(
    period: ReportPeriod,
    chats_created: u64,
    first_replies: Vec<FigureRow>,
    resolutions: Vec<FigureRow>,
) -> DeskReport {
    let mut per: BTreeMap<OfficerId, OfficerFigures> = BTreeMap::new();
    let mut totals = [Durations::default(), Durations::default()];
    for (i, rows) in [first_replies, resolutions].into_iter().enumerate() {
        for row in rows {
            let figures = Durations::from_millis(row.count, row.median_ms, row.p90_ms);
            if row.total {
                totals[i] = figures;
            } else if let Some(officer) = row.officer {
                let entry = per
                    .entry(officer.clone())
                    .or_insert_with(|| OfficerFigures {
                        officer_id: officer,
                        first_reply: Durations::default(),
                        resolution: Durations::default(),
                    });
                if i == 0 {
                    entry.first_reply = figures;
                } else {
                    entry.resolution = figures;
                }
            }
        }
    }
    let [first_reply, resolution] = totals;
    DeskReport {
        from: period.from,
        to: period.to,
        chats_created,
        chats_resolved: resolution.count,
        first_reply,
        resolution,
        officers: per.into_values().collect(),
    }
}

/// The SQL that summarizes a set of durations `d(officer, ms)` (a `WITH` clause the
/// caller writes before it): one row per officer and one row of totals, each
/// `(total, officer, count, median_ms, p90_ms)`, with the nearest-rank percentiles of
/// [`summarize`]. Plain SQL that SQLite and PostgreSQL both run.
pub const SQL_SUMMARY: &str = "r AS (SELECT officer, ms,
       ROW_NUMBER() OVER (PARTITION BY officer ORDER BY ms) AS rn,
       COUNT(*) OVER (PARTITION BY officer) AS n,
       ROW_NUMBER() OVER (ORDER BY ms) AS rn_all,
       COUNT(*) OVER () AS n_all
     FROM d)
   SELECT 0 AS total, officer, COUNT(*),
       MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN ms END),
       MAX(CASE WHEN rn = (n * 90 + 99) / 100 THEN ms END)
     FROM r WHERE officer IS NOT NULL GROUP BY officer
   UNION ALL
   SELECT 1, NULL, COUNT(*),
       MAX(CASE WHEN rn_all = (n_all * 50 + 99) / 100 THEN ms END),
       MAX(CASE WHEN rn_all = (n_all * 90 + 99) / 100 THEN ms END)
     FROM r";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d = |v: &[i64]| summary(v.to_vec());
        assert_eq!(d(&[]), Durations::default());
        assert_eq!(d(&[5000]).median_seconds, Some(5.0));
        assert_eq!(d(&[5000]).p90_seconds, Some(5.0));
        // Even count: the lower middle one.
        assert_eq!(d(&[4000, 1000, 3000, 2000]).median_seconds, Some(2.0));
        let ten: Vec<i64> = (1..=10).map(|s| s * 1000).collect();
        assert_eq!(d(&ten).median_seconds, Some(5.0));
        assert_eq!(d(&ten).p90_seconds, Some(9.0));
        let eleven: Vec<i64> = (1..=11).map(|s| s * 1000).collect();
        assert_eq!(d(&eleven).median_seconds, Some(6.0));
        assert_eq!(d(&eleven).p90_seconds, Some(10.0));
        // The integer form the SQL uses (no `div_ceil` there) agrees with `rank` for
        // every n.
        #[allow(clippy::manual_div_ceil)]
        for n in 1..500usize {
            for p in [50, 90] {
                assert_eq!((n * p + 99) / 100 - 1, rank(n, p), "n={n} p={p}");
            }
        }
    }

    #[test]
    fn periods_are_checked() {
        let t = Timestamp::from_unix_millis;
        assert!(ReportPeriod::new(t(0), t(1)).is_ok());
        assert!(ReportPeriod::new(t(1), t(1)).is_err());
        assert!(ReportPeriod::new(t(2), t(1)).is_err());
        let year = MAX_REPORT_PERIOD.as_millis() as i64;
        assert!(ReportPeriod::new(t(0), t(year)).is_ok());
        assert!(ReportPeriod::new(t(0), t(year + 1)).is_err());
        let p = ReportPeriod::parse(Some("2026-11-01T00:00:00Z"), Some("2026-11-02T00:00:00.5Z"))
            .unwrap();
        assert_eq!(p.to().unix_millis() - p.from().unix_millis(), 86_400_500);
        for (from, to) in [
            (None, Some("2026-11-02T00:00:00Z")),
            (Some("yesterday"), Some("2026-11-02T00:00:00Z")),
            (Some("2026-11-01"), Some("2026-11-02T00:00:00Z")),
        ] {
            let err = ReportPeriod::parse(from, to).unwrap_err();
            assert!(
                matches!(err, Error::InvalidParameter { name: "from", .. }),
                "{err:?}"
            );
        }
    }
}
