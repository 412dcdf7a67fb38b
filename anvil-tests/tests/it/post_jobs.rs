//! `postJobs` through the SDK: a 64-chunk batch in one transaction, read back job by job
//! from the chain, the sum escrowed, a chunk settled as a single post would be, and a bad
//! spec refusing the whole batch with its index.

use alloy::primitives::{B256, U256, aliases::U96};
use stp_sdk::bindings::JobEscrow::JobEscrowErrors;
use stp_sdk::market::{EventKind, JobKind, JobRef, JobSpec, Market, MarketError, Outcome};

use crate::support::{Net, eth, spec};

/// `n` one-replica chunk specs of `consumer`: each its own input and bounty.
async fn chunks(net: &Net, consumer: &Market, n: usize) -> Vec<JobSpec> {
    let now = consumer.chain_time().await.unwrap();
    (0..n)
        .map(|i| {
            let mut s = spec(net.addr(2), now, 1, "0.001", "0.01");
            s.inputHash = B256::from(U256::from(i + 1));
            s.bounty = U96::saturating_from(eth("0.001") + U256::from(i));
            s
        })
        .collect()
}

async fn posts_64_chunks_and_reads_them_back(erc20: bool) {
    let net = Net::start(erc20).await;
    let consumer = net.market(2).await;
    let provider = net.staked_providers(1).await.remove(0);
    let specs = chunks(&net, &consumer, 64).await;
    let sum = specs
        .iter()
        .fold(U256::ZERO, |a, s| a + U256::from(s.bounty));
    let escrow = net.deployment.job_escrow;
    let held = consumer.wallet_balance(escrow).await.unwrap();
    let first = consumer.next_job_id().await.unwrap();

    let posted = consumer.post_jobs(specs.clone()).await.expect("postJobs");

    assert_eq!(posted.len(), 64);
    let block = posted[0].post_block;
    for (i, p) in posted.iter().enumerate() {
        assert_eq!(p.job_id, first + i as u64, "consecutive ids in spec order");
        assert_eq!(
            (p.post_block, p.tx),
            (block, posted[0].tx),
            "one transaction"
        );
        assert_eq!(p.kind, JobKind::Plain);
    }
    assert_eq!(consumer.next_job_id().await.unwrap(), first + 64);
    assert_eq!(consumer.wallet_balance(escrow).await.unwrap(), held + sum);
    // Every log reader sees 64 ordinary JobPosted events.
    let events = consumer.events(block, block).await.unwrap();
    let ids: Vec<u64> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::JobPosted { job_id, .. } => Some(*job_id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, (first..first + 64).collect::<Vec<_>>());
    for (p, s) in posted.iter().zip(&specs) {
        let h = consumer.job_history_since(p.job_id, block).await.unwrap();
        assert_eq!(
            h.spec.as_ref(),
            Some(s),
            "job {} reads back its spec",
            p.job_id
        );
        assert_eq!((h.posted_at, h.post_block), (p.posted_at, p.post_block));
        let live = consumer.job_counters(p.job_id).await.unwrap();
        assert!(live.is_some(), "job {} is live", p.job_id);
    }
    // A chunk settles as a single post: the only staker commits, reveals and is paid.
    let last = &posted[63];
    let job = JobRef {
        id: last.job_id,
        spec: &specs[63],
        posted_at: last.posted_at,
        post_block: last.post_block,
        kind: JobKind::Plain,
    };
    let result = B256::repeat_byte(0xaa);
    let salt = B256::repeat_byte(1);
    provider
        .commit(&job, 0, result, salt)
        .await
        .expect("commit");
    let r = provider
        .reveal(&job, 0, result, salt)
        .await
        .expect("reveal");
    assert_eq!(r.settled, Some((Outcome::Completed, result)));
    let paid = provider.balance_of(net.addr(1)).await.unwrap();
    assert_eq!(paid, U256::from(specs[63].bounty));
}

#[tokio::test]
async fn eth_batch_of_64_chunks_posts_in_one_transaction() {
    posts_64_chunks_and_reads_them_back(false).await;
}

#[tokio::test]
async fn erc20_batch_of_64_chunks_posts_in_one_transaction() {
    posts_64_chunks_and_reads_them_back(true).await;
}

#[tokio::test]
async fn a_bad_chunk_refuses_the_whole_batch_naming_its_index() {
    let net = Net::start(false).await;
    let consumer = net.market(2).await;
    let mut specs = chunks(&net, &consumer, 8).await;
    specs[5].bounty = U96::ZERO;
    let err = consumer.post_jobs(specs).await.unwrap_err();
    let MarketError::Reverted { error, .. } = &err else {
        panic!("expected a decoded revert, got {err}");
    };
    let JobEscrowErrors::EscrowBatchSpecInvalid(e) = error.as_ref() else {
        panic!("expected EscrowBatchSpecInvalid, got {err}");
    };
    assert_eq!(e.index, U256::from(5));
    assert!(err.to_string().contains("spec 5 of the batch"), "{err}");
    assert!(err.to_string().contains("the bounty is zero"), "{err}");
    assert_eq!(consumer.next_job_id().await.unwrap(), 1, "nothing posted");
    let empty = consumer.post_jobs(Vec::new()).await.unwrap_err();
    assert!(empty.to_string().contains("EscrowBatchSize"), "{empty}");
}
