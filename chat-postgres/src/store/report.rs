//! The operators' reads on PostgreSQL: the desk report (`chatcore::report` defines its
//! figures, and its summary SQL is shared with the SQLite store) and a chat's first
//! reply, each over an index of its own (migration 12), checked in their plans below.

use chatcore::report::{self, DeskReport, FigureRow, ReportPeriod};
use chatcore::store::StoreResult;
use chatcore::{ChatId, MessageId, OfficerId, StoreError};
use deadpool_postgres::GenericClient;

use super::PgStore;
use crate::error::classify;

pub(super) const SQL_FIRST_REPLY: &str = "SELECT id FROM messages
     WHERE chat_id = $1 AND sender_type = 'officer' ORDER BY seq LIMIT 1";
pub(super) const SQL_CREATED: &str =
    "SELECT count(*) FROM chats WHERE created_at >= $1 AND created_at < $2";
/// First replies to the chats created in the period: a range of `chats_by_created`, then
/// per chat one probe of `messages_first_reply`.
const FIRST_REPLIES: &str =
    "WITH d AS (SELECT f.sender_id AS officer, f.created_at - c.created_at AS ms
       FROM chats c
       CROSS JOIN LATERAL (SELECT m.sender_id, m.created_at FROM messages m
         WHERE m.chat_id = c.id AND m.sender_type = 'officer' ORDER BY m.seq LIMIT 1) f
       WHERE c.created_at >= $1 AND c.created_at < $2), ";
/// Resolutions in the period: a range of `chats_by_resolved`.
const RESOLUTIONS: &str = "WITH d AS (SELECT assigned_officer_id AS officer,
         resolved_at - created_at AS ms
       FROM chats WHERE resolved_at >= $1 AND resolved_at < $2), ";

fn first_replies_sql() -> String {
    format!("{FIRST_REPLIES}{}", report::SQL_SUMMARY)
}

fn resolutions_sql() -> String {
    format!("{RESOLUTIONS}{}", report::SQL_SUMMARY)
}

impl PgStore {
    pub(super) async fn read_first_reply(&self, chat: &ChatId) -> StoreResult<Option<MessageId>> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(SQL_FIRST_REPLY)
            .await
            .map_err(classify)?;
        let row = client
            .query_opt(&st, &[&chat.to_string()])
            .await
            .map_err(classify)?;
        row.map(|r| {
            let id: String = r.try_get(0).map_err(classify)?;
            MessageId::parse(&id).map_err(|_| StoreError::backend("malformed message id"))
        })
        .transpose()
    }

    pub(super) async fn read_desk_report(&self, period: ReportPeriod) -> StoreResult<DeskReport> {
        let mut client = self.client().await?;
        let (from, to) = (period.from().unix_millis(), period.to().unix_millis());
        // One read-only transaction, so that the three reads see one moment, with its own
        // settings: no JIT (at a month of 100,000 chats, compiling the query took 750 ms
        // of its 1.8 s), and room for the window functions' sorts in memory rather than
        // on disk (BENCHMARKS.md, section 9).
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(classify)?;
        tx.batch_execute("SET LOCAL jit = off; SET LOCAL work_mem = '32MB'")
            .await
            .map_err(classify)?;
        let st = tx.prepare_cached(SQL_CREATED).await.map_err(classify)?;
        let created: i64 = tx
            .query_one(&st, &[&from, &to])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(classify)?;
        let mut figures = Vec::with_capacity(2);
        for sql in [first_replies_sql(), resolutions_sql()] {
            let st = tx.prepare_cached(&sql).await.map_err(classify)?;
            let rows = tx.query(&st, &[&from, &to]).await.map_err(classify)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let officer: Option<String> = r.try_get(1).map_err(classify)?;
                let count: i64 = r.try_get(2).map_err(classify)?;
                out.push(FigureRow {
                    total: r.try_get::<_, i32>(0).map_err(classify)? == 1,
                    officer: officer
                        .map(|o| {
                            OfficerId::parse(o)
                                .map_err(|_| StoreError::backend("malformed officer id"))
                        })
                        .transpose()?,
                    count: u64::try_from(count).unwrap_or(0),
                    median_ms: r.try_get(3).map_err(classify)?,
                    p90_ms: r.try_get(4).map_err(classify)?,
                });
            }
            figures.push(out);
        }
        tx.commit().await.map_err(classify)?;
        let resolved = figures.pop().unwrap_or_default();
        let first = figures.pop().unwrap_or_default();
        Ok(report::assemble(
            period,
            u64::try_from(created).unwrap_or(0),
            first,
            resolved,
        ))
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::store::{PgOptions, PgStore};
    use crate::testing::TestPg;

    /// The report's statements find their rows through their indexes, never by a
    /// sequential scan (the window functions' sorts are of the period's rows only).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn report_queries_read_ranges_of_their_indexes() {
        let Some(pg) = TestPg::start("report_queries_read_ranges_of_their_indexes") else {
            return;
        };
        let config = pg.database().await;
        let store = PgStore::connect_with(config, PgOptions::default())
            .await
            .unwrap();
        let client = store.client().await.unwrap();
        client
            .batch_execute("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan")
            .await
            .unwrap();
        for (i, (name, sql, indexes)) in [
            (
                "first reply",
                SQL_FIRST_REPLY.to_string(),
                vec!["messages_first_reply"],
            ),
            ("created", SQL_CREATED.to_string(), vec!["chats_by_created"]),
            (
                "first replies",
                first_replies_sql(),
                vec!["chats_by_created", "messages_first_reply"],
            ),
            ("resolutions", resolutions_sql(), vec!["chats_by_resolved"]),
        ]
        .into_iter()
        .enumerate()
        {
            let args = if sql.contains("$2") { "0, 1" } else { "'0'" };
            client
                .batch_execute(&format!("PREPARE r{i} AS {sql}"))
                .await
                .unwrap();
            let plan: Vec<String> = client
                .query(&format!("EXPLAIN EXECUTE r{i}({args})"), &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            let plan = plan.join(" | ");
            for index in indexes {
                assert!(plan.contains(index), "{name}: {index} not in plan: {plan}");
            }
            assert!(!plan.contains("Seq Scan"), "{name}: scans: {plan}");
        }
    }
}
