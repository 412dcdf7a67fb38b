//! `stp explorer` against a real devnet (anvil, provider nodes, one of them lying, jobs
//! posted with `stp job post`): its JSON API (outcomes, a slash, bad requests, an RPC
//! endpoint that dies) and its pages in real headless Chromium through chromedriver.

#[path = "../devnet/mod.rs"]
mod devnet;

mod api;
mod browser;
mod support;
