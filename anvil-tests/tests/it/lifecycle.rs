//! A job's whole life through the SDK (protocol v2): stake, post, commit (which takes the
//! slot), reveal (the last reveal settles), withdraw; finalize on the deadline paths,
//! refunds, slashing into the burned total, the draw and decoded errors.

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use stp_sdk::bindings::JobEscrow::JobEscrowErrors;
use stp_sdk::market::{Market, MarketError, Outcome, Revealed};

use crate::support::{Net, Posted, eth, spec};

const RESULT: B256 = B256::repeat_byte(0xaa);
const WRONG: B256 = B256::repeat_byte(0xbb);

/// Every market in `ms` commits its hash (lane 0), then reveals it, in order.
async fn commit_and_reveal(ms: &[&Market], job: &Posted, hashes: &[B256]) -> Revealed {
    for (i, (m, h)) in ms.iter().zip(hashes).enumerate() {
        let salt = B256::repeat_byte(i as u8 + 1);
        m.commit(&job.r(), 0, *h, salt).await.expect("commit");
    }
    let mut last = None;
    for (i, (m, h)) in ms.iter().zip(hashes).enumerate() {
        let salt = B256::repeat_byte(i as u8 + 1);
        let r = m.reveal(&job.r(), 0, *h, salt).await.expect("reveal");
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
    assert!(
        matches!(settled, MarketError::AlreadySettled(_)),
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
    let (consumer, keeper) = (net.market(2).await, net.market(3).await);
    let provider = net.staked_providers(1).await.remove(0);
    let now = consumer.chain_time().await.unwrap();
    let job = Posted::post(&consumer, spec(net.addr(2), now, 1, "0.01", "0.1")).await;
    let last = commit_and_reveal(&[&provider], &job, &[RESULT]).await;
    assert_settled_by(&last, &keeper, job.id).await;

    let h = consumer.job_history(job.id).await.unwrap();
    assert_eq!(h.outcome, Some((Outcome::Completed, RESULT)));
    assert_eq!(h.committers(), vec![net.addr(1)]);
    assert!(
        h.slots[0].drawn,
        "the only staker is drawn at the base rate"
    );
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
async fn erc20_three_replicas_slash_the_dissenter_into_the_burned_total() {
    let net = Net::start(true).await;
    let consumer = net.market(4).await;
    let providers = net.staked_providers(3).await;
    let now = consumer.chain_time().await.unwrap();
    let consumer_tokens = consumer.wallet_balance(net.addr(4)).await.unwrap();
    let job = Posted::post(&consumer, spec(net.addr(4), now, 3, "0.03", "0.1")).await;
    assert_eq!(
        consumer.wallet_balance(net.addr(4)).await.unwrap(),
        consumer_tokens - eth("0.03"),
        "the bounty is escrowed in tokens"
    );
    let refs: Vec<&Market> = providers.iter().collect();
    // The dissenter reveals last: its reveal names the others' hash and slashes itself.
    let last = commit_and_reveal(&refs, &job, &[RESULT, RESULT, WRONG]).await;
    assert_settled_by(&last, &consumer, job.id).await;

    for i in [1, 2] {
        assert_eq!(
            consumer.balance_of(net.addr(i)).await.unwrap(),
            eth("0.015")
        );
    }
    assert_eq!(consumer.balance_of(net.addr(3)).await.unwrap(), U256::ZERO);
    let slashed = consumer.stake_of(net.addr(3)).await.unwrap();
    assert_eq!(slashed.staked, eth("0.95"), "half of the 0.1 collateral");
    assert_eq!(slashed.locked, U256::ZERO);
    assert_eq!(
        consumer.reputation_of(net.addr(3)).await.unwrap().slashed,
        1
    );
    // P1: the slash is burned, the consumer gets nothing of it.
    assert_eq!(consumer.balance_of(net.addr(4)).await.unwrap(), U256::ZERO);
    assert_eq!(consumer.burned().await.unwrap(), eth("0.05"));
    assert_eq!(consumer.total_stake().await.unwrap(), eth("2.95"));
}

#[tokio::test]
async fn missing_reveal_waits_for_the_deadline_then_anyone_finalizes() {
    let net = Net::start(false).await;
    let (consumer, keeper) = (net.market(4).await, net.market(5).await);
    let providers = net.staked_providers(3).await;
    let now = consumer.chain_time().await.unwrap();
    let job = Posted::post(&consumer, spec(net.addr(4), now, 3, "0.03", "0.1")).await;
    for (i, m) in providers.iter().enumerate() {
        let salt = B256::repeat_byte(i as u8 + 1);
        m.commit(&job.r(), 0, RESULT, salt).await.unwrap();
    }
    // Providers 1 and 2 reveal; provider 3 never does.
    for (i, m) in providers.iter().enumerate().take(2) {
        let salt = B256::repeat_byte(i as u8 + 1);
        let r = m.reveal(&job.r(), 0, RESULT, salt).await.unwrap();
        assert_eq!(r.settled, None, "not the last reveal");
    }
    let counters = keeper.job_counters(job.id).await.unwrap().expect("live");
    assert_eq!(counters.revealed, 2);
    let early = keeper.finalize(job.id).await.unwrap_err();
    assert!(
        matches!(early, MarketError::NotFinalizableYet { from, .. } if from == now + 301),
        "{early}"
    );
    net.advance(&keeper, 301).await;
    keeper.finalize(job.id).await.unwrap();
    let h = consumer.job_history(job.id).await.unwrap();
    assert_eq!(h.outcome, Some((Outcome::Completed, RESULT)));
    assert_eq!(keeper.balance_of(net.addr(1)).await.unwrap(), eth("0.015"));
    assert_eq!(keeper.reputation_of(net.addr(3)).await.unwrap().missed, 1);
    assert_eq!(keeper.balance_of(net.addr(4)).await.unwrap(), U256::ZERO);
    assert_eq!(keeper.burned().await.unwrap(), eth("0.05"));
    assert!(
        keeper.job_counters(job.id).await.unwrap().is_none(),
        "deleted"
    );
}

#[tokio::test]
async fn a_job_short_of_slots_refunds_the_consumer_and_releases_the_committers() {
    let net = Net::start(false).await;
    let consumer = net.market(4).await;
    let providers = net.staked_providers(3).await;
    let now = consumer.chain_time().await.unwrap();
    let job = Posted::post(&consumer, spec(net.addr(4), now, 3, "0.03", "0.1")).await;
    // Two of three slots taken; the third provider never commits (e.g. withheld input).
    for m in &providers[..2] {
        m.commit(&job.r(), 0, RESULT, B256::ZERO).await.unwrap();
    }
    let early = consumer.finalize(job.id).await.unwrap_err();
    assert!(
        matches!(early, MarketError::NotFinalizableYet { .. }),
        "{early}"
    );
    net.advance(&consumer, 201).await;
    consumer.finalize(job.id).await.unwrap();
    let h = consumer.job_history(job.id).await.unwrap();
    assert_eq!(h.outcome.map(|(o, _)| o), Some(Outcome::Unfilled));
    assert_eq!(consumer.balance_of(net.addr(4)).await.unwrap(), eth("0.03"));
    for i in 1..=3 {
        let s = consumer.stake_of(net.addr(i)).await.unwrap();
        assert_eq!((s.staked, s.locked), (eth("1"), U256::ZERO), "provider {i}");
    }
    assert_eq!(consumer.burned().await.unwrap(), U256::ZERO);
}

#[tokio::test]
async fn commit_errors_are_decoded_custom_errors() {
    let net = Net::start(false).await;
    let (provider, consumer) = (net.market(1).await, net.market(2).await);
    let now = consumer.chain_time().await.unwrap();
    let job = Posted::post(&consumer, spec(net.addr(2), now, 2, "0.02", "0.1")).await;
    let unstaked = provider
        .commit(&job.r(), 0, RESULT, B256::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(
            unstaked.revert(),
            Some(JobEscrowErrors::StakeBelowMinimum(_))
        ),
        "{unstaked}"
    );
    assert!(
        unstaked.to_string().contains("stp provider stake"),
        "{unstaked}"
    );
    // Stake added after the post is not in this job's draw.
    provider.stake(eth("1")).await.unwrap();
    let too_new = provider
        .commit(&job.r(), 0, RESULT, B256::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(
            too_new.revert(),
            Some(JobEscrowErrors::EscrowStakeTooNew(_))
        ),
        "{too_new}"
    );

    net.advance(&provider, 1).await;
    let now = consumer.chain_time().await.unwrap();
    let job = Posted::post(&consumer, spec(net.addr(2), now, 2, "0.02", "0.1")).await;
    provider
        .commit(&job.r(), 0, RESULT, B256::ZERO)
        .await
        .unwrap();
    let twice = provider
        .commit(&job.r(), 0, RESULT, B256::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(twice.revert(), Some(JobEscrowErrors::EscrowLaneBusy(_))),
        "{twice}"
    );
    let early = provider
        .reveal(&job.r(), 0, RESULT, B256::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(
            early.revert(),
            Some(JobEscrowErrors::EscrowRevealNotOpen(_))
        ),
        "{early}"
    );
}

#[tokio::test]
async fn a_small_stake_is_drawn_only_once_the_draw_widens() {
    let net = Net::start(false).await;
    let consumer = net.market(9).await;
    // Eight providers: seven stake 1, the eighth 0.1 (a share of about 1.4 %).
    let _big = net.staked_providers(7).await;
    let small = net.market(8).await;
    small.stake(eth("0.1")).await.unwrap();
    net.advance(&small, 1).await;
    let now = consumer.chain_time().await.unwrap();
    let job = Posted::post(&consumer, spec(net.addr(9), now, 1, "0.01", "0.01")).await;
    let d = small.draw_of(&job.r(), net.addr(8)).await.unwrap();
    let from = d
        .eligible_from
        .expect("eligible before the commit deadline");
    if !d.eligible {
        assert!(!d.drawn);
        let refused = small
            .commit(&job.r(), 0, RESULT, B256::ZERO)
            .await
            .unwrap_err();
        assert!(
            matches!(refused.revert(), Some(JobEscrowErrors::EscrowNotDrawn(_))),
            "{refused}"
        );
        // From `eligible_from` on, the widened threshold admits it.
        let wait = from.saturating_sub(small.chain_time().await.unwrap());
        net.advance(&small, wait).await;
        assert!(small.draw_of(&job.r(), net.addr(8)).await.unwrap().eligible);
    }
    small.commit(&job.r(), 0, RESULT, B256::ZERO).await.unwrap();
    assert_eq!(
        small.job_history(job.id).await.unwrap().slots[0].drawn,
        d.drawn
    );
}

#[tokio::test]
async fn no_quorum_refunds_the_consumer_when_the_last_reveal_settles() {
    let net = Net::start(false).await;
    let consumer = net.market(4).await;
    let providers = net.staked_providers(3).await;
    let now = consumer.chain_time().await.unwrap();
    let job = Posted::post(&consumer, spec(net.addr(4), now, 3, "0.03", "0.1")).await;
    // Three different answers: no two agree, so no result reaches the quorum of 2.
    let refs: Vec<&Market> = providers.iter().collect();
    let settled = commit_and_reveal(&refs, &job, &[RESULT, WRONG, B256::repeat_byte(0xcc)])
        .await
        .settled;
    assert_eq!(settled.map(|(o, _)| o), Some(Outcome::NoQuorum));
    assert_eq!(
        consumer.balance_of(net.addr(4)).await.unwrap(),
        eth("0.03"),
        "bounty refunded"
    );
    for i in 1..=3 {
        assert_eq!(consumer.balance_of(net.addr(i)).await.unwrap(), U256::ZERO);
        let s = consumer.stake_of(net.addr(i)).await.unwrap();
        assert_eq!((s.staked, s.locked), (eth("1"), U256::ZERO), "released");
    }
    assert!(consumer.job_counters(job.id).await.unwrap().is_none());
}

#[tokio::test]
async fn windows_outside_the_market_bounds_are_refused_at_post() {
    let net = Net::start(false).await;
    let consumer = net.market(2).await;
    let now = consumer.chain_time().await.unwrap();
    let mut s = spec(net.addr(2), now, 1, "0.01", "0");
    s.commitDeadline = alloy::primitives::aliases::U40::from(now + 2);
    let short = consumer.post_job(s.clone()).await.unwrap_err();
    assert!(
        matches!(
            short.revert(),
            Some(JobEscrowErrors::EscrowWindowTooShort(_))
        ),
        "{short}"
    );
    s.commitDeadline = alloy::primitives::aliases::U40::from(now + 100);
    s.revealDeadline = alloy::primitives::aliases::U40::from(now + 200_000);
    let far = consumer.post_job(s).await.unwrap_err();
    assert!(
        matches!(far.revert(), Some(JobEscrowErrors::EscrowDeadlineTooFar(_))),
        "{far}"
    );
}

#[tokio::test]
async fn invalid_specs_are_refused_with_the_reason_as_text_and_its_limit() {
    let net = Net::start(false).await;
    let consumer = net.market(2).await;
    let now = consumer.chain_time().await.unwrap();
    let too_many = consumer
        .post_job(spec(net.addr(2), now, 17, "0.17", "0"))
        .await
        .unwrap_err();
    let Some(JobEscrowErrors::EscrowInvalidSpec(e)) = too_many.revert() else {
        panic!("not EscrowInvalidSpec: {too_many}");
    };
    assert_eq!(stp_sdk::market::text_of(&e.reason), "replicas");
    let text = too_many.to_string();
    assert!(
        text.contains("the market's maxReplicas (`stp market info` shows it; 16 on a devnet"),
        "{text}"
    );
    assert!(
        !text.contains("0x7265706c69636173"),
        "raw bytes32 in {text}"
    );
    let unpaid = consumer
        .post_job(spec(net.addr(2), now, 1, "0", "0"))
        .await
        .unwrap_err();
    assert!(
        unpaid
            .to_string()
            .contains("the bounty is zero: pass --bounty greater than 0"),
        "{unpaid}"
    );
}

#[tokio::test]
async fn a_stake_above_the_wallets_balance_is_insufficient_funds_not_an_outage() {
    let net = Net::start(false).await;
    let provider = net.market(1).await;
    // Dev accounts hold 10000 ETH.
    let err = provider.stake(eth("20000")).await.unwrap_err();
    assert!(
        matches!(err, MarketError::InsufficientFunds { call: "stake", .. }),
        "{err:?}"
    );
    assert!(!err.is_transient() && !err.is_rejection());
    assert!(!err.to_string().contains("is the node"), "{err}");
}

#[tokio::test]
async fn the_sdk_result_hash_and_terms_are_the_escrows() {
    let net = Net::start(false).await;
    let consumer = net.market(2).await;
    let now = consumer.chain_time().await.unwrap();
    let job = Posted::post(&consumer, spec(net.addr(2), now, 1, "0.01", "0")).await;
    let escrow = stp_sdk::bindings::JobEscrow::new(net.deployment.job_escrow, consumer.provider());
    let output = b"some output bytes".to_vec();
    let on_chain = escrow
        .resultHashOf(U256::from(job.id), output.clone().into())
        .call()
        .await
        .unwrap();
    let domain = consumer.result_domain(job.id);
    assert_eq!(domain.result_hash(&output), on_chain);
    assert_eq!(domain.output_of(&domain.blob(&output)), Some(&output[..]));
    // The same output in another job hashes differently: no reuse across jobs.
    assert_ne!(
        consumer.result_domain(job.id + 1).result_hash(&output),
        on_chain
    );
    let draw = U256::from(job.post_block) << 32 | U256::from(job.posted_at);
    let terms = escrow.termsOf(job.spec.clone(), draw).call().await.unwrap();
    assert_eq!(terms, job.r().terms());
}
