/* Warren management UI, core: the API client (basic auth, credentials in
   sessionStorage), login and logout, the hash router and refresh timer,
   DOM helpers, the Overview tab with its two charts (uPlot) sampled from
   /api/overview, and definitions export / import. The other tabs are in
   pages.js and admin.js; they register themselves in W.pages.
   The page's state is window.W (the browser test reads W.samples and
   W.charts). Plain JS, no build step. */
"use strict";

const W = (window.W = {
  pages: {},
  samples: { t: [], ready: [], unacked: [], total: [], publish: [], deliver: [], ack: [], confirm: [] },
  charts: {},
  overview: null,
  user: null,
  refreshSeconds: 5,
  timer: null,
  route: null,
  jsErrors: [],
});
window.addEventListener("error", (e) => W.jsErrors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => W.jsErrors.push(String(e.reason && (e.reason.stack || e.reason.message) || e.reason)));

/** Samples kept for the charts (5 minutes at the default 5 s). */
const MAX_SAMPLES = 60;
const AUTH_KEY = "warren.auth";

/* ---------- DOM helpers (text always goes in as text, never as HTML) ---------- */

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

function fmtNum(n) {
  if (n === undefined || n === null || n === "") return "";
  if (typeof n !== "number") return String(n);
  return Number.isInteger(n) ? n.toLocaleString("en") : n.toFixed(1);
}
function fmtRate(stats, key) {
  const d = stats && stats[key + "_details"];
  return d && typeof d.rate === "number" ? d.rate.toFixed(1) + "/s" : "";
}
function fmtBytes(n) {
  if (typeof n !== "number") return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}
function fmtArgs(args) {
  return Object.keys(args || {}).map((k) => h("span", { class: "tag", title: k + ": " + JSON.stringify(args[k]) }, k));
}

/** A table: columns [{label, value(row) → node/text, num, sort}], rows. */
function table(columns, rows, opts = {}) {
  const head = h("tr", {}, columns.map((c) => {
    const sorted = opts.sort && c.sort && opts.sort.key === c.sort;
    const cls = [c.num ? "num" : "", c.sort && opts.onSort ? "sortable" : "",
      sorted ? (opts.sort.reverse ? "sorted-desc" : "sorted-asc") : ""].join(" ").trim();
    return h("th", { class: cls || null, onclick: c.sort && opts.onSort ? () => opts.onSort(c.sort) : null,
      "data-sort": c.sort || null }, c.label);
  }));
  const body = rows.length
    ? rows.map((r) => h("tr", {}, columns.map((c) => h("td", { class: c.num ? "num" : null }, c.value(r)))))
    : [h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, opts.empty || "... no items ..."))];
  return h("table", { class: "list", id: opts.id || null }, h("thead", {}, head), h("tbody", {}, body));
}

/** A fact table (key → value) for detail pages. */
function facts(pairs) {
  return h("table", { class: "facts" }, pairs.filter((p) => p).map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))));
}

/** A form in a grey box; `fields` are label elements; submit runs `action(form)`. */
function form(id, title, fields, submitLabel, action) {
  const f = h("form", { class: "box", id }, fields, h("button", { type: "submit" }, submitLabel));
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { await action(f); } catch (e) { showError(e); }
  });
  return [title ? h("h3", {}, title) : "", f];
}
function field(label, name, attrs = {}) {
  return h("label", {}, label, h("input", Object.assign({ name, id: attrs.id || null }, attrs)));
}
function check(label, name, checked) {
  return h("label", { class: "check" }, label, h("input", { type: "checkbox", name, checked }));
}
function select(label, name, options, value) {
  return h("label", {}, label, h("select", { name },
    options.map((o) => { const [v, t] = Array.isArray(o) ? o : [o, o]; return h("option", { value: v, selected: v === value }, t); })));
}
function textarea(label, name, placeholder) {
  return h("label", {}, label, h("textarea", { name, placeholder }));
}
/** Parses a JSON-object field (empty: {}); throws a readable error. */
function jsonField(f, name) {
  const text = f.elements[name].value.trim();
  if (!text) return {};
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
    return v;
  } catch (e) {
    throw new Error(name + ": expected a JSON object such as {\"x-max-length\": 10} (" + e.message + ")");
  }
}

/* ---------- messages ---------- */

function showError(e) {
  $("error-text").textContent = e instanceof ApiError ? e.describe() : String(e.message || e);
  $("error").hidden = false;
}
function clearError() { $("error").hidden = true; }
function notice(text) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => { n.hidden = true; }, 6000);
}

/* ---------- the API ---------- */

class ApiError extends Error {
  constructor(method, path, status, body) {
    super((body && (body.reason || body.error)) || "HTTP " + status);
    this.method = method; this.path = path; this.status = status; this.body = body || {};
  }
  describe() {
    const what = this.body.error ? this.body.error + ": " : "";
    return `${this.method} ${this.path} → ${this.status} ${what}${this.message}`;
  }
}

