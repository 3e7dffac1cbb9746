//! The operators' reads on SQLite: the desk report (`crate::report` defines its
//! figures) and a chat's first reply, each over an index of its own (migration 11),
//! checked in their query plans below. Reads only, on the reader pool.

use rusqlite::{Connection, OptionalExtension};

use super::SqliteStore;
use super::error::classify;
use crate::ids::{ChatId, MessageId, OfficerId};
use crate::report::{self, DeskReport, FigureRow, ReportPeriod};
use crate::store::{StoreError, StoreResult};

/// A chat's first officer message: the first entry of `messages_first_reply`, a partial
/// index of officers' messages by (chat, seq).
pub(super) const SQL_FIRST_REPLY: &str = "SELECT id FROM messages INDEXED BY messages_first_reply
     WHERE chat_id = ?1 AND sender_type = 'officer' ORDER BY seq LIMIT 1";
pub(super) const SQL_CREATED: &str = "SELECT count(*) FROM chats INDEXED BY chats_by_created
     WHERE created_at >= ?1 AND created_at < ?2";
/// First replies to the chats created in the period: a range of `chats_by_created`,
/// then one probe of `messages_first_reply` and one of the primary key per chat.
pub(super) const SQL_FIRST_REPLIES: &str = concat!(
    "WITH d AS (SELECT m.sender_id AS officer, m.created_at - c.created_at AS ms
       FROM chats c INDEXED BY chats_by_created
       JOIN messages m ON m.chat_id = c.id AND m.seq = (
         SELECT f.seq FROM messages f INDEXED BY messages_first_reply
         WHERE f.chat_id = c.id AND f.sender_type = 'officer' ORDER BY f.seq LIMIT 1)
       WHERE c.created_at >= ?1 AND c.created_at < ?2), ",
    // The summary's own SQL (crate::report::SQL_SUMMARY), kept in step by a test.
    "r AS (SELECT officer, ms,
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
     FROM r"
);
/// Resolutions in the period: a range of the covering partial index `chats_by_resolved`.
pub(super) const SQL_RESOLUTIONS: &str = concat!(
    "WITH d AS (SELECT assigned_officer_id AS officer, resolved_at - created_at AS ms
       FROM chats INDEXED BY chats_by_resolved
       WHERE resolved_at >= ?1 AND resolved_at < ?2), ",
    "r AS (SELECT officer, ms,
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
     FROM r"
);

impl SqliteStore {
    pub(super) async fn read_first_reply(&self, chat: &ChatId) -> StoreResult<Option<MessageId>> {
        let chat = chat.to_string();
        let id: Option<String> = self
            .read(move |c| {
                c.prepare_cached(SQL_FIRST_REPLY)
                    .and_then(|mut st| st.query_row([chat], |r| r.get(0)).optional())
                    .map_err(classify)
            })
            .await?;
        id.map(|id| MessageId::parse(&id).map_err(|_| StoreError::backend("malformed message id")))
            .transpose()
    }

    pub(super) async fn read_desk_report(&self, period: ReportPeriod) -> StoreResult<DeskReport> {
        self.read(move |c| {
            let (from, to) = (period.from().unix_millis(), period.to().unix_millis());
            let created: i64 = c
                .prepare_cached(SQL_CREATED)
                .and_then(|mut st| st.query_row([from, to], |r| r.get(0)))
                .map_err(classify)?;
            let first = figures(c, SQL_FIRST_REPLIES, from, to)?;
            let resolved = figures(c, SQL_RESOLUTIONS, from, to)?;
            Ok(report::assemble(
                period,
                u64::try_from(created).unwrap_or(0),
                first,
                resolved,
            ))
        })
        .await
    }
}

fn figures(c: &Connection, sql: &str, from: i64, to: i64) -> StoreResult<Vec<FigureRow>> {
    let mut st = c.prepare_cached(sql).map_err(classify)?;
    let rows = st
        .query_map([from, to], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })
        .map_err(classify)?;
    let mut out = Vec::new();
    for row in rows {
        let (total, officer, count, median_ms, p90_ms) = row.map_err(classify)?;
        let officer = officer
            .map(|o| OfficerId::parse(&o).map_err(|_| StoreError::backend("malformed officer id")))
            .transpose()?;
        out.push(FigureRow {
            total: total == 1,
            officer,
            count: u64::try_from(count).unwrap_or(0),
            median_ms,
            p90_ms,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::schema::migrate;

    #[test]
    fn the_summary_is_the_shared_one() {
        for sql in [SQL_FIRST_REPLIES, SQL_RESOLUTIONS] {
            assert!(sql.ends_with(report::SQL_SUMMARY), "{sql}");
        }
    }

    /// Each of the report's statements reads ranges of its indexes: never a scan of a
    /// table nor of a whole index. The window functions' sorts are of the period's rows
    /// only (what the report is about), so they are allowed.
    #[test]
    fn report_queries_read_ranges_of_their_indexes() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        for (name, sql, index) in [
            ("first reply", SQL_FIRST_REPLY, "messages_first_reply"),
            ("created", SQL_CREATED, "chats_by_created"),
            ("first replies", SQL_FIRST_REPLIES, "chats_by_created"),
            ("first replies", SQL_FIRST_REPLIES, "messages_first_reply"),
            ("resolutions", SQL_RESOLUTIONS, "chats_by_resolved"),
        ] {
            let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = st
                .query_map(
                    rusqlite::params_from_iter(std::iter::repeat_n(
                        rusqlite::types::Null,
                        st.parameter_count(),
                    )),
                    |r| r.get::<_, String>(3),
                )
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let plan = plan.join(" | ");
            assert!(plan.contains(index), "{name}: {index} not in plan: {plan}");
            // Scans are only of the period's rows: the CTEs and the window functions'
            // subqueries, never of a table (`chats`, `messages` or their aliases).
            for step in plan.split(" | ").filter(|s| s.starts_with("SCAN ")) {
                let what = &step["SCAN ".len()..];
                assert!(
                    what == "d" || what == "r" || what.starts_with("(subquery"),
                    "{name}: scans a table or index: {plan}"
                );
            }
        }
    }
}
