//! Provider records in Kademlia: every provider announces itself as a provider of one
//! well-known key and stores its signed [`ProviderRecord`] under a per-peer key.
//!
//! Stored value: `len u16 | record | len u16 | public key (protobuf) | len u16 | signature`,
//! the signature by the provider's libp2p key over a domain tag and the record, so no
//! other peer can forge or alter a provider's record.

use libp2p::identity::{Keypair, PublicKey};
use libp2p::{Multiaddr, PeerId, kad};
use stp_sdk::p2p::{PeerLocation, ProviderRecord, WireError};

const DOMAIN: &[u8] = b"stp-provider-record-v1";

/// The key every provider provides; `find_providers` starts from it.
pub fn providers_key() -> kad::RecordKey {
    kad::RecordKey::new(&b"/stp/providers/1")
}

/// The key under which `peer`'s record is stored.
pub fn record_key(peer: &PeerId) -> kad::RecordKey {
    let mut k = b"/stp/provider/1/".to_vec();
    k.extend_from_slice(&peer.to_bytes());
    kad::RecordKey::new(&k)
}

/// Signs and encodes a record for storage in the DHT.
pub fn sign_record(key: &Keypair, record: &ProviderRecord) -> Result<Vec<u8>, WireError> {
    let body = record.encode()?;
    let mut msg = DOMAIN.to_vec();
    msg.extend_from_slice(&body);
    let sig = key
        .sign(&msg)
        .map_err(|_| WireError::Invalid("this key type cannot sign"))?;
    let public = key.public().encode_protobuf();
    let mut out = Vec::with_capacity(body.len() + public.len() + sig.len() + 6);
    for part in [&body, &public, &sig] {
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    Ok(out)
}

/// Decodes a stored value and checks that it is signed by the peer it describes.
pub fn verify_record(value: &[u8]) -> Result<ProviderRecord, WireError> {
    let mut rest = value;
    let mut parts = [&[][..]; 3];
    for part in &mut parts {
        if rest.len() < 2 {
            return Err(WireError::Truncated);
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        if rest.len() < len {
            return Err(WireError::Truncated);
        }
        *part = &rest[..len];
        rest = &rest[len..];
    }
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes(rest.len()));
    }
    let [body, public, sig] = parts;
    let record = ProviderRecord::decode(body)?;
    let public =
        PublicKey::try_decode_protobuf(public).map_err(|_| WireError::Invalid("bad public key"))?;
    if public.to_peer_id().to_bytes() != record.location.peer_id {
        return Err(WireError::Invalid("record is signed by another peer"));
    }
    let mut msg = DOMAIN.to_vec();
    msg.extend_from_slice(body);
    if !public.verify(&msg, sig) {
        return Err(WireError::Invalid("bad record signature"));
    }
    Ok(record)
}

/// Wire location of a libp2p peer (addresses capped as [`PeerLocation::new`] does).
pub fn to_location(peer: &PeerId, addrs: &[Multiaddr]) -> PeerLocation {
    PeerLocation::new(peer.to_bytes(), addrs.iter().map(Multiaddr::to_vec))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a wire location back into a peer id and its addresses (bad ones skipped).
    fn from_location(loc: &PeerLocation) -> Result<(PeerId, Vec<Multiaddr>), WireError> {
        let peer =
            PeerId::from_bytes(&loc.peer_id).map_err(|_| WireError::Invalid("bad peer id"))?;
        let addrs = loc
            .addrs
            .iter()
            .filter_map(|a| Multiaddr::try_from(a.clone()).ok())
            .collect();
        Ok((peer, addrs))
    }

    #[test]
    fn signed_record_verifies_and_forgery_fails() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let rec = ProviderRecord {
            location: to_location(&peer, std::slice::from_ref(&addr)),
            ..Default::default()
        };
        let value = sign_record(&key, &rec).unwrap();
        assert_eq!(verify_record(&value).unwrap(), rec);
        assert_eq!(from_location(&rec.location).unwrap(), (peer, vec![addr]));

        let other = Keypair::generate_ed25519();
        assert!(
            verify_record(&sign_record(&other, &rec).unwrap()).is_err(),
            "signed by someone else"
        );
        let mut tampered = value.clone();
        let n = tampered.len();
        tampered[n - 1] ^= 1;
        assert!(verify_record(&tampered).is_err());
        assert!(verify_record(&value[..10]).is_err());
    }

    #[test]
    fn record_of_a_node_listening_on_many_addresses_signs_with_the_first_eight() {
        let key = Keypair::generate_ed25519();
        let addrs: Vec<Multiaddr> = (1..=12)
            .map(|i| format!("/ip4/10.0.0.{i}/tcp/4001").parse().unwrap())
            .collect();
        let rec = ProviderRecord {
            location: to_location(&key.public().to_peer_id(), &addrs),
            ..Default::default()
        };
        let value = sign_record(&key, &rec).expect("a capped location encodes");
        let (_, back) = from_location(&verify_record(&value).unwrap().location).unwrap();
        assert_eq!(back, addrs[..stp_sdk::p2p::MAX_ADDRS]);
    }
}
