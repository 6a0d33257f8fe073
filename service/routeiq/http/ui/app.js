// RouteIQ dashboard: polls /admin/overview and draws with plain DOM + SVG. Every value is
// written with textContent (never innerHTML): model names and reasons come from callers.
"use strict";

const KEY_STORE = "routeiq-admin-key";
// The tenant on screen: every admin call names it, so what is changed is what is shown. The
// first poll names none; the service answers with its first tenant and the list to pick from.
const TENANT_STORE = "routeiq-tenant";
const POLL_MS = Number(new URLSearchParams(location.search).get("interval_ms")) || 2000;
const WINDOW_S = 60; // rates and percentiles over the last minute of polls
const HISTORY = 150; // polls kept for the curves
const COLORS = ["#2b6cb0", "#dd6b20", "#38a169", "#d53f8c", "#805ad5", "#d69e2e", "#319795", "#e53e3e", "#718096"];

const history = [];
let current = null;
let timer = null;

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY_STORE) || ""}`, ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const tenant = sessionStorage.getItem(TENANT_STORE);
  if (tenant) headers["X-RouteIQ-Tenant"] = tenant;
  const response = await fetch(path, { ...options, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = new Error((data.error && data.error.message) || `HTTP ${response.status}`);
    err.status = response.status;
    throw err;
  }
  return data;
}

// ---- numbers from samples ----

function sum(samples, pick) {
  return (samples || []).filter(pick || (() => true)).reduce((a, s) => a + s.value, 0);
}

function byLabel(samples, name) {
  const out = {};
  for (const s of samples || []) out[s[name] ?? "(all)"] = (out[s[name] ?? "(all)"] || 0) + s.value;
  return out;
}

function windowStart(seconds) {
  const newest = history[history.length - 1];
  let old = history[0];
  for (const h of history) if (newest.at - h.at >= seconds) old = h;
  return old;
}

// histogram_quantile over cumulative buckets [[le, count], ...] (le null = +Inf)
function quantile(q, buckets) {
  if (!buckets.length) return null;
  const total = buckets[buckets.length - 1][1];
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0, prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === null) return prevLe;
      if (count === prevCount) return le;
      return prevLe + (le - prevLe) * (rank - prevCount) / (count - prevCount);
    }
    prevLe = le === null ? prevLe : le;
    prevCount = count;
  }
  return prevLe;
}

function bucketDelta(newer, older) {
  if (!older) return newer.buckets;
  return newer.buckets.map(([le, n], i) => [le, n - ((older.buckets[i] || [le, 0])[1])]);
}

function fmtMs(seconds) { return seconds == null ? "–" : (seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1); }
function fmtUsd(v) { return v == null ? "–" : `$${v < 1 ? v.toFixed(4) : v.toFixed(2)}`; }
function pct(v) { return v == null ? "–" : `${(v * 100).toFixed(1)}%`; }

// ---- charts ----

function lineChart(container, series, { unit = "" } = {}) {
  container.replaceChildren();
  const w = 720, h = 160, pad = 34;
  const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "svgchart", role: "img" });
  const all = series.flatMap((s) => s.points.map((p) => p[1]));
  const max = Math.max(1e-9, ...all);
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const X = (t) => pad + (w - pad * 2) * (t - x0) / (x1 - x0);
  const Y = (v) => h - pad / 2 - (h - pad) * v / max;
  root.append(svg("line", { x1: pad, y1: Y(0), x2: w - pad, y2: Y(0), class: "axis" }));
  const top = svg("text", { x: 2, y: 12, class: "tick" });
  top.textContent = `${max.toPrecision(3)}${unit}`;
  root.append(top);
  series.forEach((s, i) => {
    if (!s.points.length) return;
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
    root.append(svg("path", { d, fill: "none", stroke: s.color || COLORS[i % COLORS.length], "stroke-width": 2 }));
  });
  container.append(root);
}

function stackedBars(container, legend, intervals) {
  // intervals: [{at, shares: {name: count}}]
  container.replaceChildren();
  legend.replaceChildren();
  const names = [...new Set(intervals.flatMap((i) => Object.keys(i.shares)))].sort();
  const color = Object.fromEntries(names.map((n, i) => [n, COLORS[i % COLORS.length]]));
  const w = 720, h = 160;
  const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "svgchart", role: "img" });
  const bw = w / Math.max(intervals.length, 1);
  intervals.forEach((interval, i) => {
    const total = Object.values(interval.shares).reduce((a, b) => a + b, 0);
    if (total <= 0) return;
    let y = h;
    for (const n of names) {
      const part = (interval.shares[n] || 0) / total * h;
      if (part <= 0) continue;
      y -= part;
      root.append(svg("rect", { x: i * bw, y, width: Math.max(bw - 1, 1), height: part, fill: color[n] }));
    }
  });
  container.append(root);
  const last = intervals.reduce((acc, i) => { for (const [k, v] of Object.entries(i.shares)) acc[k] = (acc[k] || 0) + v; return acc; }, {});
  const total = Object.values(last).reduce((a, b) => a + b, 0);
  for (const n of names) {
    legend.append(el("span", { class: "key", "data-name": n }, el("i", { style: `background:${color[n]}` }), `${n} ${total ? pct(last[n] / total) : "–"}`));
  }
}

function fillTable(id, rows) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren(...rows.map((cells) => {
    const tr = el("tr");
    for (const c of cells) tr.append(c instanceof Node ? el("td", {}, c) : el("td", {}, c));
    return tr;
  }));
}

// ---- panels ----

function drawLive() {
  const newest = history[history.length - 1];
  const old = windowStart(WINDOW_S);
  const dt = Math.max(newest.at - old.at, 1e-9);
  const m = newest.metrics, o = old.metrics;
  const rate = (sum(m.decisions) - sum(o.decisions)) / dt;
  $("rate").textContent = old === newest ? "–" : rate.toFixed(2);
  const total = m.stages.total;
  const totalOld = o.stages.total;
  const win = total ? bucketDelta(total, old === newest ? null : totalOld) : [];
  const usable = win.length && win[win.length - 1][1] > 0 ? win : (total ? total.buckets : []);
  $("latency").textContent = `${fmtMs(quantile(0.5, usable))} / ${fmtMs(quantile(0.99, usable))} ms`;
  const hits = (c) => sum(c, (s) => s.result !== "miss");
  const lookups = sum(m.cache) - sum(o.cache);
  $("cache").textContent = lookups > 0 ? pct((hits(m.cache) - hits(o.cache)) / lookups) : (sum(m.cache) ? pct(hits(m.cache) / sum(m.cache)) : "–");
  $("refused").textContent = old === newest ? "–" : ((sum(m.rejected) - sum(o.rejected)) / dt).toFixed(2);
  $("inflight").textContent = String(m.in_flight ?? "–");

  const points = [];
  for (let i = 1; i < history.length; i++) {
    const a = history[i - 1], b = history[i];
    points.push([b.at, (sum(b.metrics.decisions) - sum(a.metrics.decisions)) / Math.max(b.at - a.at, 1e-9)]);
  }
  lineChart($("rate-chart"), [{ points }], { unit: "/s" });

  const dim = $("share-dim").value;
  const intervals = [];
  for (let i = 1; i < history.length; i++) {
    const a = byLabel(history[i - 1].metrics.decisions, dim), b = byLabel(history[i].metrics.decisions, dim);
    const shares = {};
    for (const [k, v] of Object.entries(b)) if (v - (a[k] || 0) > 0) shares[k] = v - (a[k] || 0);
    intervals.push({ at: history[i].at, shares });
  }
  if (!intervals.length || intervals.every((i) => !Object.keys(i.shares).length)) {
    intervals.push({ at: newest.at, shares: byLabel(m.decisions, dim) }); // nothing new: since start
  }
  stackedBars($("share-chart"), $("share-legend"), intervals);

  fillTable("stages", Object.entries(m.stages).sort().map(([name, stage]) => {
    const before = old === newest ? null : o.stages[name];
    const d = bucketDelta(stage, before);
    const b = d.length && d[d.length - 1][1] > 0 ? d : stage.buckets;
    return [name, fmtMs(quantile(0.5, b)), fmtMs(quantile(0.99, b)), String(stage.count)];
  }));
  const refusals = [
    ...m.rejected.map((s) => ["refused", s.reason, s.value]),
    ...m.errors.filter((s) => s.value > 0).map((s) => ["error", s.type, s.value]),
  ];
  fillTable("refusals", refusals.map((r) => r.map(String)));
}

function drawMoney() {
  const newest = history[history.length - 1];
  const old = windowStart(WINDOW_S);
  const dt = Math.max(newest.at - old.at, 1e-9);
  const m = newest.metrics, o = old.metrics;
  const perHour = (a, b) => (old === newest ? null : (a - b) / dt * 3600);
  const spend = perHour(sum(m.spend), sum(o.spend));
  const premium = perHour(m.premium_spend, o.premium_spend);
  $("spend").textContent = fmtUsd(spend);
  $("premium-spend").textContent = fmtUsd(premium);
  $("saving").textContent = spend == null ? "–" : `${fmtUsd(premium - spend)} (${premium > 0 ? pct(1 - spend / premium) : "–"})`;
  const target = current.premium_share_target;
  $("premium-share").textContent = `${pct(m.premium_share)} / ${target == null ? "no target" : pct(target)}`;
  const points = [];
  for (let i = 1; i < history.length; i++) {
    const a = history[i - 1], b = history[i];
    const d = Math.max(b.at - a.at, 1e-9);
    const saved = ((b.metrics.premium_spend - a.metrics.premium_spend) - (sum(b.metrics.spend) - sum(a.metrics.spend))) / d * 3600;
    points.push([b.at, Math.max(saved, 0)]);
  }
  lineChart($("saving-chart"), [{ points, color: "#38a169" }], { unit: " $/h" });
  const prices = Object.fromEntries(current.catalog.map((c) => [c.deployment_id, c.blended_cost_per_mtok]));
  fillTable("spend-table", m.spend.filter((s) => s.value > 0).sort((a, b) => b.value - a.value)
    .map((s) => [s.deployment, fmtUsd(s.value), prices[s.deployment] == null ? "(request)" : String(prices[s.deployment])]));
}

const BREAKER = { 0: "closed", 1: "half-open", 2: "open" };

function drawHealth() {
  const m = history[history.length - 1].metrics;
  const degraded = m.state_degraded > 0;
  $("state").textContent = `${current.config.state}${degraded ? " — DEGRADED" : " — ok"}`;
  $("state").className = `big ${degraded ? "bad" : "good"}`;
  $("fallbacks").textContent = String(sum(m.state_fallbacks));
  const breakers = Object.entries(current.breakers);
  const open = breakers.filter(([, b]) => b.state === "open").length;
  $("open-breakers").textContent = String(open);
  $("open-breakers").className = `big ${open ? "bad" : "good"}`;
  fillTable("breakers", breakers.map(([id, b]) => {
    const detail = Object.entries(b).filter(([k]) => k !== "state").map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ");
    const reset = el("button", { type: "button", onclick: async () => { await api(`/admin/breakers/${encodeURIComponent(id)}/reset`, { method: "POST" }); poll(); } }, "reset");
    return [id, el("span", { class: b.state === "open" ? "bad" : "" }, b.state), detail, reset];
  }));
  if (!breakers.length) fillTable("breakers", [["(no feedback yet: every breaker closed)", "", "", ""]]);
}

// The tenants table: the global key's view of every tenant (GET /admin/tenants). A tenant admin
// token is refused that list, and with auth off there are no tenants to show: then it is hidden.
async function drawTenants() {
  const box = $("tenants");
  if (current.metrics_scope === "tenant") { box.hidden = true; return; }
  let rows;
  try {
    rows = Object.entries((await api("/admin/tenants")).tenants);
  } catch {
    box.hidden = true;
    return;
  }
  box.hidden = rows.length === 0;
  const quota = (available, limit) => (limit == null ? "none" : `${available ?? "–"} of ${limit}`);
  fillTable("tenants-table", rows.map(([name, t]) => [
    name,
    String(t.weight),
    quota(t.decisions_available, t.max_decisions_per_second),
    quota(t.feedback_outcomes_available, t.max_feedback_outcomes_per_second),
    String((t.decisions_in_flight ?? 0) + (t.embeddings_in_flight ?? 0)),
    t.unavailable ? el("span", { class: "bad" }, `unavailable: ${t.unavailable}`) : "ok",
  ]));
}

// Wilson score interval for a success rate: honest with few outcomes.
function wilson(ok, n, z = 1.96) {
  if (!n) return null;
  const p = ok / n, d = 1 + z * z / n;
  const c = (p + z * z / (2 * n)) / d, r = z * Math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d;
  return [Math.max(0, c - r), Math.min(1, c + r)];
}

const rampMessages = {}; // experiment name -> the last ramp's answer, kept across redraws
// experiment name -> {variant: typed weight}: what an operator typed but has not sent yet. The
// panel is redrawn on every poll; without this, a weight typed and left for a moment is lost.
const rampDrafts = {};

function drawExperiments() {
  const box = $("experiments");
  // Not while a ramp weight is being typed: the redraw would take the input away.
  if (box.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
  box.replaceChildren();
  if (!current.experiments.length) box.append(el("p", { class: "hint" }, "No experiments yet."));
  for (const readout of current.experiments) {
    const spec = readout.experiment;
    const stopped = spec.stopped_at != null || spec.active === false;
    if (stopped) delete rampDrafts[spec.name];
    const head = el("h3", { class: "experiment-name" }, `${spec.name} `, el("small", {}, stopped ? "stopped" : `running · ${readout.decisions} decisions`));
    const table = el("table", { class: "experiment", "data-name": spec.name });
    table.append(el("thead", {}, el("tr", {}, ...["variant", "strategy", "profile", "target", "share", "decisions", "success (95% CI)", "latency ms", "quality"].map((h) => el("th", {}, h)))));
    const body = el("tbody");
    for (const v of readout.variants) {
      const ci = wilson(v.successes, v.outcomes);
      body.append(el("tr", {}, ...[v.variant, v.strategy || "–", v.profile || "–", pct(v.target_share), pct(v.share), v.decisions,
        v.success_rate == null ? "–" : `${pct(v.success_rate)} (${pct(ci[0])}–${pct(ci[1])})`, v.mean_latency_ms ?? "–", v.mean_quality ?? "–"].map((c) => el("td", {}, c))));
    }
    table.append(body);
    box.append(head, table);
    const phases = readout.phases || [];
    if (phases.length > 1) {
      const since = new Date(phases[phases.length - 1].started_at * 1000).toLocaleTimeString();
      box.append(el("p", { class: "hint phases" }, `${phases.length} phases · weights now since ${since}`));
      // Each phase on its own: a success rate read across a ramp mixes two traffic splits.
      const per = el("table", { class: "experiment-phases", "data-name": spec.name });
      per.append(el("thead", {}, el("tr", {}, ...["phase", "from", "variant", "target", "decisions", "success (95% CI)"].map((h) => el("th", {}, h)))));
      const rows = el("tbody");
      phases.forEach((ph, i) => {
        for (const v of ph.variants || []) {
          const ci = wilson(v.successes, v.outcomes);
          rows.append(el("tr", {}, ...[String(i), new Date(ph.started_at * 1000).toLocaleTimeString(), v.variant, pct(v.target_share), v.decisions,
            v.success_rate == null ? "–" : `${pct(v.success_rate)} (${pct(ci[0])}–${pct(ci[1])})`].map((c) => el("td", {}, c))));
        }
      });
      per.append(rows);
      box.append(per);
    }
    if (!stopped) {
      const drafts = rampDrafts[spec.name] || {};
      const inputs = spec.variants.map((v) => el("input", {
        type: "number", min: "0", step: "any", required: "", "data-variant": v.name,
        value: drafts[v.name] ?? String(v.weight),
        oninput: (e) => { (rampDrafts[spec.name] ||= {})[v.name] = e.target.value; },
      }));
      const message = el("span", { class: "message" }, rampMessages[spec.name] || "");
      box.append(el("form", { class: "ramp grid-form", "data-name": spec.name, onsubmit: async (e) => {
        e.preventDefault();
        const weights = Object.fromEntries(inputs.map((i) => [i.dataset.variant, Number(i.value)]));
        try {
          await api(`/admin/experiments/${encodeURIComponent(spec.name)}`, { method: "PATCH", body: { weights } });
          rampMessages[spec.name] = "ramped";
          delete rampDrafts[spec.name];
        } catch (err) { rampMessages[spec.name] = `refused: ${err.message}`; }
        document.activeElement.blur();
        poll();
      } }, ...spec.variants.map((v, i) => el("label", {}, `${v.name} weight `, inputs[i])), el("button", { type: "submit" }, `Ramp ${spec.name}`), message));
      box.append(el("button", { type: "button", class: "stop", "data-name": spec.name, onclick: async () => {
        if (!confirm(`Stop experiment ${spec.name}?`)) return;
        await api(`/admin/experiments/${encodeURIComponent(spec.name)}/stop`, { method: "POST" });
        poll();
      } }, `Stop ${spec.name}`));
    }
  }
}

function fillSelect(select, values, selected, keepFirst) {
  const first = keepFirst ? [...select.options].slice(0, 1) : [];
  if (select.dataset.filled === values.join(",")) return;
  select.replaceChildren(...first, ...values.map((v) => el("option", { value: v }, v)));
  select.dataset.filled = values.join(",");
  if (selected != null) select.value = selected;
}

function drawConfig() {
  const c = current.config;
  document.querySelectorAll("select.strategies").forEach((s) => fillSelect(s, c.strategies, c.strategy));
  document.querySelectorAll("select.profiles").forEach((s) => fillSelect(s, c.profiles, s.id === "config-profile" ? c.default_profile : null, s.id !== "config-profile"));
  const dl = $("config-now");
  dl.replaceChildren(
    el("dt", {}, "strategy"), el("dd", { id: "active-strategy" }, c.strategy),
    el("dt", {}, "default profile"), el("dd", { id: "active-profile" }, c.default_profile),
    el("dt", {}, "config version"), el("dd", {}, c.version),
    el("dt", {}, "state"), el("dd", {}, c.state),
  );
  const breakers = current.breakers;
  fillTable("catalog", current.catalog.map((e) => [e.deployment_id, e.model, e.tier, e.blended_cost_per_mtok ?? "–", (breakers[e.deployment_id] || { state: "closed" }).state]));
}

let searchSeq = 0;

async function searchDecisions(event) {
  if (event) event.preventDefault();
  const seq = ++searchSeq; // an older search answering late must not overwrite a newer one
  const params = new URLSearchParams({ limit: "200" });
  for (const f of ["model", "tier", "category", "profile", "strategy"]) {
    const v = $(`f-${f}`).value.trim();
    if (v) params.set(f, v);
  }
  const data = await api(`/admin/decisions?${params}`);
  if (seq !== searchSeq) return;
  const reason = $("f-reason").value.trim().toLowerCase();
  const rows = data.decisions.filter((d) => !reason || (d.reason || "").toLowerCase().includes(reason));
  $("explorer-meta").textContent = `${rows.length} shown · ${data.buffered} buffered in worker ${data.worker_pid}`;
  const body = $("decisions").querySelector("tbody");
  body.replaceChildren(...rows.map((d) => el("tr", { class: "decision", "data-id": d.request_id, onclick: () => showExplain(d.request_id) },
    ...[new Date(d.at * 1000).toLocaleTimeString(), d.model, d.tier, d.category, d.profile, d.strategy, d.total_ms, d.reason].map((c) => el("td", {}, c)))));
}

async function showExplain(id) {
  const data = await api(`/admin/decisions/${encodeURIComponent(id)}/explain`);
  $("explain").hidden = false;
  $("explain-id").textContent = id;
  const body = $("explain-body");
  body.replaceChildren();
  body.append(el("p", {}, `${data.model} (${data.deployment_id}) — ${data.reason}`));
  if (!data.explain) { body.append(el("p", { class: "hint" }, "Answered from the session record: nothing was ranked.")); return; }
  const x = data.explain;
  const table = el("table", { id: "explain-candidates" });
  table.append(el("thead", {}, el("tr", {}, ...["rank", "deployment", "model", "tier", "expected quality", "source", "USD/Mtok", "excluded / demoted"].map((h) => el("th", {}, h)))));
  const tb = el("tbody");
  for (const c of x.candidates) {
    tb.append(el("tr", { class: c.excluded ? "excluded" : "" }, ...[c.rank ?? "–", c.deployment_id, c.model, c.tier, c.expected_quality.toFixed(3), c.quality_source, c.est_cost_per_mtok,
      c.excluded || (c.demoted || []).join(", ")].map((v) => el("td", {}, v))));
  }
  table.append(tb);
  const top = (obj) => Object.entries(obj || {}).sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => `${k} ${Number(v).toFixed(3)}`).join(" · ");
  body.append(
    el("h3", {}, "Candidates"), table,
    el("h3", {}, "Category scores"), el("p", {}, top(x.scores.category)),
    el("h3", {}, "Tier scores"), el("p", {}, top(x.scores.tier)),
    el("h3", {}, "Signals"), el("pre", {}, JSON.stringify(x.signals, null, 2)),
  );
}

// ---- wiring ----

async function poll() {
  try {
    current = await api("/admin/overview");
    history.push(current);
    if (history.length > HISTORY) history.shift();
    sessionStorage.setItem(TENANT_STORE, current.config.tenant);
    fillSelect($("tenant"), current.tenants, current.config.tenant);
    $("tenant-pick").hidden = current.tenants.length < 2;
    const scope = current.metrics_scope === "tenant" ? "this tenant's metrics" : "all tenants' metrics";
    $("status").textContent = `live · ${new Date(current.at * 1000).toLocaleTimeString()} · worker ${current.config.worker_pid} · tenant ${current.config.tenant} · ${scope}`;
    $("status").className = "status good";
    drawLive(); drawMoney(); drawHealth(); drawExperiments(); drawConfig();
    await drawTenants();
    document.body.dataset.polls = String(history.length);
  } catch (err) {
    $("status").textContent = `error: ${err.message}`;
    $("status").className = "status bad";
    if (err.status === 404 && sessionStorage.getItem(TENANT_STORE)) sessionStorage.removeItem(TENANT_STORE); // gone: the first one next
    else if (err.status === 401 || err.status === 403) logout(err.message);
  }
}

function showTab(name) {
  document.querySelectorAll(".tab").forEach((t) => { t.hidden = t.id !== `tab-${name}`; });
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.tab === name));
  if (name === "explorer") searchDecisions().catch((e) => { $("explorer-meta").textContent = e.message; });
}

function start() {
  $("login").hidden = true; $("main").hidden = false; $("logout").hidden = false;
  showTab((location.hash || "#live").slice(1));
  poll();
  clearInterval(timer);
  timer = setInterval(poll, POLL_MS);
}

function switchTenant(name) {
  sessionStorage.setItem(TENANT_STORE, name);
  history.length = 0; // rates are per tenant: never across two
  for (const k of Object.keys(rampDrafts)) delete rampDrafts[k];
  for (const k of Object.keys(rampMessages)) delete rampMessages[k];
  poll();
}

function logout(message) {
  sessionStorage.removeItem(KEY_STORE);
  sessionStorage.removeItem(TENANT_STORE);
  clearInterval(timer);
  $("main").hidden = true; $("logout").hidden = true; $("login").hidden = false;
  $("login-error").textContent = message || "";
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => { e.preventDefault(); sessionStorage.setItem(KEY_STORE, $("key").value); sessionStorage.removeItem(TENANT_STORE); start(); });
  $("tenant").addEventListener("change", (e) => switchTenant(e.target.value));
  $("logout").addEventListener("click", () => logout());
  window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));
  $("share-dim").addEventListener("change", () => current && drawLive());
  $("explorer-form").addEventListener("submit", (e) => searchDecisions(e).catch((err) => { $("explorer-meta").textContent = err.message; }));
  $("config-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const c = await api("/admin/config", { method: "PUT", body: { strategy: $("config-strategy").value, default_profile: $("config-profile").value } });
      $("config-message").textContent = `applied: strategy ${c.strategy}, default profile ${c.default_profile} (version ${c.version})`;
      poll();
    } catch (err) { $("config-message").textContent = `refused: ${err.message}`; }
  });
  $("experiment-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const variant = (p) => {
      const v = { name: $(`exp-${p}-name`).value, weight: Number($(`exp-${p}-weight`).value), strategy: $(`exp-${p}-strategy`).value || null };
      const profile = $(`exp-${p}-profile`);
      if (profile && profile.value) v.profile = profile.value;
      return v;
    };
    try {
      const r = await api("/admin/experiments", { method: "POST", body: { name: $("exp-name").value, variants: [variant("a"), variant("b")] } });
      $("experiment-message").textContent = `started ${r.experiment.name}${r.warnings.length ? ` — ${r.warnings.join("; ")}` : ""}`;
      poll();
    } catch (err) { $("experiment-message").textContent = `refused: ${err.message}`; }
  });
  if (sessionStorage.getItem(KEY_STORE)) start(); else $("login").hidden = false;
});
