//! The JSON API behind the pages: `/api/status`, `/api/network`, `/api/jobs`,
//! `/api/jobs/{id}`, `/api/providers`, `/api/providers/{address}` and the live stream
//! `/api/stream` (server-sent events). Every bad request is a typed [`ApiError`] answered
//! as `{"error": "..."}` with a 4xx status.

use std::collections::BTreeMap;
use std::convert::Infallible;

use alloy::primitives::Address;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State as Extract};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Serialize;

use super::state::{Shared, unix_now};
use super::views::{self, JobSummary, Status};

/// Rows per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 50;
/// Most rows per page.
const MAX_LIMIT: usize = 200;

/// A request the API cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A path segment or query value is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// No such job, provider or route.
    #[error("{0}")]
    NotFound(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
        }
        let body = Body {
            error: self.to_string(),
        };
        (self.status(), Json(body)).into_response()
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        Self::BadRequest(format!("malformed path: {}", e.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::BadRequest(format!("malformed query: {}", e.body_text()))
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Parses a job id path segment.
pub fn parse_job_id(s: &str) -> ApiResult<u64> {
    s.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::BadRequest("a job id is a whole number from 1".into()))
}

/// Parses a provider address path segment.
pub fn parse_address(s: &str) -> ApiResult<Address> {
    s.parse::<Address>()
        .map_err(|_| ApiError::BadRequest("an address is 0x followed by 40 hex digits".into()))
}

/// `GET /api/status`: how fresh the data is.
pub async fn status(Extract(shared): Extract<Shared>) -> Response {
    #[derive(Serialize)]
    struct Body<T> {
        #[serde(flatten)]
        sync: T,
        now: u64,
    }
    let sync = shared.read().sync.clone();
    Json(Body {
        sync,
        now: unix_now(),
    })
    .into_response()
}

/// `GET /api/network`: totals and jobs per hour.
pub async fn network(Extract(shared): Extract<Shared>) -> Response {
    let s = shared.read();
    Json(views::network(&s)).into_response()
}

/// Filters and page of `/api/jobs`.
#[derive(Debug, Default)]
struct JobQuery {
    status: Option<StatusFilter>,
    consumer: Option<Address>,
    provider: Option<Address>,
    kernel: Option<String>,
    page: usize,
    limit: usize,
}

#[derive(Debug, Clone, Copy)]
enum StatusFilter {
    One(Status),
    Settled,
    Live,
}

impl JobQuery {
    fn parse(q: BTreeMap<String, String>) -> ApiResult<Self> {
        let mut out = Self {
            page: 1,
            limit: DEFAULT_LIMIT,
            ..Self::default()
        };
        for (k, v) in q {
            if v.is_empty() {
                continue;
            }
            match k.as_str() {
                "phase" => {
                    out.status = Some(match v.as_str() {
                        "settled" => StatusFilter::Settled,
                        "live" => StatusFilter::Live,
                        s => StatusFilter::One(Status::parse(s).ok_or_else(|| {
                            ApiError::BadRequest("phase is one of open, revealing, finalizable, live, settled, completed, no_quorum, unfilled, challenged, overturned".into())
                        })?),
                    })
                }
                "consumer" => out.consumer = Some(parse_address(&v)?),
                "provider" => out.provider = Some(parse_address(&v)?),
                "kernel" => out.kernel = Some(v.to_lowercase()),
                "page" => {
                    out.page = v.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
                        ApiError::BadRequest("page is a whole number from 1".into())
                    })?
                }
                "limit" => {
                    out.limit = v
                        .parse()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| {
                            ApiError::BadRequest(format!("limit is a whole number from 1 to {MAX_LIMIT}"))
                        })?
                }
                _ => {
                    return Err(ApiError::BadRequest(
                        "unknown query parameter; known: phase, consumer, provider, kernel, page, limit".into(),
                    ));
                }
            }
        }
        Ok(out)
    }

    fn keeps(&self, job: &super::model::Job, row: &JobSummary) -> bool {
        let status_ok = match self.status {
            None => true,
            Some(StatusFilter::One(s)) => row.status == s,
            Some(StatusFilter::Settled) => row.status.is_settled(),
            Some(StatusFilter::Live) => !row.status.is_settled(),
        };
        status_ok
            && self.consumer.is_none_or(|c| row.consumer == c)
            && self
                .provider
                .is_none_or(|p| job.replicas.iter().any(|r| r.provider == p))
            && self.kernel.as_ref().is_none_or(|k| {
                row.kernel.to_lowercase() == *k || row.kernel_id.to_string().starts_with(k.as_str())
            })
    }
}

