//! The fold of escrow logs into jobs, providers and totals, on logs encoded here the way
//! the contract emits them.

use alloy::primitives::{Address, B256, Bytes, LogData, U256, aliases::U96};
use alloy::rpc::types::Log;
use alloy::sol_types::SolEvent;
use stp_sdk::bindings::{IJobEscrow::JobSpec, JobEscrow};
use stp_sdk::market::Outcome;

use super::{Model, Settlement};
use crate::explorer::views::{Status, status};

fn a(n: u8) -> Address {
    Address::repeat_byte(n)
}

/// Feeds `events` to a model as logs of consecutive blocks.
struct Chain {
    model: Model,
    block: u64,
}

impl Chain {
    fn emit(&mut self, data: LogData) {
        self.block += 1;
        let log = Log {
            inner: alloy::primitives::Log {
                address: a(0xee),
                data,
            },
            block_number: Some(self.block),
            log_index: Some(0),
            transaction_hash: Some(B256::repeat_byte(self.block as u8)),
            ..Log::default()
        };
        self.model.apply(&log, Some(1_000 + self.block));
    }
}

fn spec(bounty: u64, replicas: u8) -> JobSpec {
    JobSpec {
        consumer: a(9),
        kernelId: B256::repeat_byte(1),
        inputHash: B256::repeat_byte(2),
        inputSize: 64,
        maxOutputSize: 64,
        bounty: U96::from(bounty),
        collateral: U96::from(100u64),
        replicas,
        quorum: replicas / 2 + 1,
        minReputation: 0,
        commitDeadline: alloy::primitives::aliases::U40::from(2_000u64),
        revealDeadline: alloy::primitives::aliases::U40::from(3_000u64),
        inputLocation: Bytes::new(),
    }
}

fn posted(id: u64, bounty: u64, replicas: u8) -> LogData {
    JobEscrow::JobPosted {
        jobId: U256::from(id),
        consumer: a(9),
        draw: U256::from(1_000u64),
        spec: spec(bounty, replicas),
    }
    .encode_log_data()
}

fn committed(id: u64, who: Address) -> LogData {
    JobEscrow::ReplicaCommitted {
        jobId: U256::from(id),
        provider: who,
        lane: U256::ZERO,
        commitment: B256::ZERO,
        drawn: true,
    }
    .encode_log_data()
}

fn revealed(id: u64, who: Address, hash: B256) -> LogData {
    JobEscrow::ReplicaRevealed {
        jobId: U256::from(id),
        provider: who,
        resultHash: hash,
    }
    .encode_log_data()
}

fn settled(id: u64, who: Address, how: u8, payout: u64, slashed: u64) -> LogData {
    JobEscrow::ReplicaSettled {
        jobId: U256::from(id),
        provider: who,
        settlement: how,
        payout: U256::from(payout),
        slashed: U256::from(slashed),
    }
    .encode_log_data()
}

fn finalized(id: u64, outcome: u8, hash: B256, winners: u64, slashed: u64) -> LogData {
    JobEscrow::JobFinalized {
        jobId: U256::from(id),
        outcome,
        resultHash: hash,
        winners: U256::from(winners),
        slashed: U256::from(slashed),
    }
    .encode_log_data()
}

