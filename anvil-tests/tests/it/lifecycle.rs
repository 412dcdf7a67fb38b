//! A job's whole life through the SDK: stake, post, claim, commit, reveal (the last reveal
//! settles), withdraw; finalize on the deadline paths, refunds, cancellation, slashing and
//! decoded errors.

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use stp_sdk::market::{Market, Outcome, Revealed};

use crate::support::{Net, eth, spec};

const RESULT: B256 = B256::repeat_byte(0xaa);
const WRONG: B256 = B256::repeat_byte(0xbb);

async fn commit_and_reveal(
    ms: &[&Market],
    id: u64,
    spec: &stp_sdk::market::JobSpec,
    hashes: &[B256],
) -> Revealed {
    for (i, (m, h)) in ms.iter().zip(hashes).enumerate() {
        let salt = B256::repeat_byte(i as u8 + 1);
        m.commit(id, spec, *h, salt).await.expect("commit");
    }
    let mut last = None;
    for (i, (m, h)) in ms.iter().zip(hashes).enumerate() {
        let salt = B256::repeat_byte(i as u8 + 1);
        let r = m.reveal(id, spec, *h, salt).await.expect("reveal");
        assert_eq!(
            r.settled.is_some(),
            i + 1 == ms.len(),
            "only the last reveal settles"
        );
        last = Some(r);
    }
    last.expect("at least one replica")
}

/// `last` settled the job as Completed with [`RESULT`], so nothing is left to finalize.
async fn assert_settled_by(last: &Revealed, keeper: &Market, id: u64) {
    assert_eq!(last.settled, Some((Outcome::Completed, RESULT)));
    let settled = keeper.finalize(id).await.unwrap_err();
    assert_eq!(
        settled.revert_name(),
        Some("EscrowJobNotFound"),
        "{settled}"
    );
}

async fn gas_cost(m: &Market, tx: B256) -> U256 {
    let r = m
        .provider()
        .get_transaction_receipt(tx)
        .await
        .unwrap()
        .expect("receipt");
    U256::from(r.gas_used) * U256::from(r.effective_gas_price)
}

#[tokio::test]
async fn eth_single_replica_is_paid_and_withdraws() {
    let net = Net::start(false).await;
    let (provider, consumer, keeper) = (
        net.market(1).await,
        net.market(2).await,
        net.market(3).await,
    );
    provider.stake(eth("1")).await.unwrap();
    let now = consumer.chain_time().await.unwrap();
    let s = spec(net.addr(2), now, 1, 1, "0.01", "0.1");
    let (id, _) = consumer.post_job(s.clone()).await.unwrap();
    provider.claim(id, &s).await.unwrap();
    assert_eq!(
        provider.stake_of(net.addr(1)).await.unwrap().locked,
        eth("0.1")
    );
    let last = commit_and_reveal(&[&provider], id, &s, &[RESULT]).await;
    assert_settled_by(&last, &keeper, id).await;

    let h = consumer.job_history(id).await.unwrap();
    assert_eq!(h.outcome, Some((Outcome::Completed, RESULT)));
    assert_eq!(h.claimers, vec![net.addr(1)]);
    assert_eq!(provider.balance_of(net.addr(1)).await.unwrap(), eth("0.01"));
    assert_eq!(
        provider.stake_of(net.addr(1)).await.unwrap().locked,
        U256::ZERO
    );
    assert_eq!(
        provider.reputation_of(net.addr(1)).await.unwrap().completed,
        1
    );

    let before = provider.wallet_balance(net.addr(1)).await.unwrap();
    let tx = provider.withdraw().await.unwrap();
    let after = provider.wallet_balance(net.addr(1)).await.unwrap();
    assert_eq!(after, before + eth("0.01") - gas_cost(&provider, tx).await);
    assert_eq!(provider.balance_of(net.addr(1)).await.unwrap(), U256::ZERO);
}