/// One page of jobs.
#[derive(Debug, Serialize)]
struct JobPage {
    jobs: Vec<JobSummary>,
    total: usize,
    page: usize,
    pages: usize,
}

/// `GET /api/jobs`: jobs newest first, filtered by `phase`, `consumer`, `provider`,
/// `kernel`, paged by `page` and `limit`.
pub async fn jobs(
    Extract(shared): Extract<Shared>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> ApiResult<Response> {
    let q = JobQuery::parse(query?.0)?;
    let s = shared.read();
    let now = s.sync.chain_time.unwrap_or(0);
    let rows: Vec<JobSummary> = s
        .model
        .jobs
        .values()
        .rev()
        .filter_map(|j| {
            let row = views::summary(j, now);
            q.keeps(j, &row).then_some(row)
        })
        .collect();
    let total = rows.len();
    let pages = total.div_ceil(q.limit).max(1);
    if q.page > pages {
        return Err(ApiError::BadRequest(format!(
            "page {} is past the last page ({pages})",
            q.page
        )));
    }
    let jobs = rows
        .into_iter()
        .skip((q.page - 1) * q.limit)
        .take(q.limit)
        .collect();
    Ok(Json(JobPage {
        jobs,
        total,
        page: q.page,
        pages,
    })
    .into_response())
}

/// `GET /api/jobs/{id}`: one job with its spec, replicas and timeline.
pub async fn job(
    Extract(shared): Extract<Shared>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let id = parse_job_id(&id?.0)?;
    let s = shared.read();
    let job = s
        .model
        .jobs
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no job {id} on this market (yet)")))?;
    Ok(Json(views::detail(job, s.sync.chain_time.unwrap_or(0))).into_response())
}

/// `GET /api/providers`: every provider seen, by address.
pub async fn providers(Extract(shared): Extract<Shared>) -> Response {
    let s = shared.read();
    let rows: Vec<_> = s
        .model
        .providers
        .keys()
        .filter_map(|a| views::provider_summary(&s, *a))
        .collect();
    Json(rows).into_response()
}

/// `GET /api/providers/{address}`: one provider with its earnings points and recent jobs.
pub async fn provider(
    Extract(shared): Extract<Shared>,
    address: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let address = parse_address(&address?.0)?;
    let s = shared.read();
    let detail = views::provider_detail(&s, address)
        .ok_or_else(|| ApiError::NotFound(format!("no provider {address} on this market")))?;
    Ok(Json(detail).into_response())
}

/// `GET /api/stream`: an `update` event after every sync (pages fetch again what they
/// show).
pub async fn stream(
    Extract(shared): Extract<Shared>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = shared.subscribe();
    let events = futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(u) => {
                    let data = serde_json::to_string(&u).unwrap_or_default();
                    return Some((Ok(SseEvent::default().event("update").data(data)), rx));
                }
                // A slow page missed some: the next one tells it all the same.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// Any other `/api/...` path.
pub async fn not_found() -> ApiError {
    ApiError::NotFound(
        "no such API route; see /api/jobs, /api/jobs/{id}, /api/providers, /api/providers/{address}, /api/network, /api/status, /api/stream".into(),
    )
}
