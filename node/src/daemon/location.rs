//! The job spec's `inputLocation`: where a provider fetches the input. On-chain it is
//! opaque bytes; ShareThePower writes the consumer node's multiaddrs (each ending in
//! `/p2p/<peer id>`) as UTF-8, separated by spaces.

use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};

/// Encodes addresses for a job spec's `inputLocation`.
pub fn encode_input_location(addrs: &[Multiaddr]) -> Vec<u8> {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
        .into_bytes()
}

/// Parses an `inputLocation` into (peer, address) pairs; entries that are not a multiaddr
/// ending in `/p2p/<peer id>` are skipped.
pub fn parse_input_location(bytes: &[u8]) -> Vec<(PeerId, Multiaddr)> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Vec::new();
    };
    text.split_whitespace()
        .filter_map(|s| s.parse::<Multiaddr>().ok())
        .filter_map(|addr| match addr.iter().last() {
            Some(Protocol::P2p(peer)) => Some((peer, addr)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_skips_garbage() {
        let peer = PeerId::random();
        let a: Multiaddr = format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}")
            .parse()
            .unwrap();
        let mut bytes = encode_input_location(std::slice::from_ref(&a));
        bytes.extend_from_slice(b" /ip4/127.0.0.1/tcp/9 not-an-addr");
        assert_eq!(parse_input_location(&bytes), vec![(peer, a)]);
        assert!(parse_input_location(&[0xff, 0xfe]).is_empty());
    }
}
