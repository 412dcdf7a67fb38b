//! A shaped two-namespace network for swarm tests and benchmarks (Linux, root).
//!
//! [`NetLab::create`] makes two fresh network namespaces, a consumer side and a provider
//! side, joined by one veth pair (10.77.0.1 and 10.77.0.2, addresses that exist only
//! inside them), and limits the consumer side's egress with `tc qdisc tbf`: the
//! consumer's uplink. [`NetLab::runtime`] builds a tokio runtime whose threads have
//! entered one namespace, so every socket a node spawned on it opens lives there.
//! Dropping the lab deletes both namespaces (and with them the veth pair); nothing
//! outside them is touched.

use std::path::PathBuf;
use std::process::Command;

use libp2p::Multiaddr;

/// Why the lab could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetLabError {
    /// An `ip` or `tc` command failed (not root, no iproute2, no tbf in the kernel).
    #[error("`{command}` failed: {stderr}; the swarm lab needs root, iproute2 and the tbf qdisc")]
    Command {
        /// The command line.
        command: String,
        /// What it printed.
        stderr: String,
    },
    /// Building the namespaced runtime failed.
    #[error("cannot build a runtime in namespace {ns}: {reason}")]
    Runtime {
        /// The namespace.
        ns: String,
        /// Why.
        reason: String,
    },
}

/// Which side of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Behind the shaped uplink.
    Consumer,
    /// Unshaped; providers reach each other inside this namespace.
    Providers,
}

/// Two namespaces joined by a veth pair whose consumer end is rate-limited.
#[derive(Debug)]
pub struct NetLab {
    consumer: String,
    providers: String,
}

const CONSUMER_IP: &str = "10.77.0.1";
const PROVIDERS_IP: &str = "10.77.0.2";

impl NetLab {
    /// Creates the lab with the consumer's uplink limited to `uplink_mbit` Mbit/s.
    /// `tag` keeps concurrent labs (and processes) apart.
    pub fn create(tag: &str, uplink_mbit: u32) -> Result<Self, NetLabError> {
        let base = format!("stp-{tag}-{}", std::process::id());
        let lab = Self {
            consumer: format!("{base}-c"),
            providers: format!("{base}-p"),
        };
        let (c, p) = (lab.consumer.as_str(), lab.providers.as_str());
        run(&["ip", "netns", "add", c])?;
        run(&["ip", "netns", "add", p])?;
        run(&[
            "ip", "-n", c, "link", "add", "vc", "type", "veth", "peer", "name", "vp", "netns", p,
        ])?;
        for (ns, dev, ip) in [(c, "vc", CONSUMER_IP), (p, "vp", PROVIDERS_IP)] {
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                dev,
            ])?;
            run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        // Burst of ~10 ms at the rate (at least 16 KiB), queue up to 100 ms.
        let burst = (uplink_mbit as usize * 1_000_000 / 8 / 100).max(16 << 10);
        run(&[
            "tc",
            "-n",
            c,
            "qdisc",
            "add",
            "dev",
            "vc",
            "root",
            "tbf",
            "rate",
            &format!("{uplink_mbit}mbit"),
            "burst",
            &burst.to_string(),
            "latency",
            "100ms",
        ])?;
        Ok(lab)
    }

    /// A listen address on `side` (port chosen by the OS).
    pub fn listen_addr(&self, side: Side) -> Multiaddr {
        let ip = match side {
            Side::Consumer => CONSUMER_IP,
            Side::Providers => PROVIDERS_IP,
        };
        format!("/ip4/{ip}/tcp/0")
            .parse()
            .expect("static multiaddr is valid")
    }

    /// A multi-threaded runtime whose threads live in `side`'s namespace. Shut it down
    /// with [`tokio::runtime::Runtime::shutdown_background`] when done.
    pub fn runtime(
        &self,
        side: Side,
        threads: usize,
    ) -> Result<tokio::runtime::Runtime, NetLabError> {
        let ns = match side {
            Side::Consumer => &self.consumer,
            Side::Providers => &self.providers,
        };
        let path = PathBuf::from("/var/run/netns").join(ns);
        let err = |reason: String| NetLabError::Runtime {
            ns: ns.clone(),
            reason,
        };
        std::fs::metadata(&path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .enable_all()
            .on_thread_start(move || enter_namespace(&path))
            .build()
            .map_err(|e| err(e.to_string()))
    }
}

/// Moves the calling thread into the network namespace bound at `path`. A thread that
/// cannot is a broken lab: panic rather than open sockets outside it.
fn enter_namespace(path: &std::path::Path) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("cannot open network namespace {}: {e}", path.display()));
    // SAFETY: setns on a valid namespace fd only changes this thread's network namespace.
    #[allow(unsafe_code, reason = "entering a network namespace is a raw syscall")]
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "cannot enter network namespace {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for ns in [&self.consumer, &self.providers] {
            if let Err(e) = run(&["ip", "netns", "del", ns]) {
                tracing::warn!(error = %e, "could not delete a lab namespace");
            }
        }
    }
}

fn run(args: &[&str]) -> Result<(), NetLabError> {
    let command = args.join(" ");
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| NetLabError::Command {
            command: command.clone(),
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetLabError::Command {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
