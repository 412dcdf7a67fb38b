//! The web explorer `stp explorer` serves: jobs in flight and settled, providers with their
//! stake, reputation and earnings, network totals, live as new events arrive.
//!
//! - [`model`]: the market folded from the escrow's raw logs (pure).
//! - [`sync`]: the background task keeping the chain index (`sync_index`) and the model
//!   current; the server keeps serving while the RPC endpoint is down and says how stale
//!   its data is.
//! - [`api`] (JSON) and [`pages`] (HTML shells, script and style embedded in the binary).
//!
//! Read-only by construction: it holds no key (a throwaway one to read the chain) and no
//! route sends a transaction.

pub mod api;
pub mod model;
pub mod pages;
pub mod state;
pub mod sync;
pub mod views;

use axum::Router;
use axum::routing::get;

pub use state::Shared;

/// The explorer's routes over `shared`.
pub fn router(shared: Shared) -> Router {
    let api = Router::new()
        .route("/status", get(api::status))
        .route("/network", get(api::network))
        .route("/jobs", get(api::jobs))
        .route("/jobs/{id}", get(api::job))
        .route("/providers", get(api::providers))
        .route("/providers/{address}", get(api::provider))
        .route("/stream", get(api::stream))
        .fallback(api::not_found);
    Router::new()
        .route("/", get(pages::jobs))
        .route("/jobs", get(pages::jobs))
        .route("/jobs/{id}", get(pages::job))
        .route("/providers", get(pages::providers))
        .route("/providers/{address}", get(pages::provider))
        .route("/network", get(pages::network))
        .route("/assets/app.js", get(pages::script))
        .route("/assets/style.css", get(pages::style))
        .nest("/api", api)
        .fallback(pages::not_found)
        .method_not_allowed_fallback(pages::method_not_allowed)
        .with_state(shared)
}