#[tokio::test]
async fn erc20_three_replicas_slash_the_dissenter_and_credit_the_consumer() {
    let net = Net::start(true).await;
    let consumer = net.market(4).await;
    let providers = net.staked_providers(3).await;
    let now = consumer.chain_time().await.unwrap();
    let s = spec(net.addr(4), now, 3, 2, "0.03", "0.1");
    let consumer_tokens = consumer.wallet_balance(net.addr(4)).await.unwrap();
    let (id, _) = consumer.post_job(s.clone()).await.unwrap();
    assert_eq!(
        consumer.wallet_balance(net.addr(4)).await.unwrap(),
        consumer_tokens - eth("0.03"),
        "the bounty is escrowed in tokens"
    );
    for m in &providers {
        m.claim(id, &s).await.unwrap();
    }
    let refs: Vec<&Market> = providers.iter().collect();
    // The dissenter reveals last: its reveal names the others' hash and slashes itself.
    let last = commit_and_reveal(&refs, id, &s, &[RESULT, RESULT, WRONG]).await;
    assert_settled_by(&last, &consumer, id).await;

    let h = consumer.job_history(id).await.unwrap();
    assert_eq!(h.outcome, Some((Outcome::Completed, RESULT)));
    for i in [1, 2] {
        assert_eq!(
            consumer.balance_of(net.addr(i)).await.unwrap(),
            eth("0.015")
        );
    }
    assert_eq!(consumer.balance_of(net.addr(3)).await.unwrap(), U256::ZERO);
    let slashed = consumer.stake_of(net.addr(3)).await.unwrap();
    assert_eq!(
        slashed.staked,
        eth("0.95"),
        "half of the 0.1 collateral is slashed"
    );
    assert_eq!(slashed.locked, U256::ZERO);
    assert_eq!(
        consumer.reputation_of(net.addr(3)).await.unwrap().slashed,
        1
    );
    assert_eq!(consumer.balance_of(net.addr(4)).await.unwrap(), eth("0.05"));

    consumer.withdraw().await.unwrap();
    assert_eq!(
        consumer.wallet_balance(net.addr(4)).await.unwrap(),
        consumer_tokens - eth("0.03") + eth("0.05")
    );
}

#[tokio::test]
async fn missing_reveal_waits_for_the_deadline_then_anyone_finalizes() {
    let net = Net::start(false).await;
    let (consumer, keeper) = (net.market(4).await, net.market(5).await);
    let providers = net.staked_providers(3).await;
    let now = consumer.chain_time().await.unwrap();
    let s = spec(net.addr(4), now, 3, 2, "0.03", "0.1");
    let (id, _) = consumer.post_job(s.clone()).await.unwrap();
    for m in &providers {
        m.claim(id, &s).await.unwrap();
    }
    for (i, m) in providers.iter().enumerate() {
        let salt = B256::repeat_byte(i as u8 + 1);
        m.commit(id, &s, RESULT, salt).await.unwrap();
    }
    // Providers 1 and 2 reveal; provider 3 never does.
    for (i, m) in providers.iter().enumerate().take(2) {
        let salt = B256::repeat_byte(i as u8 + 1);
        let r = m.reveal(id, &s, RESULT, salt).await.unwrap();
        assert_eq!(r.settled, None, "not the last reveal");
    }
    let counters = keeper.job_counters(id).await.unwrap().expect("live");
    assert_eq!(counters.revealed, 2);
    let early = keeper.finalize(id).await.unwrap_err();
    assert_eq!(early.revert_name(), Some("EscrowNotFinalizable"), "{early}");
    net.advance(&keeper, 301).await;
    keeper.finalize(id).await.unwrap();
    let h = consumer.job_history(id).await.unwrap();
    assert_eq!(h.outcome, Some((Outcome::Completed, RESULT)));
    assert_eq!(keeper.balance_of(net.addr(1)).await.unwrap(), eth("0.015"));
    assert_eq!(keeper.reputation_of(net.addr(3)).await.unwrap().missed, 1);
    assert_eq!(keeper.balance_of(net.addr(4)).await.unwrap(), eth("0.05"));
    assert!(keeper.job_counters(id).await.unwrap().is_none(), "deleted");
}

#[tokio::test]
async fn unclaimed_job_is_refunded_after_the_claim_deadline() {
    let net = Net::start(false).await;
    let consumer = net.market(2).await;
    let now = consumer.chain_time().await.unwrap();
    let s = spec(net.addr(2), now, 1, 1, "0.02", "0");
    let (id, _) = consumer.post_job(s).await.unwrap();
    let early = consumer.finalize(id).await.unwrap_err();
    assert_eq!(early.revert_name(), Some("EscrowNotFinalizable"), "{early}");
    net.advance(&consumer, 101).await;
    consumer.finalize(id).await.unwrap();
    let h = consumer.job_history(id).await.unwrap();
    assert_eq!(h.outcome.map(|(o, _)| o), Some(Outcome::Unfilled));
    assert_eq!(consumer.balance_of(net.addr(2)).await.unwrap(), eth("0.02"));
}