/** Calls the API with the stored credentials (or `auth`, base64
    "user:password") and any extra headers (X-Reason when closing a
    connection, as RabbitMQ's UI sends); resolves the JSON (or null),
    rejects with an ApiError. credentials:"omit" keeps the browser's own
    basic-auth prompt away when a 401 comes back. */
async function api(method, path, body, auth, extraHeaders) {
  const headers = Object.assign({ Authorization: "Basic " + (auth || sessionStorage.getItem(AUTH_KEY) || "") }, extraHeaders);
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  let r;
  try { r = await fetch("/api" + path, init); } catch (e) {
    throw new ApiError(method, "/api" + path, 0, { error: "network", reason: "the broker did not answer (" + e.message + ")" });
  }
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = { reason: text.slice(0, 200) }; }
  if (!r.ok) {
    const err = new ApiError(method, "/api" + path, r.status, json);
    if (r.status === 401 && !auth && err.message === "Login failed") logout("Login failed: the credentials are no longer accepted");
    throw err;
  }
  return json;
}
W.api = api;

/* ---------- login ---------- */

function b64(text) { return btoa(String.fromCharCode(...new TextEncoder().encode(text))); }

async function login(ev) {
  ev.preventDefault();
  const user = $("login-username").value;
  const auth = b64(user + ":" + $("login-password").value);
  $("login-error").hidden = true;
  try {
    const who = await api("GET", "/whoami", undefined, auth);
    sessionStorage.setItem(AUTH_KEY, auth);
    $("login-password").value = "";
    start(who);
  } catch (e) {
    $("login-error").textContent = e.status === 401 ? (e.message === "Login failed" ? e.message : "Login failed: " + e.message) : (e.describe ? e.describe() : String(e));
    $("login-error").hidden = false;
  }
}

function logout(why) {
  sessionStorage.removeItem(AUTH_KEY);
  clearInterval(W.timer);
  W.user = null;
  $("app").hidden = true;
  $("login").hidden = false;
  if (why) { $("login-error").textContent = why; $("login-error").hidden = false; }
}

function start(who) {
  W.user = who;
  $("user").textContent = who.name;
  $("login").hidden = true;
  $("app").hidden = false;
  tick();
  setRefresh(W.refreshSeconds);
  navigate();
}

function setRefresh(seconds) {
  W.refreshSeconds = seconds;
  clearInterval(W.timer);
  if (seconds > 0) W.timer = setInterval(tick, seconds * 1000);
}

/** One refresh: samples /api/overview for the charts, then redraws the
    current page's data. */
async function tick() {
  if (!W.user) return;
  try {
    const o = await api("GET", "/overview");
    W.overview = o;
    sample(o);
    $("cluster").textContent = o.cluster_name || o.node || "";
    $("rabbitmq-version").textContent = o.rabbitmq_version || "";
    $("product-version").textContent = o.product_version || "";
  } catch (e) { showError(e); }
  if (W.route && W.route.page.update) {
    try { await W.route.page.update(W.route); } catch (e) { showError(e); }
  }
  $("refreshed").textContent = new Date().toLocaleTimeString();
}
W.tick = tick;

/* ---------- router: #/tab/vhost/name ---------- */

function navigate() {
  if (!W.user) return;
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter((p) => p !== "").map(decodeURIComponent);
  const tab = parts[0] || "overview";
  const page = W.pages[tab] || W.pages.overview;
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.tab === (W.pages[tab] ? tab : "overview"));
  clearError();
  for (const u of Object.values(W.charts)) u.destroy();
  W.charts = {};
  const main = $("main");
  main.replaceChildren();
  W.route = { tab, page, args: parts.slice(1), main };
  try { page.render(W.route); } catch (e) { showError(e); }
  if (page.update) page.update(W.route).catch(showError);
}
W.navigate = navigate;

/* ---------- Overview ---------- */

/** The rate of `key` in message_stats: the API's own `_details.rate`
    where it gives one, else the change in the count since the last sample. */
function rate(o, prev, key, dt) {
  const ms = o.message_stats || {};
  const d = ms[key + "_details"];
  if (d && typeof d.rate === "number") return d.rate;
  if (!prev || !(dt > 0) || typeof ms[key] !== "number") return null;
  const before = (prev.message_stats || {})[key];
  if (typeof before !== "number") return null;
  return Math.max(0, (ms[key] - before) / dt);
}

function sample(o) {
  const s = W.samples;
  const now = Date.now() / 1000;
  const dt = W.lastSample ? now - W.lastSample.at : 0;
  const prev = W.lastSample && W.lastSample.o;
  const q = o.queue_totals || {};
  s.t.push(now);
  s.ready.push(q.messages_ready ?? null);
  s.unacked.push(q.messages_unacknowledged ?? null);
  s.total.push(q.messages ?? null);
  for (const k of ["publish", "deliver", "ack", "confirm"]) {
    s[k].push(rate(o, prev, k === "deliver" ? "deliver_get" : k, dt));
  }
  for (const k of Object.keys(s)) if (s[k].length > MAX_SAMPLES) s[k].shift();
  W.lastSample = { at: now, o };
  if (W.charts.queued) W.charts.queued.setData([s.t, s.ready, s.unacked, s.total]);
  if (W.charts.rates) W.charts.rates.setData([s.t, s.publish, s.confirm, s.deliver, s.ack]);
}

