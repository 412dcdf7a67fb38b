//! The explorer's pages in real headless Chromium, driven through chromedriver (WebDriver):
//! what a person sees, live updates without a reload, the earnings chart, a phone-sized
//! viewport. Screenshots of each page go to `target/explorer-screenshots/`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::support::{LIAR, Market, posted};

const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver on a free port, killed on drop.
struct Driver {
    url: String,
    _child: Child,
}

impl Driver {
    async fn start() -> Self {
        let missing = |what: &str| -> ! {
            panic!(
                "{what} not found: run scripts/setup (installs the Debian packages chromium and chromium-driver)"
            )
        };
        if !std::path::Path::new(CHROMIUM).exists() {
            missing(CHROMIUM);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|_| missing("chromedriver"));
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
        }
    }

    /// A headless Chromium session; `mobile`: a 360 px wide phone viewport.
    async fn session(&self, mobile: bool) -> Client {
        let mut options = json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"],
        });
        if mobile {
            options["mobileEmulation"] =
                json!({"deviceMetrics": {"width": 360, "height": 780, "pixelRatio": 1.0}});
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a headless Chromium session")
    }
}

/// Runs `script` (a function body returning a value) until it returns something truthy.
async fn until_js(c: &Client, script: &str, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        let v = c.execute(script, vec![]).await.expect("script runs");
        let truthy = match &v {
            Value::Null | Value::Bool(false) => false,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            _ => true,
        };
        if truthy {
            return v;
        }
        assert!(start.elapsed() < within, "never true in the page: {script}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .join("explorer-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

/// Opens `path` and waits until the script has rendered it from the API.
async fn open(c: &Client, market: &Market, path: &str) {
    c.goto(&format!("{}{path}", market.url)).await.unwrap();
    let m = "document.getElementById('main').dataset";
    let done = until_js(
        c,
        &format!("return {m}.rendered || ({m}.error && 'error: ' + {m}.error)"),
        Duration::from_secs(10),
    )
    .await;
    assert!(
        !done.as_str().unwrap_or("").starts_with("error"),
        "{path}: {done}"
    );
}

const NO_HORIZONTAL_SCROLL: &str =
    "return document.documentElement.scrollWidth <= window.innerWidth && window.innerWidth === 360";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_in_headless_chromium_show_jobs_live_the_slash_and_the_earnings_chart() {
    let driver = Driver::start().await;
    let mut market = Market::start().await;
    let first = posted(market.post("first", &[])).await;
    assert_eq!(first["outcome"], "completed", "{first}");
    market
        .until("/api/jobs", Duration::from_secs(20), |v| {
            v["jobs"][0]["status"] == "completed"
        })
        .await;

    let c = driver.session(false).await;
    // The jobs page lists the job with its outcome in words.
    open(&c, &market, "/").await;
    let row = until_js(
        &c,
        "const r = document.querySelector('tr[data-job=\"1\"]'); return r && r.textContent",
        Duration::from_secs(10),
    )
    .await;
    assert!(row.as_str().unwrap().contains("completed"), "{row}");
    screenshot(&c, "jobs").await;

    // A job posted now appears on the open page without a reload.
    c.execute("window.notReloaded = true", vec![])
        .await
        .unwrap();
    let second = market.post("second", &[]);
    until_js(
        &c,
        "return document.querySelector('tr[data-job=\"2\"]') !== null",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        c.execute("return window.notReloaded === true", vec![])
            .await
            .unwrap(),
        json!(true)
    );
    screenshot(&c, "jobs-live").await;
    let second = posted(second).await;
    assert_eq!(second["outcome"], "completed", "{second}");
    until_js(
        &c,
        "const r = document.querySelector('tr[data-job=\"2\"]'); return r && r.dataset.status === 'completed'",
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        c.execute("return window.notReloaded === true", vec![])
            .await
            .unwrap(),
        json!(true)
    );

    // The job page: the timeline with every settlement, the agreed hash.
    open(&c, &market, "/jobs/1").await;
    let settled = c
        .execute(
            "return document.querySelectorAll('tr[data-event=\"settled\"]').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(settled, json!(3));
    let text = c
        .execute("return document.body.innerText", vec![])
        .await
        .unwrap();
    let hash = first["result_hash"].as_str().unwrap();
    assert!(
        text.as_str().unwrap().contains(hash),
        "agreed hash shown: {text}"
    );
    screenshot(&c, "job").await;

    // The liar's page shows its slash; each chart has one point per settled job.
    let liar = market.address(LIAR);
    open(&c, &market, &format!("/providers/{liar}")).await;
    let api = market.json(&format!("/api/providers/{liar}")).await;
    let text = c
        .execute("return document.getElementById('main').innerText", vec![])
        .await
        .unwrap();
    let text = text.as_str().unwrap();
    assert!(text.contains("2 slashed"), "{text}");
    assert!(text.contains("0.1 ETH"), "the slashed amount: {text}");
    let points = c
        .execute(
            "return document.querySelectorAll('svg.chart .point').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(points, json!(api["points"].as_array().unwrap().len()));
    assert_eq!(points, json!(2), "the liar settled both jobs");
    let slashes = c
        .execute(
            "return document.querySelectorAll('svg.chart .point.slash').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(slashes, json!(2));
    screenshot(&c, "provider-liar").await;
    let honest = market.address(1);
    open(&c, &market, &format!("/providers/{honest}")).await;
    let api = market.json(&format!("/api/providers/{honest}")).await;
    let points = c
        .execute(
            "return document.querySelectorAll('svg.chart .point').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(points, json!(api["settled"]));
    assert_eq!(points, json!(2));
    screenshot(&c, "provider").await;

    open(&c, &market, "/providers").await;
    let rows = c
        .execute(
            "return document.querySelectorAll('tr[data-provider]').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(rows, json!(3));
    screenshot(&c, "providers").await;
    open(&c, &market, "/network").await;
    let text = c
        .execute("return document.getElementById('main').innerText", vec![])
        .await
        .unwrap();
    assert!(text.as_str().unwrap().contains("completed"), "{text}");
    screenshot(&c, "network").await;
    // Keyboard: the first Tab lands on the skip link, and its focus is visible.
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
    let focus = c
        .execute(
            "const a = document.activeElement; return [a.className, getComputedStyle(a).outlineStyle]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(focus[0], "skip", "{focus}");
    assert_ne!(focus[1], "none", "focus is visible");
    c.close().await.unwrap();

    // A 360 px wide phone: no page scrolls sideways.
    let phone = driver.session(true).await;
    for (path, name) in [
        ("/".to_string(), "jobs-360"),
        ("/jobs/1".to_string(), "job-360"),
        (format!("/providers/{liar}"), "provider-360"),
        ("/network".to_string(), "network-360"),
    ] {
        open(&phone, &market, &path).await;
        let fits = phone.execute(NO_HORIZONTAL_SCROLL, vec![]).await.unwrap();
        assert_eq!(fits, json!(true), "{path} scrolls sideways at 360 px");
        screenshot(&phone, name).await;
    }

    // The chain goes away: the open page says its data is stale, and still shows it.
    drop(market.anvil.take());
    until_js(
        &phone,
        "return document.getElementById('sync').dataset.stale === 'true'",
        Duration::from_secs(20),
    )
    .await;
    let line = phone
        .execute("return document.getElementById('sync').textContent", vec![])
        .await
        .unwrap();
    assert!(
        line.as_str().unwrap().contains("Chain unreachable"),
        "{line}"
    );
    assert!(line.as_str().unwrap().contains("Synced to block"), "{line}");
    screenshot(&phone, "network-360-stale").await;
    phone.close().await.unwrap();
}
