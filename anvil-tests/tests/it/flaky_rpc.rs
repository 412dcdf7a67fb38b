//! A TCP relay in front of anvil's JSON-RPC that plays a failing endpoint: once armed, it
//! lets the next `eth_sendRawTransaction` reach anvil, swallows the reply (the transaction
//! is mined, its sender never hears so), then goes dark for a while: open connections are
//! cut and new ones are closed at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;

const TRIGGER: &[u8] = b"eth_sendRawTransaction";

struct Control {
    armed: AtomicBool,
    outage: Duration,
    dark_until: Mutex<Option<Instant>>,
    /// Bumped when an outage starts, so live relays drop their connections.
    outages: watch::Sender<u32>,
}

impl Control {
    async fn is_dark(&self) -> bool {
        self.dark_until
            .lock()
            .await
            .is_some_and(|t| Instant::now() < t)
    }

    async fn go_dark(&self) {
        *self.dark_until.lock().await = Some(Instant::now() + self.outage);
        self.outages.send_modify(|n| *n += 1);
    }
}

/// The relay; dropping it stops listening.
pub(crate) struct FlakyRpc {
    /// `http://127.0.0.1:<port>` to hand to the node instead of anvil's URL.
    pub url: String,
    control: Arc<Control>,
    task: tokio::task::JoinHandle<()>,
}

impl FlakyRpc {
    /// Relays to `upstream` (`host:port`); outages last `outage`.
    pub(crate) async fn start(upstream: String, outage: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let url = format!("http://{}", listener.local_addr().expect("relay addr"));
        let control = Arc::new(Control {
            armed: AtomicBool::new(false),
            outage,
            dark_until: Mutex::new(None),
            outages: watch::channel(0).0,
        });
        let task = tokio::spawn(accept_loop(listener, upstream, control.clone()));
        Self { url, control, task }
    }

    /// Swallow the reply to the next transaction sent through the relay, then go dark.
    pub(crate) fn arm(&self) {
        self.control.armed.store(true, Ordering::SeqCst);
    }

    /// Whether the armed outage has started.
    pub(crate) async fn tripped(&self) -> bool {
        *self.control.outages.borrow() > 0
    }

    /// Whether the endpoint is down right now.
    pub(crate) async fn is_dark(&self) -> bool {
        self.control.is_dark().await
    }
}

impl Drop for FlakyRpc {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: String, control: Arc<Control>) {
    while let Ok((client, _)) = listener.accept().await {
        if control.is_dark().await {
            drop(client);
            continue;
        }
        tokio::spawn(relay(client, upstream.clone(), control.clone()));
    }
}

async fn relay(mut client: TcpStream, upstream: String, control: Arc<Control>) {
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let mut outages = control.outages.subscribe();
    let (mut client_rx, mut client_tx) = client.split();
    let (mut server_rx, mut server_tx) = server.split();
    let swallow = AtomicBool::new(false);
    let requests = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = client_rx.read(&mut buf).await.ok().filter(|&n| n > 0)?;
            let chunk = &buf[..n];
            if chunk.windows(TRIGGER.len()).any(|w| w == TRIGGER)
                && control.armed.swap(false, Ordering::SeqCst)
            {
                swallow.store(true, Ordering::SeqCst);
            }
            server_tx.write_all(chunk).await.ok()?;
        }
        #[allow(unreachable_code)]
        None::<()>
    };
    let replies = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = server_rx.read(&mut buf).await.ok().filter(|&n| n > 0)?;
            if swallow.load(Ordering::SeqCst) {
                // anvil has answered, so the transaction is in; the sender never learns.
                control.go_dark().await;
                return None::<()>;
            }
            client_tx.write_all(&buf[..n]).await.ok()?;
        }
    };
    tokio::select! {
        _ = requests => {}
        _ = replies => {}
        _ = outages.changed() => {}
    }
}
