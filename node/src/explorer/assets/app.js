// ShareThePower explorer: fills the page from the JSON API and keeps it live through the
// server-sent event stream. Text goes in through textContent only (never innerHTML).
"use strict";

const page = document.body.dataset.page;
const arg = document.body.dataset.arg;
let unit = "ETH";
let status = null;

function h(tag, props, ...kids) {
  const el = tag === "svg" || SVG_TAGS.has(tag)
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}
const SVG_TAGS = new Set(["circle", "rect", "polyline", "line", "text", "title", "g", "path"]);

async function api(path) {
  const r = await fetch(path, { headers: { accept: "application/json" } });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

// Amounts come as decimal wei strings: shown in whole units, up to 6 decimals.
function amount(wei) {
  if (wei === null || wei === undefined) return "–";
  const v = BigInt(wei);
  const whole = v / 10n ** 18n;
  let frac = (v % 10n ** 18n).toString().padStart(18, "0").slice(0, 6).replace(/0+$/, "");
  return `${whole}${frac ? "." + frac : ""} ${unit}`;
}
const ethNum = (wei) => Number(BigInt(wei) / 10n ** 12n) / 1e6;
const short = (hex) => (hex && hex.length > 14 ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : hex);
const time = (t) => (t ? new Date(t * 1000).toLocaleString() : "–");
const words = { no_quorum: "no quorum" };
const word = (s) => words[s] || s;
const badge = (s) => h("span", { class: `status ${s}` }, word(s));
const addr = (a) => h("a", { href: `/providers/${a}`, title: a }, short(a));
const jobLink = (id) => h("a", { href: `/jobs/${id}` }, `#${id}`);
const tx = (t) => (t ? h("code", { title: t }, short(t)) : "–");
const table = (heads, rows, label) =>
  h("div", { class: "scroll", role: "region", "aria-label": label, tabindex: "0" },
    h("table", {}, h("thead", {}, h("tr", {}, heads.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows)));
const dl = (pairs) => h("dl", {}, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
const card = (label, n) => h("div", { class: "card" }, h("span", { class: "n" }, n), label);

function showSync(s) {
  status = s;
  unit = s.unit || unit;
  const el = document.getElementById("sync");
  const age = s.synced_at ? Math.max(0, s.now - s.synced_at) : null;
  let text = s.last_block === null || s.last_block === undefined
    ? "Not synced yet."
    : `Synced to block ${s.last_block}` + (age === null ? "" : `, ${age} s ago`) +
      (s.chain_time ? ` (chain time ${time(s.chain_time)})` : "") + ".";
  if (s.rpc_error) {
    text += ` Chain unreachable${s.failing_since ? ` since ${time(s.failing_since)}` : ""}: data may be stale.`;
  }
  el.textContent = text;
  el.classList.toggle("stale", Boolean(s.rpc_error));
  el.dataset.lastBlock = s.last_block ?? "";
  el.dataset.stale = s.rpc_error ? "true" : "false";
}

function jobRows(jobs) {
  return jobs.map((j) => h("tr", { "data-job": j.id, "data-status": j.status },
    h("td", {}, jobLink(j.id)), h("td", {}, badge(j.status)),
    h("td", {}, `${j.committed}/${j.replicas} committed, ${j.revealed} revealed (quorum ${j.quorum})`),
    h("td", {}, amount(j.bounty)), h("td", {}, j.kernel), h("td", {}, addr(j.consumer)),
    h("td", {}, time(j.posted_at))));
}
const JOB_HEADS = ["Job", "Status", "Replicas", "Bounty", "Kernel", "Consumer", "Posted"];

// ---- jobs list ----------------------------------------------------------------------
let jobsPage = 1;
function jobsSetup(main) {
  const params = new URLSearchParams(location.search);
  jobsPage = Number(params.get("page")) || 1;
  const field = (name, label, el) => h("label", {}, label, el);
  const phases = ["", "live", "open", "revealing", "finalizable", "challenged", "settled", "completed", "no_quorum", "unfilled", "overturned"];
  const select = h("select", { name: "phase" },
    phases.map((p) => h("option", { value: p, selected: params.get("phase") === p ? "" : null }, p ? word(p) : "any")));
  const input = (name, ph) => h("input", { name, placeholder: ph, value: params.get(name) || "", autocomplete: "off" });
  const form = h("form", { class: "filters", role: "search", onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
    jobsPage = 1;
    history.replaceState(null, "", q.toString() ? `/?${q}` : "/");
    refresh();
  } },
    field("phase", "Phase", select), field("consumer", "Consumer", input("consumer", "0x…")),
    field("provider", "Provider", input("provider", "0x…")), field("kernel", "Kernel", input("kernel", "name or id")),
    h("button", { type: "submit" }, "Filter"));
  main.append(h("h1", {}, "Jobs"), form, h("div", { id: "results" }));
}
async function jobsRender() {
  const q = new URLSearchParams(location.search);
  q.set("page", jobsPage);
  const out = document.getElementById("results");
  let data;
  try { data = await api(`/api/jobs?${q}`); }
  catch (e) { out.replaceChildren(h("p", { class: "error", role: "alert" }, e.message)); return; }
  const pager = h("div", { class: "pager" },
    h("button", { type: "button", disabled: data.page <= 1 ? "" : null, onclick: () => { jobsPage--; refresh(); } }, "Newer"),
    `Page ${data.page} of ${data.pages} (${data.total} jobs)`,
    h("button", { type: "button", disabled: data.page >= data.pages ? "" : null, onclick: () => { jobsPage++; refresh(); } }, "Older"));
  out.replaceChildren(data.jobs.length
    ? table(JOB_HEADS, jobRows(data.jobs), "Jobs, newest first")
    : h("p", { class: "muted" }, "No job matches."), pager);
}

// ---- one job ------------------------------------------------------------------------
function eventText(e) {
  switch (e.event) {
    case "posted": return [`posted by `, addr(e.consumer), ` with ${amount(e.bounty)}`];
    case "committed": return [addr(e.provider), ` took lane ${e.lane}${e.drawn ? " (drawn)" : ""}`];
    case "revealed": return [addr(e.provider), " revealed ", h("code", {}, short(e.result_hash))];
    case "settled": return [addr(e.provider), " settled: ", badge(e.settlement),
      ` paid ${amount(e.payout)}, slashed ${amount(e.slashed)}`];
    case "finalized": return ["finalized: ", badge(e.outcome), `, ${e.winners} winners, ${amount(e.slashed)} burned`];
    case "credited": return [addr(e.account), ` refunded ${amount(e.amount)}`];
    default: return [e.event];
  }
}
async function jobRender(main) {
  const j = await api(`/api/jobs/${arg}`);
  const s = j.spec;
  const settle = (r) => r.settled
    ? [badge(r.settled.settlement), ` paid ${amount(r.settled.payout)}, slashed ${amount(r.settled.slashed)}`]
    : "not yet";
  main.replaceChildren(
    h("h1", {}, `Job #${j.id} `, badge(j.status)),
    dl([["Consumer", addr(j.consumer)], ["Kernel", [j.kernel, " ", h("code", {}, j.kernel_id)]],
      ["Replicas", `${j.replicas} (quorum ${j.quorum}); ${j.committed} committed, ${j.revealed} revealed`],
      ["Bounty", amount(j.bounty)], ["Collateral", `${amount(s.collateral)} per replica`],
      ["Input", [h("code", {}, s.input_hash), ` (${s.input_size} bytes)`]],
      ["Output bound", `${s.max_output_size} bytes`], ["Min. reputation", s.min_reputation],
      ["Posted", `${time(j.posted_at)} in block ${j.posted_block}`],
      ["Commit deadline", time(s.commit_deadline)], ["Reveal deadline", time(s.reveal_deadline)],
      ["Agreed hash", j.outcome && j.outcome.winners > 0 ? h("code", {}, j.outcome.result_hash) : "none"]]),
    h("h2", {}, "Replicas"),
    j.replica_list.length ? table(["Provider", "Lane", "Commit", "Reveal", "Settlement"],
      j.replica_list.map((r) => h("tr", {},
        h("td", {}, addr(r.provider)), h("td", {}, `${r.lane}${r.drawn ? " (drawn)" : ""}`),
        h("td", {}, `block ${r.committed.block} `, tx(r.committed.tx)),
        h("td", {}, r.revealed ? [h("code", { title: r.revealed[0] }, short(r.revealed[0])), ` block ${r.revealed[1].block}`] : "not yet"),
        h("td", {}, settle(r)))), "Replicas") : h("p", { class: "muted" }, "No slot taken yet."),
    h("h2", {}, "Timeline"),
    table(["Block", "Transaction", "Time", "Event"], j.timeline.map((e) => h("tr", { "data-event": e.event },
      h("td", {}, e.block), h("td", { class: "hash" }, tx(e.tx)), h("td", {}, time(e.time)),
      h("td", {}, eventText(e)))), "Timeline"));
}

// ---- providers ----------------------------------------------------------------------
const rep = (r) => (r ? `${r.completed} completed / ${r.slashed} slashed / ${r.missed} missed` : "–");
async function providersRender(main) {
  const list = await api("/api/providers");
  main.replaceChildren(h("h1", {}, "Providers"),
    list.length ? table(["Provider", "Stake", "Locked", "Reputation", "Earned", "Slashed", "Adapter"],
      list.map((p) => h("tr", { "data-provider": p.address },
        h("td", {}, addr(p.address)), h("td", {}, amount(p.staked)), h("td", {}, amount(p.locked)),
        h("td", {}, rep(p.reputation)), h("td", {}, amount(p.earned)), h("td", {}, amount(p.slashed)),
        h("td", {}, p.record ? `${p.record.adapter} (${p.record.backend})` : "–"))), "Providers")
      : h("p", { class: "muted" }, "No provider has staked yet."));
}

// Cumulative earnings minus slashes, one point per settled replica: a circle for a
// payout, a square for a slash, each with its job and amounts as a tooltip.
function earningsChart(points) {
  const W = 600, H = 220, P = 36;
  let net = 0;
  const series = points.map((p, i) => {
    net += ethNum(p.payout) - ethNum(p.slashed);
    return { p, i, net };
  });
  const lo = Math.min(0, ...series.map((s) => s.net)), hi = Math.max(0, ...series.map((s) => s.net));
  const span = hi - lo || 1;
  const x = (i) => P + (series.length > 1 ? (i * (W - 2 * P)) / (series.length - 1) : (W - 2 * P) / 2);
  const y = (v) => H - P - ((v - lo) * (H - 2 * P)) / span;
  const marks = series.map(({ p, i, net }) => {
    const slashed = BigInt(p.slashed) > 0n;
    const label = `job #${p.job_id}: ${word(p.settlement)}, paid ${amount(p.payout)}, slashed ${amount(p.slashed)}; net ${net.toFixed(6)} ${unit}`;
    const m = slashed
      ? h("rect", { class: "point slash", x: x(i) - 5, y: y(net) - 5, width: 10, height: 10, "data-job": p.job_id })
      : h("circle", { class: "point earn", cx: x(i), cy: y(net), r: 5, "data-job": p.job_id });
    m.append(h("title", {}, label));
    return m;
  });
  return h("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `Net earnings over ${points.length} settled jobs: ${net.toFixed(6)} ${unit}` },
    h("line", { class: "axis", x1: P, y1: y(0), x2: W - P, y2: y(0) }),
    h("text", { x: 4, y: y(hi) + 4 }, hi.toFixed(4)), h("text", { x: 4, y: y(lo) + 4 }, lo.toFixed(4)),
    h("polyline", { class: "line", points: series.map((s) => `${x(s.i)},${y(s.net)}`).join(" ") }),
    marks,
    h("text", { x: P, y: H - 8 }, `○ paid  □ slashed  (${unit}, cumulative, one mark per settled job)`));
}
async function providerRender(main) {
  const p = await api(`/api/providers/${arg}`);
  const rec = p.record;
  main.replaceChildren(h("h1", {}, "Provider ", h("code", {}, p.address)),
    h("div", { class: "cards" }, card("stake", amount(p.staked)), card("locked", amount(p.locked)),
      card("earned", amount(p.earned)), card("slashed", amount(p.slashed))),
    h("h2", {}, "Reputation"), h("p", { id: "reputation" }, rep(p.reputation),
      p.reputation ? ` (score ${p.reputation.score})` : ""),
    h("h2", {}, "Node"), rec ? dl([["Peer id", h("code", {}, rec.peer_id)], ["Adapter", rec.adapter],
      ["Backend", rec.backend], ["Hardware score", rec.benchmark_score], ["Published", time(rec.published_at)],
      ["Parts held", rec.parts.length ? h("span", {}, ...rec.parts.map((x) => h("code", { title: x }, `${x.slice(0, 10)}… `))) : "none"]])
      : h("p", { class: "muted" }, "No provider record found on the p2p network."),
    h("h2", {}, "Earnings and slashes"),
    p.points.length ? earningsChart(p.points) : h("p", { class: "muted" }, "No settled job yet."),
    p.points.length ? table(["Job", "Settlement", "Paid", "Slashed", "Block", "Time"],
      p.points.map((x) => h("tr", { "data-settlement": x.settlement }, h("td", {}, jobLink(x.job_id)),
        h("td", {}, badge(x.settlement)), h("td", {}, amount(x.payout)), h("td", {}, amount(x.slashed)),
        h("td", {}, x.block), h("td", {}, time(x.time)))), "Settlements") : null,
    h("h2", {}, "Recent jobs"),
    p.recent_jobs.length ? table(JOB_HEADS, jobRows(p.recent_jobs), "Recent jobs") : h("p", { class: "muted" }, "None."));
}

// ---- network ------------------------------------------------------------------------
function hourChart(hours) {
  const W = 600, H = 160, P = 24, max = Math.max(1, ...hours.map((x) => x.jobs));
  const bw = (W - 2 * P) / hours.length;
  return h("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `Jobs posted per hour over the last ${hours.length} hours` },
    hours.map((x, i) => {
      const bh = (x.jobs * (H - 2 * P)) / max;
      return h("rect", { class: "bar", x: P + i * bw + 1, y: H - P - bh, width: Math.max(1, bw - 2), height: bh },
        h("title", {}, `${time(x.hour)}: ${x.jobs} jobs`));
    }),
    h("text", { x: P, y: H - 6 }, `jobs per hour, last ${hours.length} h (max ${max})`));
}
async function networkRender(main) {
  const n = await api("/api/network");
  main.replaceChildren(h("h1", {}, "Network"),
    h("div", { class: "cards" }, card("jobs live", n.jobs.live), card("completed", n.jobs.completed),
      card("no quorum", n.jobs.no_quorum), card("unfilled", n.jobs.unfilled), card("overturned", n.jobs.overturned), card("providers", n.providers)),
    h("h2", {}, "Value"),
    dl([["Bounties posted", amount(n.totals.posted)], ["Escrowed now", amount(n.totals.escrowed)],
      ["Paid to providers", amount(n.totals.paid)], ["Refunded to consumers", amount(n.totals.refunded)],
      ["Slashed", amount(n.totals.slashed)], ["Burned (escrow)", amount(n.sync.burned)],
      ["Events", n.events]]),
    h("h2", {}, "Jobs per hour"), hourChart(n.jobs_per_hour));
}

// ---- wiring -------------------------------------------------------------------------
const renders = { jobs: jobsRender, job: jobRender, providers: providersRender, provider: providerRender, network: networkRender };
let busy = false, again = false;
async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  const main = document.getElementById("main");
  // A re-render replaces the links: keyboard focus goes back to the same one.
  const focused = main.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
  try {
    showSync(await api("/api/status"));
    if (renders[page]) await renders[page](main);
    main.dataset.rendered = String(Date.now());
    delete main.dataset.error;
    if (focused) main.querySelector(`a[href="${CSS.escape(focused)}"]`)?.focus();
  } catch (e) {
    main.dataset.error = e.message;
    main.replaceChildren(h("p", { class: "error", role: "alert" }, `Cannot load: ${e.message}`));
  } finally {
    busy = false;
    if (again) { again = false; refresh(); }
  }
}

if (page === "error") api("/api/status").then(showSync).catch(() => {});
if (page === "jobs") jobsSetup(document.getElementById("main"));
if (page !== "error") {
  refresh();
  const live = new EventSource("/api/stream");
  live.addEventListener("update", refresh);
  // Browsers allow few connections per host over HTTP/1.1: a page that is left (or kept in
  // the back-forward cache) gives its stream back, and one shown again starts afresh.
  window.addEventListener("pagehide", () => live.close());
  window.addEventListener("pageshow", (e) => { if (e.persisted) location.reload(); });
  live.onerror = () => { document.getElementById("sync").textContent += " Live updates lost; reconnecting…"; };
  // The age of the data keeps counting while nothing new arrives.
  setInterval(() => api("/api/status").then(showSync).catch(() => {}), 5000);
}
