// riskmon control-room console: one page, no build step, no network beyond riskmon itself.
// State: the alerts on the board (active, or returned to normal and not yet acknowledged),
// reloaded on every (re)connection of the live stream, which replays from Last-Event-ID.
"use strict";

const $ = (id) => document.getElementById(id);
const LEVELS = [1, 2, 3, 4];
const MAX_ROWS = 200;  // rows drawn at once: the board stays fast with thousands of alerts
const COLOURS = {1: "#d81e1e", 2: "#f07800", 3: "#e6c200", 4: "#1f6fd1"};
const T = {
  en: {
    title: "riskmon · alert board", sound_enable: "enable sound", sound_on: "sound on",
    sign_in: "sign in", sign_out: "sign out", token_placeholder: "your personal token",
    f_level: "level", f_state: "state", f_category: "category", f_tenant: "enterprise",
    f_site: "site", search: "search rule, sensor, site", all: "all",
    c_level: "level", c_age: "age", c_sla: "SLA", c_site: "site", c_sensor: "sensor",
    c_value: "value / set-point", c_opened: "opened", c_state: "state", history: "history",
    lv1: "红 Red", lv2: "橙 Orange", lv3: "黄 Yellow", lv4: "蓝 Blue",
    unack: "unack", ack: "ack",
    st_connecting: "connecting…", st_live: "live", st_disconnected: "disconnected since {0}",
    st_signed_out: "not signed in", st_rejected: "token rejected", st_forbidden: "token may not view alerts",
    signed_out_banner: "Not signed in: sign in with your personal token to see the alerts.",
    rejected_banner: "Token rejected: this token is not known. Sign in with your personal token.",
    forbidden_banner: "This token may not view alerts (an ingest token?). Sign in with a personal token.",
    allclear: "All clear · {0} of {1} sensors reporting · last reading {2}",
    allclear_none: "All clear · {1} sensors, none has reported yet",
    none_match: "No alert matches the filters.",
    cue_one: "RED ALERT unacknowledged: {0}", cue_more: "{0} RED ALERTS unacknowledged: {1} (+{2} more)",
    ack_in: "ack ≤ {0}", dispose_in: "dispose ≤ {0}", overdue: "OVERDUE {0}", tier: "tier {0}",
    suspect: "suspect",
    isa_unack_active: "unacknowledged", isa_ack_active: "acknowledged",
    isa_rtn_unack: "cleared, unacknowledged", isa_normal: "normal", isa_suppressed: "suppressed",
    s_all: "all", s_unack: "unacknowledged", s_ack: "acknowledged", s_rtn: "cleared, unacknowledged",
    shown: "{0} shown", shown_some: "first {0} of {1} shown: filter to see the rest",
    a_ack: "acknowledge", a_disposing: "start disposal", a_dispose: "dispose", a_comment: "comment",
    a_assign: "assign", a_shelve: "shelve", a_review: "review",
    note: "note (required)", comment: "comment", person: "person", reason: "reason",
    force: "close although the condition still holds; why:", minutes: "min",
    done: "{0}: done", failed: "{0} failed: {1}",
    ev_threshold: "{value} {unit} is {cmp} the {lname} set-point {thr} {unit} of rule {rule} on {kind} detector {sensor}",
    ev_interruption: "No reading from {sensor} for {silent} (limit {limit}); last reading {last}",
    ev_generic: "Rule {rule} ({type}) on {sensor}: {fields}",
    ev_anomaly: "raised by the anomaly detector",
    trend_none: "No readings in the day around the alert.",
    rc_real_hazard_handled: "real hazard, handled", rc_process_fluctuation: "process fluctuation",
    rc_maintenance_calibration: "maintenance / calibration", rc_instrument_fault: "instrument fault",
    rc_false_alarm: "false alarm", rc_test: "test",
    map: "map", map_alerts: "worst alert", map_risk: "site risk",
    risk1: "major risk (red)", risk2: "large risk (orange)", risk3: "general risk (yellow)",
    risk4: "low risk (blue)", risk_title: "{0} · {1}, score {2}", no_alert: "no alert",
    cat_process: "process", cat_sensor_health: "sensor health", cat_data_interruption: "data interruption",
  },
  zh: {
    title: "riskmon · 预警看板", sound_enable: "开启声音", sound_on: "声音已开",
    sign_in: "登录", sign_out: "退出", token_placeholder: "个人令牌",
    f_level: "级别", f_state: "状态", f_category: "类别", f_tenant: "企业", f_site: "场所",
    search: "搜索规则、传感器、场所", all: "全部",
    c_level: "级别", c_age: "持续", c_sla: "时限", c_site: "场所", c_sensor: "传感器",
    c_value: "读数 / 设定值", c_opened: "发生时间", c_state: "状态", history: "处置记录",
    lv1: "红色 一级", lv2: "橙色 二级", lv3: "黄色 三级", lv4: "蓝色 四级",
    unack: "未确认", ack: "已确认",
    st_connecting: "连接中…", st_live: "实时", st_disconnected: "{0} 起断开",
    st_signed_out: "未登录", st_rejected: "令牌无效", st_forbidden: "令牌无查看权限",
    signed_out_banner: "未登录：请用个人令牌登录后查看预警。",
    rejected_banner: "令牌无效：请用个人令牌登录。",
    forbidden_banner: "此令牌无查看预警的权限（数据接入令牌？），请用个人令牌登录。",
    allclear: "一切正常 · {1} 个传感器中 {0} 个在报 · 最近读数 {2}",
    allclear_none: "一切正常 · {1} 个传感器，尚无读数",
    none_match: "没有符合筛选条件的预警。",
    cue_one: "红色预警未确认：{0}", cue_more: "{0} 条红色预警未确认：{1}（另 {2} 条）",
    ack_in: "确认 ≤ {0}", dispose_in: "处置 ≤ {0}", overdue: "超时 {0}", tier: "上报 {0} 级",
    suspect: "可疑",
    isa_unack_active: "未确认", isa_ack_active: "已确认",
    isa_rtn_unack: "已恢复，未确认", isa_normal: "正常", isa_suppressed: "已抑制",
    s_all: "全部", s_unack: "未确认", s_ack: "已确认", s_rtn: "已恢复未确认",
    shown: "显示 {0} 条", shown_some: "显示前 {0} 条（共 {1} 条），请筛选查看其余",
    a_ack: "确认", a_disposing: "开始处置", a_dispose: "处置完毕", a_comment: "备注",
    a_assign: "指派", a_shelve: "搁置", a_review: "复核",
    note: "说明（必填）", comment: "备注", person: "人员", reason: "原因",
    force: "条件仍在，仍要关闭；原因：", minutes: "分钟",
    done: "{0}：完成", failed: "{0} 失败：{1}",
    ev_threshold: "{kind}探测器 {sensor} 读数 {value} {unit}{cmp}{lname}设定值 {thr} {unit}（规则 {rule}）",
    ev_interruption: "{sensor} 已 {silent} 无读数（限值 {limit}），最近读数 {last}",
    ev_generic: "规则 {rule}（{type}）于 {sensor}：{fields}",
    ev_anomaly: "由异常检测提升",
    trend_none: "预警前后一天内没有读数。",
    rc_real_hazard_handled: "真实险情，已处置", rc_process_fluctuation: "工艺波动",
    rc_maintenance_calibration: "检修 / 标定", rc_instrument_fault: "仪表故障",
    rc_false_alarm: "误报", rc_test: "测试",
    map: "地图", map_alerts: "最高预警", map_risk: "动态风险",
    risk1: "重大风险（红）", risk2: "较大风险（橙）", risk3: "一般风险（黄）", risk4: "低风险（蓝）",
    risk_title: "{0} · {1}，评分 {2}", no_alert: "无预警",
    cat_process: "工艺", cat_sensor_health: "设备故障", cat_data_interruption: "数据中断",
  },
};

