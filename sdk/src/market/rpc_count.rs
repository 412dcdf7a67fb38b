//! Counting the JSON-RPC requests a [`super::Market`] makes: a transport layer that adds
//! one per request (a batch counts each of its calls), so a node can show what a job costs
//! its endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use alloy::rpc::json_rpc::{RequestPacket, ResponsePacket};
use alloy::transports::{TransportError, TransportFut};
use tower::{Layer, Service};

/// A shared count of requests sent; clones count into the same total.
#[derive(Debug, Clone, Default)]
pub struct RpcCounter(Arc<AtomicU64>);

impl RpcCounter {
    /// Requests sent so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl<S> Layer<S> for RpcCounter {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted {
            inner,
            count: self.clone(),
        }
    }
}

/// The counting service wrapped around a transport.
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    count: RpcCounter,
}

impl<S> Service<RequestPacket> for Counted<S>
where
    S: Service<RequestPacket, Response = ResponsePacket, Error = TransportError>
        + Send
        + Clone
        + 'static,
    S::Future: Send + 'static,
{
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: RequestPacket) -> Self::Future {
        let calls = match &request {
            RequestPacket::Single(_) => 1,
            RequestPacket::Batch(b) => b.len() as u64,
        };
        self.count.0.fetch_add(calls, Ordering::Relaxed);
        let mut inner = self.inner.clone();
        Box::pin(async move { inner.call(request).await })
    }
}
