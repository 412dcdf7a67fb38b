//! The explorer's JSON API: what the market did, what it refuses, and how it keeps
//! serving once the chain is gone.

use std::time::Duration;

use crate::support::{CONSUMER, LIAR, Market, posted, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_lists_outcomes_shows_the_slash_refuses_bad_requests_and_outlives_the_rpc() {
    let mut market = Market::start().await;
    // One job the three nodes run (the liar among them), one nobody may take (its minimum
    // reputation is above everyone's): completed and unfilled.
    // (A long commit window: on a loaded machine three nodes may need a while to commit;
    // the job settles as soon as they have revealed.)
    let honest = market.post("honest", &["--commit-secs", "90"]);
    // Both posts come from one account: the second starts once the first is on-chain, so
    // the two processes never pick the same nonce.
    market
        .until("/api/jobs", Duration::from_secs(60), |v| v["total"] == 1)
        .await;
    let unfillable = market.post(
        "unfillable",
        &["--min-reputation", "65535", "--commit-secs", "10"],
    );
    let (done, refunded) = (posted(honest).await, posted(unfillable).await);
    assert_eq!(done["outcome"], "completed", "{done}");
    assert_eq!(refunded["outcome"], "unfilled", "{refunded}");
    let (done_id, refunded_id) = (
        done["job_id"].as_u64().unwrap(),
        refunded["job_id"].as_u64().unwrap(),
    );

    let list = market
        .until("/api/jobs", Duration::from_secs(20), |v| {
            v["jobs"].as_array().is_some_and(|j| {
                j.len() == 2
                    && j.iter()
                        .all(|j| j["status"] == "completed" || j["status"] == "unfilled")
            })
        })
        .await;
    let jobs = list["jobs"].as_array().unwrap();
    let ids: Vec<u64> = jobs.iter().map(|j| j["id"].as_u64().unwrap()).collect();
    let mut newest_first = vec![done_id, refunded_id];
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, newest_first, "newest first");
    let row = |id: u64| jobs.iter().find(|j| j["id"] == id).unwrap();
    assert_eq!(row(done_id)["status"], "completed");
    assert_eq!(row(done_id)["committed"], 3);
    assert_eq!(row(refunded_id)["status"], "unfilled");
    assert_eq!(row(refunded_id)["committed"], 0);
    assert_eq!(row(done_id)["bounty"], "30000000000000000");
    assert_eq!(row(done_id)["kernel"], "matmul-u32");

    // Filters.
    let settled = market.json("/api/jobs?phase=completed").await;
    assert_eq!(settled["total"], 1);
    let liar = market.address(LIAR);
    let by_liar = market.json(&format!("/api/jobs?provider={liar}")).await;
    assert_eq!(by_liar["jobs"][0]["id"], done_id);
    assert_eq!(by_liar["total"], 1);
    let consumer = market.address(CONSUMER);
    assert_eq!(
        market
            .json(&format!("/api/jobs?consumer={consumer}&kernel=matmul-u32"))
            .await["total"],
        2
    );
    assert_eq!(
        market.json("/api/jobs?kernel=sha256-batch").await["total"],
        0
    );

    // The job page's data: every replica's commit, reveal and settlement, the agreed hash
    // that `stp job post` reported, a timeline with blocks and transactions.
    let job = market.json(&format!("/api/jobs/{done_id}")).await;
    assert_eq!(job["outcome"]["result_hash"], done["result_hash"], "{job}");
    let replicas = job["replica_list"].as_array().unwrap();
    assert_eq!(replicas.len(), 3);
    let liar_replica = replicas
        .iter()
        .find(|r| r["provider"] == liar.as_str())
        .expect("the liar took a slot");
    assert_eq!(liar_replica["settled"]["settlement"], "slashed");
    assert_eq!(liar_replica["settled"]["slashed"], "50000000000000000");
    assert_ne!(liar_replica["revealed"][0], done["result_hash"]);
    for r in replicas.iter().filter(|r| r["provider"] != liar.as_str()) {
        assert_eq!(r["settled"]["settlement"], "completed");
        assert_eq!(r["settled"]["payout"], "15000000000000000");
        assert_eq!(r["revealed"][0], done["result_hash"]);
    }
    let timeline = job["timeline"].as_array().unwrap();
    let kinds: Vec<&str> = timeline
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"posted"));
    assert_eq!(kinds.iter().filter(|k| **k == "committed").count(), 3);
    assert_eq!(kinds.iter().filter(|k| **k == "revealed").count(), 3);
    assert_eq!(kinds.iter().filter(|k| **k == "settled").count(), 3);
    assert!(kinds.contains(&"finalized"));
    for e in timeline {
        assert!(e["block"].as_u64().unwrap() > 0, "{e}");
        assert_eq!(e["tx"].as_str().map(str::len), Some(66), "{e}");
        assert!(e["time"].as_u64().is_some(), "{e}");
    }

    // The liar's slash, on its provider page's data and in the network totals.
    let p = market.json(&format!("/api/providers/{liar}")).await;
    assert_eq!(p["slashed"], "50000000000000000", "{p}");
    assert_eq!(p["earned"], "0");
    assert_eq!(p["reputation"]["slashed"], 1);
    assert_eq!(p["staked"], "950000000000000000");
    assert_eq!(p["points"].as_array().unwrap().len(), 1);
    assert_eq!(p["points"][0]["settlement"], "slashed");
    let honest_p = market
        .json(&format!("/api/providers/{}", market.address(1)))
        .await;
    assert_eq!(honest_p["earned"], "15000000000000000");
    assert_eq!(honest_p["reputation"]["completed"], 1);
    assert_eq!(
        market
            .json("/api/providers")
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Provider 1's signed record, read from the p2p network: its peer id and adapter.
    let with_record = market
        .until(
            &format!("/api/providers/{}", market.address(1)),
            Duration::from_secs(30),
            |v| v["record"].is_object(),
        )
        .await;
    assert_eq!(with_record["record"]["peer_id"], market.peer1.as_str());
    assert!(
        with_record["record"]["adapter"]
            .as_str()
            .is_some_and(|a| !a.is_empty()),
        "{with_record}"
    );
    let net = market.json("/api/network").await;
    assert_eq!(net["jobs"]["completed"], 1, "{net}");
    assert_eq!(net["jobs"]["unfilled"], 1);
    assert_eq!(net["totals"]["posted"], "60000000000000000");
    assert_eq!(net["totals"]["escrowed"], "0");
    assert_eq!(net["totals"]["paid"], "30000000000000000");
    assert_eq!(net["totals"]["slashed"], "50000000000000000");
    assert_eq!(net["totals"]["refunded"], "30000000000000000");
    assert_eq!(net["sync"]["burned"], "50000000000000000");
    let per_hour: u64 = net["jobs_per_hour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["jobs"].as_u64().unwrap())
        .sum();
    assert_eq!(per_hour, 2);

    bad_requests_get_4xx(&market).await;

    // The chain goes away: the explorer keeps serving what it indexed and says since when
    // it could not sync.
    let before = market.json("/api/status").await;
    assert!(before["rpc_error"].is_null(), "{before}");
    drop(market.anvil.take());
    let after = market
        .until("/api/status", Duration::from_secs(20), |v| {
            v["rpc_error"].is_string()
        })
        .await;
    assert_eq!(after["last_block"], before["last_block"]);
    assert!(after["failing_since"].as_u64().is_some(), "{after}");
    assert!(after["synced_at"].as_u64().unwrap() <= after["failing_since"].as_u64().unwrap());
    assert_eq!(market.json("/api/jobs").await["total"], 2);
    assert_eq!(
        market.json(&format!("/api/jobs/{done_id}")).await["status"],
        "completed"
    );
    let (status, page) = market.get(&format!("/jobs/{done_id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("data-page=\"job\""));
}

/// Malformed, unknown and oversized requests: a 4xx with a message, never a crash.
async fn bad_requests_get_4xx(market: &Market) {
    let json_errors = [
        ("/api/jobs/999", 404),
        ("/api/jobs/0", 400),
        ("/api/jobs/abc", 400),
        ("/api/jobs/99999999999999999999999999", 400),
        ("/api/providers/0x12", 400),
        (
            "/api/providers/0x0000000000000000000000000000000000000001",
            404,
        ),
        ("/api/jobs?page=99999999999999999999999", 400),
        ("/api/jobs?page=9999", 400),
        ("/api/jobs?page=0", 400),
        ("/api/jobs?limit=100000", 400),
        ("/api/jobs?phase=sleeping", 400),
        ("/api/jobs?consumer=nobody", 400),
        ("/api/jobs?colour=red", 400),
        ("/api/nothing/here", 404),
    ];
    for (path, want) in json_errors {
        let (status, body) = market.get(path).await;
        assert_eq!(status, want, "GET {path}: {body}");
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
    let pages = [
        ("/jobs/999", 404),
        ("/jobs/abc", 400),
        ("/providers/0xzz", 400),
        ("/providers/0x0000000000000000000000000000000000000001", 404),
        ("/no/such/page", 404),
        ("/jobs/%ff%fe", 400),
        ("/%2e%2e/%2e%2e/etc/passwd", 404),
    ];
    for (path, want) in pages {
        let (status, body) = market.get(path).await;
        assert_eq!(status, want, "GET {path}: {body}");
        assert!(
            body.contains("<h1>4"),
            "GET {path} is an HTML error page: {body}"
        );
    }
    let (status, _) = request(&market.url, "POST", "/api/jobs").await;
    assert_eq!(status, 405, "read-only");
    let (status, _) = request(&market.url, "DELETE", "/jobs/1").await;
    assert_eq!(status, 405, "read-only");
    // Still serving after all of that.
    assert_eq!(market.get("/api/status").await.0, 200);
}