#[tokio::test]
async fn consumer_cancels_an_unclaimed_job_once() {
    let net = Net::start(false).await;
    let consumer = net.market(2).await;
    let other = net.market(3).await;
    let now = consumer.chain_time().await.unwrap();
    let s = spec(net.addr(2), now, 1, 1, "0.02", "0");
    let (id, _) = consumer.post_job(s.clone()).await.unwrap();
    let not_mine = other.cancel(id, &s).await.unwrap_err();
    assert_eq!(
        not_mine.revert_name(),
        Some("EscrowNotConsumer"),
        "{not_mine}"
    );
    consumer.cancel(id, &s).await.unwrap();
    let h = consumer.job_history(id).await.unwrap();
    assert_eq!(h.outcome.map(|(o, _)| o), Some(Outcome::Cancelled));
    assert_eq!(consumer.balance_of(net.addr(2)).await.unwrap(), eth("0.02"));
    let again = consumer.cancel(id, &s).await.unwrap_err();
    assert_eq!(again.revert_name(), Some("EscrowJobNotFound"), "{again}");
}

#[tokio::test]
async fn claiming_twice_is_a_decoded_custom_error() {
    let net = Net::start(false).await;
    let (provider, consumer) = (net.market(1).await, net.market(2).await);
    let now = consumer.chain_time().await.unwrap();
    let s = spec(net.addr(2), now, 2, 2, "0.02", "0.1");
    let (id, _) = consumer.post_job(s.clone()).await.unwrap();
    let unstaked = provider.claim(id, &s).await.unwrap_err();
    assert_eq!(
        unstaked.revert_name(),
        Some("StakeBelowMinimum"),
        "{unstaked}"
    );
    assert!(
        unstaked.to_string().contains("stp provider stake"),
        "{unstaked}"
    );
    provider.stake(eth("1")).await.unwrap();
    provider.claim(id, &s).await.unwrap();
    let twice = provider.claim(id, &s).await.unwrap_err();
    assert_eq!(twice.revert_name(), Some("EscrowAlreadyClaimed"), "{twice}");
}

#[tokio::test]
async fn no_quorum_refunds_the_consumer_when_the_last_reveal_settles() {
    let net = Net::start(false).await;
    let consumer = net.market(4).await;
    let providers = net.staked_providers(3).await;
    let now = consumer.chain_time().await.unwrap();
    let s = spec(net.addr(4), now, 3, 2, "0.03", "0.1");
    let (id, _) = consumer.post_job(s.clone()).await.unwrap();
    for m in &providers {
        m.claim(id, &s).await.unwrap();
    }
    // Three different answers: no two agree, so no result reaches the quorum of 2.
    let hashes = [RESULT, WRONG, B256::repeat_byte(0xcc)];
    for (i, (m, h)) in providers.iter().zip(hashes).enumerate() {
        m.commit(id, &s, h, B256::repeat_byte(i as u8 + 1))
            .await
            .unwrap();
    }
    let mut settled = None;
    for (i, (m, h)) in providers.iter().zip(hashes).enumerate() {
        settled = m
            .reveal(id, &s, h, B256::repeat_byte(i as u8 + 1))
            .await
            .unwrap()
            .settled;
    }
    assert_eq!(
        settled.map(|(o, _)| o),
        Some(Outcome::NoQuorum),
        "the last reveal settled"
    );
    let h = consumer.job_history(id).await.unwrap();
    assert_eq!(h.outcome.map(|(o, _)| o), Some(Outcome::NoQuorum));
    assert_eq!(
        consumer.balance_of(net.addr(4)).await.unwrap(),
        eth("0.03"),
        "bounty refunded"
    );
    for i in 1..=3 {
        assert_eq!(
            consumer.balance_of(net.addr(i)).await.unwrap(),
            U256::ZERO,
            "nobody paid"
        );
        assert_eq!(
            consumer.stake_of(net.addr(i)).await.unwrap().locked,
            U256::ZERO
        );
    }
    assert!(
        consumer.job_counters(id).await.unwrap().is_none(),
        "deleted"
    );
}
