//! Gossip announcements of posted jobs, tied to what the chain holds: the consumer builds
//! one from its spec, a provider accepts one only if the chain's spec says the same.

use alloy::primitives::U256;

use super::{Deployment, JobSpec, JobSpecExt};
use crate::p2p::{JobAnnouncement, PeerLocation};

/// The announcement of job `job_id` with `spec` on `deployment`, naming the peer that
/// serves the input and the root of the input's chunk manifest.
pub fn announcement(
    deployment: &Deployment,
    job_id: u64,
    spec: &JobSpec,
    posted_at: u64,
    input_manifest_root: [u8; 32],
    input_location: PeerLocation,
) -> JobAnnouncement {
    JobAnnouncement {
        chain_id: deployment.chain_id,
        contract: deployment.job_escrow.into_array(),
        job_id: U256::from(job_id).to_be_bytes(),
        kernel_id: spec.kernelId.0,
        input_hash: spec.inputHash.0,
        input_manifest_root,
        input_size: spec.inputSize,
        max_output_size: spec.maxOutputSize,
        bounty: spec.bounty_amount().saturating_to(),
        replicas: u16::from(spec.replicas),
        posted_at,
        commit_deadline: spec.commit_deadline(),
        reveal_deadline: spec.reveal_deadline(),
        input_location,
        part_hints: Vec::new(),
    }
}

/// The job id an announcement names, if it fits the escrow's counter.
pub fn announced_job_id(ann: &JobAnnouncement) -> Option<u64> {
    U256::from_be_bytes(ann.job_id).try_into().ok()
}

/// Whether `ann` is for `deployment`'s market at all (not another chain or contract).
pub fn is_for(ann: &JobAnnouncement, deployment: &Deployment) -> bool {
    ann.chain_id == deployment.chain_id && ann.contract == deployment.job_escrow.into_array()
}

/// Whether everything `ann` states that the chain also holds matches `spec`, the spec of
/// job `job_id` on `deployment` (the manifest root, the serving peer and the part hints
/// are off-chain).
pub fn matches_chain(
    ann: &JobAnnouncement,
    deployment: &Deployment,
    job_id: u64,
    spec: &JobSpec,
    posted_at: u64,
) -> bool {
    let mut expected = announcement(
        deployment,
        job_id,
        spec,
        posted_at,
        ann.input_manifest_root,
        ann.input_location.clone(),
    );
    expected.part_hints.clone_from(&ann.part_hints);
    *ann == expected
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, B256, Bytes, aliases::U40, aliases::U96};

    fn spec() -> JobSpec {
        JobSpec {
            consumer: Address::repeat_byte(1),
            kernelId: B256::repeat_byte(2),
            inputHash: B256::repeat_byte(3),
            inputSize: 100,
            maxOutputSize: 64,
            bounty: U96::from(10u64.pow(16)),
            collateral: U96::from(1u64),
            replicas: 3,
            quorum: 2,
            minReputation: 0,
            commitDeadline: U40::from(2_000u64),
            revealDeadline: U40::from(3_000u64),
            inputLocation: Bytes::from_static(b"/ip4/127.0.0.1/tcp/1"),
        }
    }

    fn deployment() -> Deployment {
        Deployment {
            chain_id: 31337,
            job_escrow: Address::repeat_byte(9),
            asset: Address::ZERO,
            deploy_block: 0,
        }
    }

    #[test]
    fn an_honest_announcement_matches_and_every_lie_is_caught() {
        let (d, s) = (deployment(), spec());
        let ann = announcement(&d, 7, &s, 1_000, [5; 32], PeerLocation::default());
        assert!(is_for(&ann, &d));
        assert_eq!(announced_job_id(&ann), Some(7));
        assert!(matches_chain(&ann, &d, 7, &s, 1_000));
        let mut hinted = ann.clone();
        hinted.part_hints = vec![[8; 32]];
        assert!(
            matches_chain(&hinted, &d, 7, &s, 1_000),
            "hints are off-chain"
        );
        assert!(!matches_chain(&ann, &d, 8, &s, 1_000), "other job");
        let lies: [fn(&mut JobAnnouncement); 6] = [
            |a| a.bounty += 1,
            |a| a.replicas = 1,
            |a| a.input_hash[0] ^= 1,
            |a| a.posted_at += 60,
            |a| a.kernel_id[31] ^= 1,
            |a| a.max_output_size *= 2,
        ];
        for lie in lies {
            let mut bad = ann.clone();
            lie(&mut bad);
            assert!(!matches_chain(&bad, &d, 7, &s, 1_000), "{bad:?}");
        }
        let mut elsewhere = ann.clone();
        elsewhere.chain_id = 1;
        assert!(!is_for(&elsewhere, &d));
    }
}
