//! The reader of an export: pages of exchanges under a predictions filter,
//! newest first, each with its judgments up to the export's position, made
//! into items of the export's kind.

use super::Kind;
use super::items::{conversation_item, judgment_items, legacy_conversation, prediction_item};
use crate::views::judgments;
use crate::views::predictions::{
    self as view, Cursor, PredictionFilter, PredictionRow, PredictionSort,
};
use ftl_commands::Db;
use serde_json::Value;
use uuid::Uuid;

/// Exchanges read per page (and written per chunk).
const PAGE: i64 = 500;

/// Pages of export items under a filter, newest exchange first.
pub struct Pages {
    db: Db,
    project: Uuid,
    filter: PredictionFilter,
    after: Option<Cursor>,
    left: usize,
    done: bool,
    kind: Kind,
    legacy: bool,
}

impl Pages {
    /// At most `limit` exchanges of `project` under `filter` (its
    /// `until_position` is the export's position); `legacy`: conversations
    /// in the existing web app's shape.
    pub fn new(
        db: Db,
        project: Uuid,
        filter: PredictionFilter,
        limit: usize,
        kind: Kind,
        legacy: bool,
    ) -> Self {
        Pages {
            db,
            project,
            filter,
            after: None,
            left: limit,
            done: false,
            kind,
            legacy,
        }
    }

    /// Whether the last page has been read.
    pub fn done(&self) -> bool {
        self.done
    }

    /// The next page's items (empty once done).
    pub async fn next(&mut self) -> Result<Vec<Value>, sqlx::Error> {
        if self.done || self.left == 0 {
            self.done = true;
            return Ok(vec![]);
        }
        let n = (self.left as i64).min(PAGE);
        let rows = view::predictions(
            &self.db,
            self.project,
            &self.filter,
            PredictionSort::Newest,
            self.after,
            n,
        )
        .await?;
        self.after = rows.last().map(Cursor::of);
        if (rows.len() as i64) < n {
            self.done = true;
        }
        self.left = self.left.saturating_sub(rows.len());
        let ids: Vec<Uuid> = rows.iter().map(|r| r.prediction_id).collect();
        let history =
            judgments::history_of(&self.db, self.project, &ids, self.filter.until_position).await?;
        let by = judgments::by_exchange(history);
        let of = |r: &PredictionRow| by.get(&r.prediction_id).map_or(&[][..], |v| v.as_slice());
        Ok(match self.kind {
            Kind::Predictions => rows.iter().map(|r| prediction_item(r, of(r))).collect(),
            Kind::Conversations if self.legacy => {
                rows.iter().map(|r| legacy_conversation(r, of(r))).collect()
            }
            Kind::Conversations => rows.iter().map(|r| conversation_item(r, of(r))).collect(),
            Kind::Judgments => rows.iter().flat_map(|r| judgment_items(r, of(r))).collect(),
        })
    }
}
