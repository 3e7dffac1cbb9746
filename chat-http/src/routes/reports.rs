//! The operators' report: `GET /api/reports/desk?from=&to=` (the admin). The period is
//! checked and the figures computed by the engine (`chatcore::report` defines them, the
//! store computes them in SQL); this file reads the query and shapes the answer.

use axum::extract::State;
use chatcore::{DeskReport, ReportPeriod};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{Auth, Json, Query};
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(desk))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Period {
    /// Start of the period, included (RFC 3339, such as `2026-11-01T00:00:00Z`).
    from: Option<String>,
    /// End of the period, excluded; at most 366 days after `from`.
    to: Option<String>,
}

/// The desk's figures for a period: chats created and resolved, time to first reply and
/// to resolution (median, p90), the same per officer. The admin.
#[utoipa::path(get, path = "/api/reports/desk", tag = "operators", security(("bearer" = [])),
    params(Period),
    responses(
        (status = 200, description = "The report (docs/API.md, Reports)", body = DeskReport),
        (status = 400, description = "`invalid_parameter`: a missing or malformed time, `to` not after `from`, a period over 366 days", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the admin", body = ErrorBody),
    ))]
async fn desk(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Query(period): Query<Period>,
) -> Result<Json<DeskReport>, ApiError> {
    state.service().may_operate(&actor)?;
    let period = ReportPeriod::parse(period.from.as_deref(), period.to.as_deref())?;
    Ok(Json(state.service().desk_report(&actor, period).await?))
}
