use super::*;
use alloy::primitives::{B256, Bytes};

fn store() -> (tempfile::TempDir, JobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = JobStore::open(&dir.path().join("jobs.redb")).unwrap();
    (dir, store)
}

#[test]
fn record_survives_reopen_with_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node/jobs.redb");
    let mut record = JobRecord::accepted(
        7,
        Bytes::from_static(b"spec"),
        (1_000, 9, Default::default()),
        None,
    );
    record.salt = Some(B256::repeat_byte(0xab));
    record.lane = Some(3);
    record.result_hash = Some(B256::repeat_byte(0x11));
    record.advance(JobPhase::Computed);
    {
        let store = JobStore::open(&path).unwrap();
        store.put(&record).unwrap();
    }
    let store = JobStore::open(&path).unwrap();
    assert_eq!(store.get(7).unwrap(), Some(record));
    assert_eq!(store.get(8).unwrap(), None);
}

#[test]
fn active_jobs_excludes_settled_and_abandoned() {
    let (_dir, store) = store();
    for (id, phase) in [
        (1, JobPhase::Committed),
        (2, JobPhase::Settled),
        (3, JobPhase::Waiting),
        (4, JobPhase::Abandoned),
    ] {
        let mut r = JobRecord::accepted(id, Bytes::new(), (0, 0, Default::default()), None);
        r.advance(phase);
        store.put(&r).unwrap();
    }
    let active: Vec<u64> = store
        .active_jobs()
        .unwrap()
        .iter()
        .map(|r| r.job_id)
        .collect();
    assert_eq!(active, vec![1, 3]);
    assert_eq!(store.all_jobs().unwrap().len(), 4);
}

#[test]
fn chain_cursor_only_moves_forward() {
    let (_dir, store) = store();
    assert_eq!(store.last_processed_block().unwrap(), None);
    store.set_last_processed_block(10).unwrap();
    store.set_last_processed_block(4).unwrap();
    assert_eq!(store.last_processed_block().unwrap(), Some(10));
    store.set_last_processed_block(12).unwrap();
    assert_eq!(store.last_processed_block().unwrap(), Some(12));
}

#[test]
fn second_open_of_same_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    let _first = JobStore::open(&path).unwrap();
    let err = JobStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
}

#[test]
fn phase_counts_follow_every_transition_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    {
        let store = JobStore::open(&path).unwrap();
        for id in 1..=3 {
            store
                .put(&JobRecord::accepted(
                    id,
                    Bytes::new(),
                    (0, 0, Default::default()),
                    None,
                ))
                .unwrap();
        }
        let mut r = store.get(2).unwrap().unwrap();
        r.advance(JobPhase::Committed);
        store.put(&r).unwrap();
        r.advance(JobPhase::Settled);
        store.put(&r).unwrap();
        store.put(&r).unwrap(); // rewriting a record does not count it twice
    }
    let store = JobStore::open(&path).unwrap();
    let count = |p| store.phase_count(p).unwrap();
    assert_eq!(count(JobPhase::Fetching), 2);
    assert_eq!(count(JobPhase::Committed), 0);
    assert_eq!(count(JobPhase::Settled), 1);
    let active: Vec<u64> = store
        .active_jobs()
        .unwrap()
        .iter()
        .map(|r| r.job_id)
        .collect();
    assert_eq!(active, vec![1, 3]);
}
