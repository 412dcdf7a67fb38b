//! The HTML pages and their assets, all embedded in the binary: one page shell per view
//! (the embedded script fills it from the API and keeps it live), and plain 4xx pages for
//! what does not exist.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as Extract};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::api::{ApiError, parse_address, parse_job_id};
use super::state::Shared;

const SHELL: &str = include_str!("assets/shell.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");

/// A page shell for view `page` about `arg` (a job id or an address, already validated:
/// nothing here comes unchecked from the request).
fn shell(page: &str, title: &str, arg: &str) -> Response {
    let html = SHELL
        .replace("{{page}}", page)
        .replace("{{title}}", title)
        .replace("{{arg}}", arg);
    Html(html).into_response()
}

/// A 4xx page saying what went wrong.
fn error_page(e: &ApiError) -> Response {
    let html = SHELL
        .replace("{{page}}", "error")
        .replace("{{title}}", "Not here")
        .replace("{{arg}}", "")
        .replace(
            "<!--error-->",
            &format!(
                "<h1>{} {}</h1><p>{}</p><p><a href=\"/\">Back to the jobs</a></p>",
                e.status().as_u16(),
                e.status().canonical_reason().unwrap_or("Error"),
                escape(&e.to_string())
            ),
        );
    (e.status(), Html(html)).into_response()
}

/// Escapes text for HTML (error messages may quote a parsed address).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /`: the jobs list.
pub async fn jobs() -> Response {
    shell("jobs", "Jobs", "")
}

/// `GET /providers`.
pub async fn providers() -> Response {
    shell("providers", "Providers", "")
}

/// `GET /network`.
pub async fn network() -> Response {
    shell("network", "Network", "")
}

/// `GET /jobs/{id}`: 400 for a malformed id, 404 for a job the market does not have.
pub async fn job(
    Extract(shared): Extract<Shared>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match id.map_err(ApiError::from).and_then(|p| parse_job_id(&p.0)) {
        Ok(id) => id,
        Err(e) => return error_page(&e),
    };
    if !shared.read().model.jobs.contains_key(&id) {
        return error_page(&ApiError::NotFound(format!(
            "No job {id} on this market (yet)."
        )));
    }
    shell("job", &format!("Job {id}"), &id.to_string())
}

/// `GET /providers/{address}`: 400 for a malformed address, 404 for one never seen.
pub async fn provider(
    Extract(shared): Extract<Shared>,
    address: Result<Path<String>, PathRejection>,
) -> Response {
    let address = match address
        .map_err(ApiError::from)
        .and_then(|p| parse_address(&p.0))
    {
        Ok(a) => a,
        Err(e) => return error_page(&e),
    };
    if !shared.read().model.providers.contains_key(&address) {
        return error_page(&ApiError::NotFound(format!(
            "No provider {address} on this market."
        )));
    }
    shell("provider", "Provider", &address.to_string())
}

/// Any other path.
pub async fn not_found() -> Response {
    error_page(&ApiError::NotFound(
        "There is no page at this address.".into(),
    ))
}

/// `GET /assets/app.js`.
pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

/// `GET /assets/style.css`.
pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// Anything but GET: the explorer is read-only.
pub async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        "read-only explorer: only GET",
    )
        .into_response()
}
