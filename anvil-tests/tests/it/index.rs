//! The provider node's chain index against a real anvil: it resumes from its cursor after
//! a restart, holds what the chain says about each job, and rolls back what a reorg
//! replaced (anvil's snapshot and revert stand in for a reorg).

use alloy::providers::Provider;
use stp_node::store::{JobStore, sync_index};
use stp_sdk::market::Market;

use crate::support::{Net, Posted, spec};

async fn call(m: &Market, method: &'static str, params: serde_json::Value) -> serde_json::Value {
    m.provider()
        .raw_request(method.into(), params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

#[tokio::test]
async fn the_index_resumes_from_its_cursor_and_matches_the_chain() {
    let net = Net::start(false).await;
    let consumer = net.market(3).await;
    let now = consumer.now().await.unwrap();
    let a = Posted::post(&consumer, spec(net.addr(2), now, 1, "0.02", "0.1")).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    {
        let store = JobStore::open(&path).unwrap();
        let update = sync_index(&store, &consumer, 0).await.unwrap();
        assert_eq!(update.events.len(), 1, "one JobPosted: {:?}", update.events);
        assert_eq!(update.rolled_back, None);
    }
    let b = Posted::post(&consumer, spec(net.addr(2), now, 1, "0.03", "0.1")).await;
    // Reopened (a restart): only what came after the cursor is read again.
    let store = JobStore::open(&path).unwrap();
    let before = consumer.rpc_requests();
    let update = sync_index(&store, &consumer, 0).await.unwrap();
    assert_eq!(
        update.events.len(),
        1,
        "only job b is new: {:?}",
        update.events
    );
    assert!(
        consumer.rpc_requests() - before <= 4,
        "a handful of requests per sync"
    );
    for job in [&a, &b] {
        assert_eq!(
            store.indexed_history(job.id).unwrap(),
            consumer.job_history(job.id).await.unwrap(),
            "job {}",
            job.id
        );
    }
    assert!(
        sync_index(&store, &consumer, 0)
            .await
            .unwrap()
            .events
            .is_empty()
    );
}

#[tokio::test]
async fn a_reorg_is_rolled_back_and_the_chain_as_it_is_now_ingested() {
    let net = Net::start(false).await;
    let consumer = net.market(3).await;
    let now = consumer.now().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = JobStore::open(&dir.path().join("jobs.redb")).unwrap();
    sync_index(&store, &consumer, 0).await.unwrap();

    let snapshot = call(&consumer, "evm_snapshot", serde_json::json!([])).await;
    let gone = Posted::post(&consumer, spec(net.addr(2), now, 1, "0.02", "0.1")).await;
    // With 2 confirmations the new block is not ingested yet ...
    assert!(
        sync_index(&store, &consumer, 2)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    // ... with none it is.
    let seen = sync_index(&store, &consumer, 0).await.unwrap();
    assert_eq!(seen.events.len(), 1);
    let bounty = |h: stp_sdk::market::JobHistory| h.spec.map(|s| s.bounty);
    assert_eq!(
        bounty(store.indexed_history(gone.id).unwrap()),
        Some(gone.spec.bounty)
    );

    // The chain replaces that block: the same job id now holds another spec, one block on.
    call(&consumer, "evm_revert", serde_json::json!([snapshot])).await;
    call(&consumer, "evm_mine", serde_json::json!([])).await;
    let other = net.market(4).await;
    let now_job = Posted::post(&other, spec(net.addr(2), now, 1, "0.05", "0.1")).await;
    assert_eq!(now_job.id, gone.id, "the reorg reused the id");
    let update = sync_index(&store, &consumer, 0).await.unwrap();
    assert!(update.rolled_back.is_some(), "{update:?}");
    assert_eq!(update.undone, vec![gone.id]);
    let h = store.indexed_history(gone.id).unwrap();
    assert_eq!(h, consumer.job_history(gone.id).await.unwrap());
    assert_eq!(
        bounty(h),
        Some(now_job.spec.bounty),
        "the spec the chain has now"
    );
    let head = consumer.provider().get_block_number().await.unwrap();
    assert_eq!(store.last_processed_block().unwrap(), Some(head));
}

#[tokio::test]
async fn an_index_of_a_chain_started_afresh_at_the_same_addresses_is_rebuilt() {
    // A devnet whose index went further than the fresh one now at the same escrow address.
    let old = Net::start(false).await;
    let old_consumer = old.market(3).await;
    let now = old_consumer.now().await.unwrap();
    for bounty in ["0.02", "0.03"] {
        Posted::post(&old_consumer, spec(old.addr(2), now, 1, bounty, "0.1")).await;
    }
    for _ in 0..5 {
        call(&old_consumer, "evm_mine", serde_json::json!([])).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = JobStore::open(&dir.path().join("jobs.redb")).unwrap();
    sync_index(&store, &old_consumer, 0).await.unwrap();

    let new = Net::start(false).await;
    let consumer = new.market(3).await;
    assert_eq!(
        consumer.deployment().job_escrow,
        old_consumer.deployment().job_escrow,
        "same deployer, same nonce: same address"
    );
    let now = consumer.now().await.unwrap();
    let job = Posted::post(&consumer, spec(new.addr(2), now, 1, "0.05", "0.1")).await;
    let update = sync_index(&store, &consumer, 0).await.unwrap();
    assert!(update.rolled_back.is_some(), "{update:?}");
    assert_eq!(
        update.undone,
        vec![1, 2],
        "both jobs of the old chain are gone"
    );
    assert_eq!(
        store.indexed_history(job.id).unwrap(),
        consumer.job_history(job.id).await.unwrap(),
        "the job as the fresh chain has it"
    );
    assert!(
        store.indexed_history(2).unwrap().spec.is_none(),
        "no job 2 here"
    );
}