const S = {
  token: localStorage.getItem("riskmon-token") || "",
  lang: localStorage.getItem("riskmon-lang") || (navigator.language.startsWith("zh") ? "zh" : "en"),
  me: null, settings: null, sites: new Map(), sensors: new Map(), alerts: new Map(),
  conn: "connecting", since: null, es: null, lastEventId: "", buffer: null, seen: new Set(),
  risk: new Map(), mapMode: localStorage.getItem("riskmon-map") || "alerts",
  selected: null, sound: null, beeps: 0, status: null, renders: 0, renderMs: [], events: 0,
  dirty: false,
};
window.riskmonConsole = S; // for the browser tests and the curious operator

function t(key, ...args) {
  const s = (T[S.lang] && T[S.lang][key]) || T.en[key] || key;
  return s.replace(/\{(\d+)\}/g, (_, i) => String(args[Number(i)]));
}
function tn(key, vars) {
  return t(key).replace(/\{(\w+)\}/g, (_, k) => (vars[k] === undefined ? "" : String(vars[k])));
}
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// ---- time --------------------------------------------------------------------------------
let fmt = null;
function zone() { return (S.settings && S.settings.time_zone) || "Asia/Shanghai"; }
function localTime(iso) {
  if (!iso) return "";
  fmt = fmt || new Intl.DateTimeFormat("sv-SE", {
    timeZone: zone(), year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  return fmt.format(new Date(iso));
}
function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(r)}` : `${m}:${two(r)}`;
}
function ago(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
const epoch = (iso) => (iso ? Date.parse(iso) / 1000 : NaN);
const now = () => Date.now() / 1000;

// ---- API ---------------------------------------------------------------------------------
async function api(path, options = {}) {
  const headers = {"Authorization": "Bearer " + S.token};
  if (options.body !== undefined) headers["content-type"] = "application/json";
  return fetch(path, {...options, headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body)});
}
async function reason(r) {
  const body = await r.json().catch(() => ({}));
  const d = body.detail;
  if (Array.isArray(d)) return d.map((x) => x.reason || x.msg || JSON.stringify(x)).join("; ");
  return d || r.statusText;
}

// ---- connection --------------------------------------------------------------------------
function setConn(state) {
  if (state === "disconnected" && S.conn === "disconnected") return;
  S.since = state === "disconnected" ? new Date().toISOString() : null;
  S.conn = state;
  paintStatus();
  render();
}
function paintStatus() {
  const st = $("status");
  st.dataset.state = S.conn;
  const key = "st_" + S.conn.replace("-", "_");
  st.textContent = S.conn === "disconnected" ? t(key, localTime(S.since).slice(11)) : t(key);
  $("who").hidden = !S.me;
  $("signin").hidden = Boolean(S.me);
  if (S.me) $("who-name").textContent = `${S.me.name} (${S.me.role}${S.me.tenant ? " · " + S.me.tenant : ""})`;
  const banner = {"signed-out": "signed_out_banner", rejected: "rejected_banner",
                  forbidden: "forbidden_banner"}[S.conn];
  $("banner").hidden = !banner;
  if (banner) $("banner").textContent = t(banner);
}

let retryTimer = null;
function retry(fn, ms = 2000) { clearTimeout(retryTimer); retryTimer = setTimeout(fn, ms); }

async function start() {
  if (S.es) { S.es.close(); S.es = null; }
  S.me = null;
  if (!S.token) { S.alerts.clear(); return setConn("signed-out"); }
  let r;
  try { r = await api("/api/v1/me"); } catch (e) { setConn("disconnected"); return retry(start); }
  if (r.status === 401) { S.alerts.clear(); return setConn("rejected"); }
  if (r.status === 403) { S.alerts.clear(); return setConn("forbidden"); }
  if (!r.ok) { setConn("disconnected"); return retry(start); }
  S.me = await r.json();
  try {
    S.settings = await (await api("/api/v1/console/settings")).json();
    fmt = null;
    await loadCatalog();
  } catch (e) { setConn("disconnected"); return retry(start); }
  $("zone").textContent = zone();
  connect();
}

async function loadCatalog() {
  const [sites, sensors] = await Promise.all([api("/api/v1/sites"), api("/api/v1/sensors")]);
  S.sites = new Map((await sites.json()).map((s) => [s.id, s]));
  S.sensors = new Map((await sensors.json()).map((s) => [s.id, s]));
  fillFilters();
  drawMap();
}

function connect() {
  const q = new URLSearchParams({token: S.token, risk: "true"});
  if (S.lastEventId) q.set("last_event_id", S.lastEventId);
  const es = new EventSource("/api/v1/stream?" + q.toString());
  S.es = es;
  S.buffer = [];
  es.onopen = () => { resync().catch(() => setConn("disconnected")); };
  es.onerror = () => {
    if (S.es !== es) return;
    setConn("disconnected");
    S.buffer = [];
    if (es.readyState === EventSource.CLOSED) { es.close(); S.es = null; retry(start); }
  };
  es.addEventListener("alert", (m) => {
    if (m.lastEventId) S.lastEventId = m.lastEventId;
    const ev = JSON.parse(m.data);
    if (S.buffer) S.buffer.push(ev); else apply(ev);
  });
  es.addEventListener("risk", (m) => {  // a site's risk changed
    const r = JSON.parse(m.data);
    S.risk.set(r.site, r);
    S.dirty = true;
  });
  es.addEventListener("resync", () => { resync().catch(() => setConn("disconnected")); });
}

// Reload the board: what is on it now, then the events that came during the load.
async function resync() {
  S.buffer = S.buffer || [];
  const [r, status, risk] = await Promise.all([
    api("/api/v1/alerts?state=active,waiting&limit=10000"), api("/api/v1/status"),
    api("/api/v1/risk/sites")]);
  if (risk.ok) S.risk = new Map((await risk.json()).map((x) => [x.site, x]));
  if (r.status === 401) return start();
  if (!r.ok) throw new Error(await reason(r));
  const fresh = new Map((await r.json()).map((a) => [a.id, a]));
  S.status = status.ok ? await status.json() : S.status;
  S.alerts = fresh;
  const pending = S.buffer;
  S.buffer = null;
  for (const ev of pending) apply(ev);
  setConn("live");
  if (S.selected) showDetail(S.selected);
}

function apply(ev) {
  const a = ev.alert;
  const key = `${a.id}|${ev.kind}|${ev.at}`;
  if (S.seen.has(key)) return;
  S.seen.add(key);
  if (S.seen.size > 20000) S.seen = new Set([...S.seen].slice(-10000));
  S.events += 1;
  const known = S.alerts.get(a.id);
  if (!known || !(epoch(known.updated_at) > epoch(a.updated_at))) S.alerts.set(a.id, {...known, ...a});
  if (S.selected === a.id) showDetail(a.id);
  S.dirty = true;
}

// ---- the board ---------------------------------------------------------------------------
// suppressed by design (its sensor is in fault; its health alert stands for it): not on the board
const onBoard = (a) => (a.active || a.waiting) && !a.suppressed;
const isaState = (a) => a.isa_state || (a.active ? (a.waiting ? "unack_active" : "ack_active")
                                                 : (a.waiting ? "rtn_unack" : "normal"));

function sla(a) {
  const cfg = S.settings || {sla_ack_s: {}, sla_dispose_s: {}};
  if (a.waiting) {
    const start = epoch(a.raised_at || a.opened_at);
    return {what: "ack_in", left: start + (cfg.sla_ack_s[a.level] || 0) - now()};
  }
  if (a.acked_at && !["closed", "reviewed"].includes(a.state)) {
    return {what: "dispose_in", left: epoch(a.acked_at) + (cfg.sla_dispose_s[a.level] || 0) - now()};
  }
  return null;
}

function setpointText(a) {
  const e = a.evidence || {};
  const unit = (S.sensors.get(a.sensor) || {}).unit || "";
  const v = a.value === null || a.value === undefined ? "" : `${round(a.value)} ${unit}`;
  if (e.threshold === undefined) return v;
  const cmp = e.direction === "low" ? "≤" : "≥";
  return `${v} ${cmp} ${round(e.threshold)}`;
}
function round(x) {
  if (typeof x !== "number") return x;
  return Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(1) : x.toPrecision(2);
}

function matches(a) {
  const f = (id) => $(id).value;
  const site = S.sites.get(a.site) || {};
  if (f("f-level") && String(a.level) !== f("f-level")) return false;
  const isa = isaState(a);
  const st = f("f-state");
  if (st === "unack" && !a.waiting) return false;
  if (st === "ack" && a.waiting) return false;
  if (st === "rtn" && isa !== "rtn_unack") return false;
  if (f("f-category") && a.category !== f("f-category")) return false;
  if (f("f-tenant") && site.tenant !== f("f-tenant")) return false;
  if (f("f-site") && a.site !== f("f-site")) return false;
  const q = f("f-search").trim().toLowerCase();
  if (q) {
    const sensor = S.sensors.get(a.sensor) || {};
    const hay = [a.rule, a.sensor, a.site, site.name, sensor.kind, a.category].join(" ").toLowerCase();
    if (!hay.includes(q)) return false;
  }
  return true;
}

function render() {
  const began = performance.now();
  drawBoard();
  S.renderMs.push(performance.now() - began);  // the console benchmark reads these
  if (S.renderMs.length > 5000) S.renderMs.splice(0, 1000);
}

function drawBoard() {
  S.dirty = false;
  S.renders += 1;
  const board = [...S.alerts.values()].filter(onBoard);
  paintCounts(board);
  paintCue(board);
  const live = S.conn === "live";
  $("allclear").hidden = !(live && board.length === 0);
  if (live && board.length === 0) paintAllClear();
  const rows = board.filter(matches).sort((x, y) =>
    x.level - y.level || (y.waiting - x.waiting) || epoch(x.opened_at) - epoch(y.opened_at));
  // the most urgent first; beyond MAX_ROWS the operator narrows the filters (the counts and
  // the cue always cover every alert)
  const body = $("board");
  body.replaceChildren(...rows.slice(0, MAX_ROWS).map(row));
  $("empty").hidden = !(board.length && !rows.length);
  $("empty").textContent = t("none_match");
  $("shown").textContent = !board.length ? ""
    : rows.length > MAX_ROWS ? t("shown_some", MAX_ROWS, rows.length) : t("shown", rows.length);
  paintMap(board);
}

function row(a) {
  const isa = isaState(a);
  const cls = [`l${a.level}`, a.waiting ? "unack" : "acked", isa === "rtn_unack" ? "rtn" : "",
               S.selected === a.id ? "selected" : ""].join(" ");
  const site = S.sites.get(a.site);
  const sensor = S.sensors.get(a.sensor) || {};
  const due = sla(a);
  const slaCell = el("td", {class: "sla"});
  if (due) {
    if (due.left >= 0) slaCell.append(t(due.what, clock(due.left)));
    else slaCell.append(el("span", {class: "badge overdue"}, t("overdue", clock(-due.left))));
  }
  if (a.tier > 0) slaCell.append(el("span", {class: "badge tier"}, t("tier", a.tier)));
  return el("tr", {class: cls, dataset: {id: a.id, level: a.level, isa}, onclick: () => select(a.id)},
    el("td", {}, el("span", {class: `lv l${a.level}`}, t("lv" + a.level))),
    el("td", {class: "age"}, ago(now() - epoch(a.raised_at || a.opened_at))),
    slaCell,
    el("td", {}, site ? site.name : a.site, el("div", {class: "small"}, a.site)),
    el("td", {}, sensor.kind || a.rule, el("div", {class: "small"}, `${a.sensor || ""} · ${a.rule}`)),
    el("td", {class: "value"}, setpointText(a),
       a.suspect ? el("span", {class: "badge suspect"}, t("suspect")) : null),
    el("td", {class: "opened"}, localTime(a.opened_at)),
    el("td", {class: "isa"}, t("isa_" + isa), a.acked_by ? el("div", {class: "small"}, a.acked_by) : null),
  );
}

function paintCounts(board) {
  $("counts").replaceChildren(...LEVELS.map((level) => {
    const mine = board.filter((a) => a.level === level);
    const unack = mine.filter((a) => a.waiting).length;
    return el("div", {class: `count l${level}${level === 1 && unack ? " hot" : ""}`,
                      dataset: {level, unack, ack: mine.length - unack}},
      el("span", {}, t("lv" + level)), el("b", {}, String(unack)), el("span", {class: "small"}, t("unack")),
      el("b", {}, String(mine.length - unack)), el("span", {class: "small"}, t("ack")));
  }));
}

function describe(a) {
  const site = S.sites.get(a.site);
  return `${site ? site.name : a.site} · ${a.rule}${a.sensor ? " · " + a.sensor : ""}`;
}
function paintCue(board) {
  const reds = board.filter((a) => a.level === 1 && a.waiting)
    .sort((x, y) => epoch(x.opened_at) - epoch(y.opened_at));
  const cue = $("cue");
  cue.hidden = reds.length === 0;
  cue.dataset.alerts = reds.map((a) => a.id).join(" ");
  if (reds.length === 1) cue.textContent = t("cue_one", describe(reds[0]));
  else if (reds.length) cue.textContent = t("cue_more", reds.length, describe(reds[0]), reds.length - 1);
}

function paintAllClear() {
  const s = S.status;
  if (!s) { $("allclear").textContent = t("allclear_none", 0, S.sensors.size); return; }
  $("allclear").textContent = s.last_reading_at
    ? t("allclear", s.reporting, s.sensors, localTime(s.last_reading_at))
    : t("allclear_none", 0, s.sensors);
}

function fillFilters() {
  const opts = (id, values) => {
    const sel = $(id), keep = sel.value;
    sel.replaceChildren(...values.map(([v, label]) => el("option", {value: v}, label)));
    sel.value = values.some(([v]) => v === keep) ? keep : "";
  };
  opts("f-level", [["", t("all")], ...LEVELS.map((l) => [String(l), t("lv" + l)])]);
  opts("f-state", [["", t("s_all")], ["unack", t("s_unack")], ["ack", t("s_ack")], ["rtn", t("s_rtn")]]);
  opts("f-category", [["", t("all")], ...["process", "sensor_health", "data_interruption"]
    .map((c) => [c, t("cat_" + c)])]);
  const tenants = [...new Set([...S.sites.values()].map((s) => s.tenant))].sort();
  opts("f-tenant", [["", t("all")], ...tenants.map((x) => [x, x])]);
  const sites = [...S.sites.values()].sort((x, y) => x.name.localeCompare(y.name));
  opts("f-site", [["", t("all")], ...sites.map((s) => [s.id, `${s.name} (${s.id})`])]);
}

// ---- map ---------------------------------------------------------------------------------
let projection = null;
function drawMap() {
  const svg = $("map");
  const placed = [...S.sites.values()].filter((s) => s.location && isFinite(s.location.lat));
  const outlines = (S.settings && S.settings.districts && S.settings.districts.features) || [];
  const points = placed.map((s) => [s.location.lon, s.location.lat]);
  for (const f of outlines) for (const ring of rings(f.geometry)) points.push(...ring);
  if (!points.length) { svg.replaceChildren(); projection = null; return; }
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const k = Math.cos(((y0 + y1) / 2) * Math.PI / 180);
  const w = Math.max((x1 - x0) * k, 1e-3), h = Math.max(y1 - y0, 1e-3);
  const scale = Math.min(360 / w, 220 / h);
  projection = ([lon, lat]) => [20 + ((lon - x0) * k) * scale + (360 - w * scale) / 2,
                                20 + (y1 - lat) * scale + (220 - h * scale) / 2];
  const shapes = outlines.flatMap((f) => rings(f.geometry).map((ring) => {
    const d = ring.map((p, i) => (i ? "L" : "M") + projection(p).map((v) => v.toFixed(1)).join(",")).join("") + "Z";
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", d); path.setAttribute("class", "district");
    return path;
  }));
  const layer = document.createElementNS("http://www.w3.org/2000/svg", "g");
  layer.id = "map-sites";
  svg.replaceChildren(...shapes, layer);
  paintMap([...S.alerts.values()].filter(onBoard));
}
function rings(g) {
  if (!g) return [];
  if (g.type === "Polygon") return g.coordinates;
  if (g.type === "MultiPolygon") return g.coordinates.flat();
  return [];
}
function paintMap(board) {
  const layer = $("map-sites");
  if (!layer || !projection) return;
  const worst = new Map();
  for (const a of board) worst.set(a.site, Math.min(worst.get(a.site) || 5, a.level));
  const ns = "http://www.w3.org/2000/svg";
  layer.replaceChildren(...[...S.sites.values()].filter((s) => s.location).flatMap((s) => {
    const [x, y] = projection([s.location.lon, s.location.lat]);
    const alertLevel = worst.get(s.id);
    const risk = S.risk.get(s.id);
    const byRisk = S.mapMode === "risk";
    const level = byRisk ? (risk && risk.level) : alertLevel;
    const c = document.createElementNS(ns, "circle");
    c.setAttribute("cx", x.toFixed(1)); c.setAttribute("cy", y.toFixed(1));
    c.setAttribute("r", level && (byRisk ? level < 4 : true) ? 7 : 4);
    c.setAttribute("fill", level ? COLOURS[level] : "#5b6673");
    c.dataset.site = s.id; c.dataset.level = alertLevel || "";
    c.dataset.risk = risk ? risk.level : "";
    const title = document.createElementNS(ns, "title");
    title.textContent = byRisk && risk
      ? t("risk_title", s.name, t("risk" + risk.level), risk.score) + "\n" +
        risk.factors.map((f) => f.explanation).join("\n")
      : `${s.name} · ${alertLevel ? t("lv" + alertLevel) : t("no_alert")}`;
    c.append(title);
    c.addEventListener("click", () => { $("f-site").value = s.id; render(); });
    const label = document.createElementNS(ns, "text");
    const left = x > 300;  // names near the right edge go to the left of their dot
    label.setAttribute("x", (left ? x - 9 : x + 9).toFixed(1)); label.setAttribute("y", (y + 3).toFixed(1));
    if (left) label.setAttribute("text-anchor", "end");
    label.textContent = s.name;
    return [c, label];
  }));
}

// ---- detail ------------------------------------------------------------------------------
let chart = null;
function select(id) { S.selected = id; showDetail(id); render(); }

async function showDetail(id) {
  const r = await api(`/api/v1/alerts/${encodeURIComponent(id)}`);
  if (!r.ok || S.selected !== id) return;
  const a = await r.json();
  $("detail").hidden = false;
  $("d-title").replaceChildren(el("span", {class: `lv l${a.level}`}, t("lv" + a.level)), " ", describe(a));
  $("d-evidence").textContent = evidence(a);
  $("d-history").replaceChildren(...a.history.map((h) => el("li", {},
    `${localTime(h.at)} · ${h.kind}${h.actor ? " · " + h.actor : ""}` +
    `${h.detail && (h.detail.note || h.detail.text || h.detail.reason_code)
        ? " · " + [h.detail.reason_code, h.detail.note || h.detail.text].filter(Boolean).join(": ") : ""}`)));
  actions(a);
  if (chartFor !== id) trend(a);
}

function evidence(a) {
  const e = a.evidence || {};
  const sensor = S.sensors.get(a.sensor) || {};
  const unit = sensor.unit || "";
  if (e.type === "threshold") {
    const crossed = e.raised_by_anomaly ? ` (${t("ev_anomaly")})` : "";
    return tn("ev_threshold", {value: round(e.value ?? a.value), unit, thr: round(e.threshold),
      cmp: e.direction === "low" ? "≤" : "≥", lname: t("lv" + a.level), rule: a.rule,
      kind: sensor.kind || "", sensor: a.sensor}) + crossed;
  }
  if (e.type === "leak" && Array.isArray(e.why)) {
    const why = e.why.length ? ` (${e.why.join("; ")})` : "";
    return `${a.rule} · ${sensor.kind || ""} ${a.sensor}: ${round(e.value ?? a.value)} ${unit}` +
      ` · ${e.judgement || ""}${why}`;
  }
  if (e.type === "interruption") {
    return tn("ev_interruption", {sensor: a.sensor, silent: ago(e.silent_for_s), limit: ago(e.limit_s),
      last: e.last_reading_ts ? localTime(new Date(e.last_reading_ts * 1000).toISOString()) : "—"});
  }
  const fields = Object.entries(e).filter(([k]) => k !== "type")
    .map(([k, v]) => `${k} ${typeof v === "number" ? round(v) : JSON.stringify(v)}`).join(", ");
  return tn("ev_generic", {rule: a.rule, type: e.type || "", sensor: a.sensor || a.site, fields});
}

function actions(a) {
  const box = $("d-actions");
  const done = ["closed", "reviewed"].includes(a.state);
  const forms = [];
  const act = (name, path, body) => async (ev) => {
    ev.preventDefault();
    const r = await api(`/api/v1/alerts/${encodeURIComponent(a.id)}/${path}`, {method: "POST", body: body()});
    const msg = $("d-msg");
    msg.className = r.ok ? "" : "error";
    msg.textContent = r.ok ? t("done", t(name)) : t("failed", t(name), await reason(r));
    if (r.ok) { const fresh = await r.json().catch(() => null);
      if (fresh && fresh.id) S.alerts.set(fresh.id, {...S.alerts.get(fresh.id), ...fresh}); render(); showDetail(a.id); }
  };
  const input = (name, props = {}) => el("input", {name, ...props});
  if (a.waiting) forms.push(el("form", {id: "f-ack", onsubmit: act("a_ack", "ack", () => ({}))},
    el("button", {type: "submit"}, t("a_ack"))));
  if (!done && a.state !== "disposing" && !a.waiting) forms.push(el("form", {id: "f-disposing",
    onsubmit: act("a_disposing", "disposing", () => ({}))}, el("button", {type: "submit"}, t("a_disposing"))));
  if (!done) {
    const codes = (S.settings && S.settings.reason_codes) || [];
    const f = el("form", {id: "f-dispose"},
      el("select", {name: "reason_code", required: true},
        ...codes.map((c) => el("option", {value: c}, t("rc_" + c)))),
      el("textarea", {name: "note", required: true, placeholder: t("note")}),
      a.active ? el("label", {}, el("input", {type: "checkbox", name: "force"}), " ", t("force")) : null,
      a.active ? input("force_reason", {placeholder: t("reason")}) : null,
      el("button", {type: "submit"}, t("a_dispose")));
    f.addEventListener("submit", act("a_dispose", "dispose", () => {
      const body = {reason_code: f.reason_code.value, note: f.note.value};
      if (f.force && f.force.checked) Object.assign(body, {force: true, force_reason: f.force_reason.value});
      return body;
    }));
    forms.push(f);
    const c = el("form", {id: "f-comment"}, input("text", {required: true, placeholder: t("comment")}),
      el("button", {type: "submit"}, t("a_comment")));
    c.addEventListener("submit", act("a_comment", "comments", () => ({text: c.text.value})));
    const g = el("form", {id: "f-assign"}, input("assignee", {required: true, placeholder: t("person"),
      value: a.assignee || ""}), el("button", {type: "submit"}, t("a_assign")));
    g.addEventListener("submit", act("a_assign", "assign", () => ({assignee: g.assignee.value})));
    const s = el("form", {id: "f-shelve"},
      el("select", {name: "minutes"}, ...[15, 60, 240, 480].map((m) => el("option", {value: m}, `${m} ${t("minutes")}`))),
      input("reason", {required: true, placeholder: t("reason")}),
      el("button", {type: "submit"}, t("a_shelve")));
    s.addEventListener("submit", act("a_shelve", "shelve", () => ({reason: s.reason.value,
      until: new Date(Date.now() + Number(s.minutes.value) * 60000).toISOString()})));
    forms.push(c, g, s);
  } else if (a.state === "closed") {
    const v = el("form", {id: "f-review"}, input("note", {placeholder: t("note")}),
      el("button", {type: "submit"}, t("a_review")));
    v.addEventListener("submit", act("a_review", "review", () => ({note: v.note.value})));
    forms.push(v);
  }
  box.replaceChildren(...forms);
}

let chartFor = null;
async function trend(a) {
  chartFor = a.id;
  const box = $("d-trend");
  if (!a.sensor) { box.replaceChildren(); return; }
  const opened = epoch(a.opened_at);
  const from = new Date((opened - 43200) * 1000).toISOString();
  const to = new Date(Math.min(now(), opened + 43200) * 1000).toISOString();
  const q = new URLSearchParams({from, to});
  const [rd, sp] = await Promise.all([
    api(`/api/v1/sensors/${encodeURIComponent(a.sensor)}/readings?${q}`),
    api(`/api/v1/sensors/${encodeURIComponent(a.sensor)}/setpoints`)]);
  if (!rd.ok || chartFor !== a.id) return;
  const readings = (await rd.json()).readings || [];
  const setpoints = sp.ok ? (await sp.json()).filter((s) => s.type === "threshold" && s.category === "process") : [];
  if (!readings.length) { box.replaceChildren(el("p", {class: "muted"}, t("trend_none"))); return; }
  const xs = readings.map((p) => epoch(p.ts || p.bucket || p.time));
  const ys = readings.map((p) => p.value);
  const lines = [];
  for (const s of setpoints) for (const [level, v] of Object.entries(s.levels)) {
    lines.push({label: `${s.rule} ${t("lv" + level)}`, value: v, colour: COLOURS[level]});
  }
  const unit = (S.sensors.get(a.sensor) || {}).unit || "";
  const data = [xs, ys, ...lines.map((l) => xs.map(() => l.value))];
  const series = [{}, {label: `${a.sensor} ${unit}`, stroke: "#e8ecf1", width: 1.5},
    ...lines.map((l) => ({label: l.label, stroke: l.colour, dash: [6, 4], width: 1}))];
  if (chart) chart.destroy();
  box.replaceChildren();
  box.dataset.points = String(xs.length);
  box.dataset.setpoints = lines.map((l) => l.value).join(",");
  if (typeof uPlot === "undefined") return;
  const tz = zone();
  chart = new uPlot({width: 400, height: 200, series, tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), tz),
    axes: [{stroke: "#9aa5b1", grid: {stroke: "#2c333d"}}, {stroke: "#9aa5b1", grid: {stroke: "#2c333d"}}],
    legend: {show: true}}, data, box);
}

// ---- sound -------------------------------------------------------------------------------
function beep() {
  const ctx = S.sound;
  const osc = ctx.createOscillator(), gain = ctx.createGain();
  osc.frequency.value = 880; gain.gain.value = 0.2;
  osc.connect(gain); gain.connect(ctx.destination);
  osc.start(); osc.stop(ctx.currentTime + 0.4);
  S.beeps += 1;
}
$("sound").addEventListener("click", async () => {
  S.sound = S.sound || new AudioContext();
  await S.sound.resume();
  $("sound").textContent = t("sound_on");
  $("sound").dataset.on = "true";
});
setInterval(() => {
  if (S.sound && S.sound.state === "running" && !$("cue").hidden) beep();
}, 2000);

// ---- language, sign-in, filters, timers --------------------------------------------------
function paintLabels() {
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll("[data-i18n-placeholder]")) e.placeholder = t(e.dataset.i18nPlaceholder);
  $("lang").textContent = S.lang === "zh" ? "English" : "中文";
  if (S.sound) $("sound").textContent = t("sound_on");
  $("map-mode").value = S.mapMode;
  $("map-legend").textContent = S.mapMode === "risk" ? LEVELS.map((l) => t("risk" + l)).join(" · ") : "";
  fillFilters(); paintStatus(); render();
  if (S.selected) showDetail(S.selected);
}
$("lang").addEventListener("click", () => {
  S.lang = S.lang === "zh" ? "en" : "zh";
  localStorage.setItem("riskmon-lang", S.lang);
  paintLabels();
});
$("signin").addEventListener("submit", (ev) => {
  ev.preventDefault();
  S.token = $("token").value.trim();
  localStorage.setItem("riskmon-token", S.token);
  $("token").value = "";
  S.lastEventId = "";
  start();
});
$("signout").addEventListener("click", () => {
  S.token = ""; localStorage.removeItem("riskmon-token"); start();
});
$("map-mode").addEventListener("change", () => {
  S.mapMode = $("map-mode").value;
  localStorage.setItem("riskmon-map", S.mapMode);
  paintLabels();
});
for (const id of ["f-level", "f-state", "f-category", "f-tenant", "f-site"]) $(id).addEventListener("change", render);
$("f-search").addEventListener("input", render);
// events mark the board dirty; it is drawn at most every 250 ms, and every second for the ages
setInterval(() => { if (S.dirty) render(); }, 250);
setInterval(render, 1000);
setInterval(async () => {
  if (S.conn !== "live") return;
  const r = await api("/api/v1/status").catch(() => null);
  if (r && r.ok) S.status = await r.json();
}, 15000);

paintLabels();
start();