#[test]
fn a_completed_job_with_a_liar_and_an_unfilled_one_fold_into_jobs_providers_and_totals() {
    let mut c = Chain {
        model: Model::default(),
        block: 0,
    };
    let (good, bad) = (B256::repeat_byte(0xaa), B256::repeat_byte(0xbb));
    c.emit(posted(1, 30, 3));
    for p in [a(1), a(2), a(3)] {
        c.emit(committed(1, p));
    }
    c.emit(revealed(1, a(1), good));
    c.emit(revealed(1, a(3), bad));
    assert_eq!(status(&c.model.jobs[&1], 1_500), Status::Revealing);
    c.emit(revealed(1, a(2), good));
    c.emit(settled(1, a(1), 1, 15, 0));
    c.emit(settled(1, a(2), 1, 15, 0));
    c.emit(settled(1, a(3), 2, 0, 50));
    c.emit(finalized(1, 0, good, 2, 50));
    c.emit(posted(2, 20, 1));
    assert_eq!(c.model.totals.escrowed, U256::from(20));
    assert_eq!(status(&c.model.jobs[&2], 1_500), Status::Open);
    assert_eq!(status(&c.model.jobs[&2], 2_001), Status::Finalizable);
    c.emit(finalized(2, 2, B256::ZERO, 0, 0));
    c.emit(
        JobEscrow::BalanceCredited {
            account: a(9),
            jobId: U256::from(2),
            amount: U256::from(20),
        }
        .encode_log_data(),
    );

    let m = &c.model;
    let job = &m.jobs[&1];
    assert_eq!(status(job, 5_000), Status::Completed);
    assert_eq!(job.timeline.len(), 11);
    assert_eq!(job.timeline[0].at.block, 1);
    assert_eq!(job.timeline[0].at.time, Some(1_001));
    let liar = job.replicas.iter().find(|r| r.provider == a(3)).unwrap();
    assert_eq!(liar.revealed.map(|r| r.0), Some(bad));
    let s = liar.settled.unwrap();
    assert_eq!(
        (s.settlement, s.slashed),
        (Settlement::Slashed, U256::from(50))
    );
    assert_eq!(job.outcome.unwrap().outcome, Outcome::Completed);
    assert_eq!(status(&m.jobs[&2], 5_000), Status::Unfilled);

    assert_eq!(m.providers[&a(1)].earned, U256::from(15));
    assert_eq!(m.providers[&a(3)].slashed, U256::from(50));
    assert_eq!(m.providers[&a(3)].points.len(), 1);
    assert_eq!(m.providers[&a(3)].jobs, vec![1]);
    let t = &m.totals;
    assert_eq!(
        (t.posted, t.escrowed, t.paid, t.slashed, t.refunded),
        (
            U256::from(50),
            U256::ZERO,
            U256::from(30),
            U256::from(50),
            U256::from(20)
        )
    );
    assert_eq!(m.events, 14);
    assert_eq!(m.cursor, Some((14, 0)));
}

#[test]
fn a_challenged_optimistic_job_shows_as_challenged_until_its_escalation_overturns_it() {
    let mut c = Chain {
        model: Model::default(),
        block: 0,
    };
    c.emit(posted(1, 10, 1));
    c.emit(committed(1, a(1)));
    c.emit(revealed(1, a(1), B256::repeat_byte(0xbb)));
    c.emit(
        JobEscrow::JobChallenged {
            jobId: U256::from(1),
            escalationId: U256::from(2),
            defendant: a(1),
            lane: U256::ZERO,
            bond: U256::from(30),
        }
        .encode_log_data(),
    );
    c.emit(posted(2, 30, 3));
    // Past every deadline the job still waits for its escalation, not for a finalize.
    assert_eq!(status(&c.model.jobs[&1], 9_999), Status::Challenged);
    assert_eq!(c.model.jobs[&1].challenged, Some(2));
    c.emit(finalized(1, 3, B256::repeat_byte(0xaa), 0, 50));
    assert_eq!(status(&c.model.jobs[&1], 9_999), Status::Overturned);
}

#[test]
fn logs_that_are_not_escrow_events_are_skipped_but_move_the_cursor() {
    let mut c = Chain {
        model: Model::default(),
        block: 0,
    };
    c.emit(LogData::new_unchecked(
        vec![B256::repeat_byte(7)],
        Bytes::new(),
    ));
    // A commit to a job never posted (e.g. an index that started late) changes no job.
    c.emit(committed(5, a(1)));
    assert!(c.model.jobs.is_empty());
    assert_eq!(c.model.events, 1);
    assert_eq!(c.model.cursor, Some((2, 0)));
}