function chart(id, title, series, data) {
  const el = h("div", { class: "chart", id });
  const colours = ["#edc240", "#afd8f8", "#cb4b4b", "#4da74d", "#9440ed"];
  const opts = {
    title, width: 560, height: 220,
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    series: [{}].concat(series.map((label, i) => ({ label, stroke: colours[i], width: 2, spanGaps: true }))),
    axes: [{}, { size: 60 }],
  };
  requestAnimationFrame(() => {
    if (!el.isConnected) return;
    opts.width = Math.max(300, el.clientWidth || 560);
    const u = new uPlot(opts, data, el);
    W.charts[id] = u;
  });
  return el;
}

window.addEventListener("resize", () => {
  for (const u of Object.values(W.charts)) if (u.root.isConnected) u.setSize({ width: Math.max(300, u.root.parentNode.clientWidth), height: 220 });
});

W.pages.overview = {
  render(r) {
    const s = W.samples;
    r.main.append(
      h("h1", {}, "Overview"),
      h("h2", {}, "Totals"),
      h("div", { class: "charts" },
        chart("queued", "Queued messages", ["Ready", "Unacked", "Total"], [s.t, s.ready, s.unacked, s.total]),
        chart("rates", "Message rates (/s)", ["Publish", "Publisher confirm", "Deliver (auto ack)", "Consumer ack"],
          [s.t, s.publish, s.confirm, s.deliver, s.ack])),
      h("div", { class: "totals", id: "object-totals" }),
      h("h2", {}, "Nodes"), h("div", { id: "nodes" }),
      h("h2", {}, "Ports and contexts"), h("div", { id: "listeners" }),
      h("h2", {}, "Export definitions"),
      h("p", {}, "The broker's users, vhosts, permissions, policies, queues, exchanges and bindings as RabbitMQ's definitions JSON. ",
        h("button", { id: "definitions-download", type: "button", onclick: downloadDefinitions }, "Download broker definitions")),
      h("h2", {}, "Import definitions"),
      ...form("definitions-upload", "Upload a definitions file", [
        h("label", {}, "Definitions file", h("input", { type: "file", name: "file", accept: ".json,application/json" })),
      ], "Upload broker definitions", uploadDefinitions),
    );
  },
  async update() {
    const o = W.overview;
    if (!o) return;
    const t = o.object_totals || {};
    const q = o.queue_totals || {};
    const box = $("object-totals");
    if (!box) return;
    box.replaceChildren(...[["Connections", t.connections], ["Channels", t.channels], ["Exchanges", t.exchanges],
      ["Queues", t.queues], ["Consumers", t.consumers], ["Ready", q.messages_ready], ["Unacked", q.messages_unacknowledged],
      ["Total messages", q.messages]].map(([k, v]) => h("div", { "data-total": k }, h("b", {}, fmtNum(v ?? 0)), k)));
    $("nodes").replaceChildren(facts([["Name", o.node], ["Cluster", o.cluster_name], ["Product", `${o.product_name || ""} ${o.product_version || ""}`],
      ["RabbitMQ version", o.rabbitmq_version], ["Rates mode", o.rates_mode]]));
    $("listeners").replaceChildren(table([
      { label: "Protocol", value: (l) => l.protocol }, { label: "Bound to", value: (l) => l.ip_address || "::" },
      { label: "Port", value: (l) => l.port, num: true }], o.listeners || []));
  },
};

async function downloadDefinitions() {
  try {
    const defs = await api("GET", "/definitions");
    const blob = new Blob([JSON.stringify(defs, null, 2)], { type: "application/json" });
    const a = h("a", { href: URL.createObjectURL(blob), download: `warren_${(W.overview && W.overview.node) || "broker"}_${new Date().toISOString().slice(0, 10)}.json` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (e) { showError(e); }
}

async function uploadDefinitions(f) {
  const file = f.elements.file.files[0];
  if (!file) throw new Error("choose a definitions file first");
  const text = await file.text();
  try { JSON.parse(text); } catch (e) { throw new Error("the file is not JSON: " + e.message); }
  await api("POST", "/definitions", text);
  notice("Definitions imported");
}

/* ---------- start ---------- */

window.addEventListener("hashchange", navigate);
document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout());
  $("error-close").addEventListener("click", clearError);
  $("refresh").addEventListener("change", (e) => setRefresh(Number(e.target.value)));
  const auth = sessionStorage.getItem(AUTH_KEY);
  if (!auth) { $("login").hidden = false; return; }
  api("GET", "/whoami").then(start, () => logout());
});

Object.assign(W, { h, $, enc, table, facts, form, field, check, select, textarea, jsonField, fmtNum, fmtRate, fmtBytes, fmtArgs, showError, notice, ApiError });
