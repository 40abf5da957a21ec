// TrendFlow Studio: every screen through the public HTTP API with the user's bearer token.
import { t, locale, setLocale, translate } from "./i18n.js";
import { componentCard, disposeCharts, el, onHoverTime } from "./charts.js";

const TOKEN_KEY = "trendflow.token";
const POLL_MS = 2000;
const main = document.getElementById("main");
const errorBox = document.getElementById("error");
let pollTimer = null;
let me = null;
let draft = { uploadId: null, upload: null, videoId: null };

class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body.message || `HTTP ${status}`);
    this.status = status; this.code = body.code || `http_${status}`;
    this.details = body.details || {}; this.retryAfter = retryAfter;
  }
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(method, path, { json, body, headers = {}, raw = false } = {}) {
  const init = { method, headers: { Authorization: `Bearer ${token()}`, ...headers } };
  if (json !== undefined) { init.body = JSON.stringify(json); init.headers["Content-Type"] = "application/json"; }
  if (body !== undefined) init.body = body;
  let res;
  try { res = await fetch(path, init); } catch { throw new ApiError(0, { code: "network" }); }
  if (!res.ok) {
    let payload = {};
    try { payload = await res.json(); } catch { payload = { code: `http_${res.status}`, message: res.statusText }; }
    throw new ApiError(res.status, payload, res.headers.get("Retry-After"));
  }
  if (raw) return res;
  return res.status === 204 ? null : res.json();
}

/** The user-facing words for an API error, from its stable code. */
function errorText(err) {
  if (!(err instanceof ApiError)) return String(err?.message || err);
  const d = { ...(err.details || {}) };
  for (const k of ["required", "available", "shortfall"]) if (d[k] !== undefined) d[k] = money(d[k]);
  const vars = { ...d, message: err.message, code: err.code,
    retry: d.retry_after_s ?? err.retryAfter ?? "?" };
  if (err.code === "invalid_input" && Array.isArray(d.errors) && d.errors.length) {
    vars.message = d.errors.map((e) => `${e.field}: ${e.problem}`).join("; ");
  }
  const key = `err_${err.code}`;
  const text = t(key, vars);
  return text === key ? t("err_other", vars) : text;
}

function showError(err) {
  errorBox.hidden = false;
  errorBox.dataset.code = err?.code || "";
  errorBox.textContent = errorText(err);
  if (err?.code === "unauthorized") { sessionStorage.removeItem(TOKEN_KEY); }
}

function clearError() { errorBox.hidden = true; errorBox.textContent = ""; delete errorBox.dataset.code; }

async function guarded(fn) {
  try { clearError(); return await fn(); } catch (err) { showError(err); return undefined; }
}

const duration = (s) => (s === null || s === undefined ? "?" : s < 90 ? t("seconds", { n: Math.round(s) }) : t("minutes", { n: Math.round(s / 60) }));
const money = (v) => Number(v).toFixed(2);

function field(labelKey, input) {
  const id = input.id || `f-${labelKey}`;
  input.id = id;
  return el("div", {}, el("label", { for: id, text: t(labelKey) }), input);
}

async function refreshMe() {
  me = await api("GET", "/api/me?ledger_limit=200");
  document.getElementById("balance").textContent = t("balance", { available: money(me.available), reserved: money(me.reserved) });
  return me;
}

// ---- screens ---------------------------------------------------------------------------

function signInView() {
  const input = el("input", { type: "password", id: "token", autocomplete: "off", required: true });
  const form = el("form", { class: "panel", "aria-labelledby": "h-signin" },
    el("h2", { id: "h-signin", text: t("sign_in") }), field("token", input),
    el("p", { class: "muted", text: t("token_help") }), el("button", { type: "submit", text: t("sign_in") }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    const ok = await guarded(refreshMe);
    if (ok) { chrome(true); route(); } else sessionStorage.removeItem(TOKEN_KEY);
  });
  main.replaceChildren(form);
  input.focus();
}

async function newAnalysisView() {
  const profiles = await api("GET", "/api/profiles");
  const mode = { value: "file" };
  const file = el("input", { type: "file", id: "file", accept: "video/*" });
  const title = el("input", { type: "text", id: "title", maxlength: 200 });
  const desc = el("textarea", { id: "description", maxlength: 5000 });
  const tags = el("input", { type: "text", id: "tags" });
  const url = el("input", { type: "url", id: "youtube-url", placeholder: "https://www.youtube.com/watch?v=…" });
  const uploadBtn = el("button", { type: "button", id: "upload", text: t("upload") });
  const uploadInfo = el("p", { id: "upload-info", class: "muted", "aria-live": "polite" });
  const select = el("select", { id: "profile" },
    profiles.map((p) => el("option", { value: p.profile_id, text: `${p.name} (${p.profile_id})${p.builtin ? "" : " · " + t("own")}` })));
  if (profiles.some((p) => p.profile_id === "fast")) select.value = "fast";
  const toggles = el("div", { class: "toggles", id: "toggles" });
  const estimateBox = el("p", { class: "estimate", id: "estimate", "aria-live": "polite", text: t("estimate_wait") });
  const start = el("button", { type: "button", id: "start", text: t("start"), disabled: true });

  const fileGroup = el("div", { id: "file-group" }, field("file", file), field("title", title),
    field("description", desc), field("tags", tags), uploadBtn, uploadInfo);
  const urlGroup = el("div", { id: "url-group", hidden: true }, field("youtube_url", url));
  const radio = (value, key) => el("label", { class: "inline" },
    el("input", { type: "radio", name: "source", value, checked: value === "file", onchange: () => {
      mode.value = value; fileGroup.hidden = value !== "file"; urlGroup.hidden = value !== "url"; update();
    } }), t(key));

  const currentProfile = () => profiles.find((p) => p.profile_id === select.value);
  function drawToggles() {
    const p = currentProfile();
    toggles.replaceChildren(...p.components.map((c) => el("label", { class: "inline" },
      el("input", { type: "checkbox", name: "component", value: c.name, checked: c.enabled, onchange: update }),
      c.name)));
  }
  function request() {
    const p = currentProfile();
    const chosen = [...toggles.querySelectorAll("input:checked")].map((i) => i.value);
    const same = p.components.filter((c) => c.enabled).map((c) => c.name).join() === chosen.join();
    const body = same ? { profile_id: p.profile_id } : { profile: {
      components: p.components.filter((c) => chosen.includes(c.name)).map((c) => ({ ...c, enabled: true })),
      sampling: p.sampling, render: p.render } };
    if (mode.value === "file") {
      if (!draft.uploadId) return null;
      body.upload_id = draft.uploadId;
    } else {
      if (!url.value) return null;
      body.youtube_url = url.value.trim(); // the API reads its duration and size from YouTube
    }
    return chosen.length ? body : null;
  }
  let seq = 0;
  async function update() {
    const body = request();
    start.disabled = !body;
    if (!body) { estimateBox.textContent = t("estimate_wait"); return; }
    const mine = ++seq;
    const est = await guarded(() => api("POST", "/api/estimate", { json: body }));
    if (mine !== seq || !est) return;
    estimateBox.dataset.total = est.total;
    estimateBox.dataset.components = Object.keys(est.components).join(" ");
    estimateBox.textContent = est.cached ? t("estimate_cached", { total: money(est.total) })
      : t("estimate", { total: money(est.total), eta: duration(est.eta_s) });
  }
  uploadBtn.addEventListener("click", () => guarded(async () => {
    const f = file.files[0];
    if (!f) return;
    uploadInfo.textContent = t("uploading");
    const meta = { title: title.value, description: desc.value,
      tags: tags.value.split(",").map((s) => s.trim()).filter(Boolean) };
    try {
      const up = await api("POST", "/api/uploads", { body: f, headers: {
        "Content-Type": f.type || "application/octet-stream",
        "X-Upload-Meta": JSON.stringify(meta), "X-Filename": encodeURIComponent(f.name) } });
      draft = { uploadId: up.upload_id, upload: up, videoId: up.video_id };
      uploadInfo.textContent = t("uploaded", { name: f.name, duration: up.duration_s.toFixed(1), w: up.width, h: up.height });
      await update();
    } catch (err) { uploadInfo.textContent = ""; throw err; }
  }));
  start.addEventListener("click", () => guarded(async () => {
    const body = request();
    if (!body) return;
    start.disabled = true;
    try {
      const run = await api("POST", "/api/runs", { json: body,
        headers: { "Idempotency-Key": crypto.randomUUID() } });
      location.hash = `#/runs/${run.run_id}`;
    } finally { start.disabled = false; }
  }));
  select.addEventListener("change", () => { drawToggles(); update(); });
  url.addEventListener("change", update);
  drawToggles();
  main.replaceChildren(el("section", { class: "panel", "aria-labelledby": "h-new" },
    el("h2", { id: "h-new", text: t("new_analysis") }),
    el("fieldset", {}, el("legend", { text: t("source") }), radio("file", "source_file"), " ", radio("url", "source_url")),
    fileGroup, urlGroup, field("profile", select),
    el("fieldset", {}, el("legend", { text: t("components") }), toggles), estimateBox, start));
  if (draft.uploadId) { uploadInfo.textContent = t("uploaded", { name: draft.upload.filename, duration: draft.upload.duration_s.toFixed(1), w: draft.upload.width, h: draft.upload.height }); update(); }
}

async function runView(runId) {
  const status = await api("GET", `/api/runs/${runId}/status`);
  if (["queued", "running"].includes(status.status)) return progressView(runId, status);
  return resultView(runId);
}

function progressView(runId, status) {
  const rows = el("tbody");
  const head = el("p", { id: "stage", "aria-live": "polite" });
  const cancel = el("button", { type: "button", class: "secondary", id: "cancel", text: t("cancel"),
    onclick: () => guarded(async () => { await api("POST", `/api/runs/${runId}/cancel`); }) });
  const bar = el("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100 }, el("span"));
  main.replaceChildren(el("section", { class: "panel", "aria-labelledby": "h-progress" },
    el("h2", { id: "h-progress", text: `${t("progress")} · ${t("run", { id: runId.slice(0, 8) })}` }),
    head, bar, el("div", { class: "table-wrap" }, el("table", { id: "components-progress" }, rows)), cancel));
  const paint = (s) => {
    head.textContent = `${t("stage", { stage: s.stage || s.status })} · ${s.eta_s ? t("eta", { eta: duration(s.eta_s) }) : ""}`;
    bar.firstChild.style.width = `${Math.round(s.progress * 100)}%`;
    bar.setAttribute("aria-valuenow", String(Math.round(s.progress * 100)));
    rows.replaceChildren(...s.components.map((c) => el("tr", { "data-component": c.name },
      el("td", { text: c.name }), el("td", {}, el("span", { class: `status ${c.status}`, text: c.status })),
      el("td", {}, el("div", { class: "progress" }, el("span", { style: `width:${Math.round(c.progress * 100)}%` }))))));
  };
  paint(status);
  const tick = async () => {
    const s = await guarded(() => api("GET", `/api/runs/${runId}/status`));
    if (location.hash !== `#/runs/${runId}`) return;
    if (s && !["queued", "running"].includes(s.status)) { resultView(runId); return; }
    if (s) paint(s);
    pollTimer = setTimeout(tick, POLL_MS);
  };
  pollTimer = setTimeout(tick, POLL_MS);
}

async function download(path, filename) {
  const res = await api("GET", path, { raw: true });
  const blob = await res.blob();
  const a = el("a", { href: URL.createObjectURL(blob), download: filename });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

/** The kept frame of the hovered moment (GET /api/runs/{id}/frame), while the archive holds it.
 * One request at a time: a hover that moves on while one loads asks for its latest moment next. */
function frameThumbnail(runId) {
  const img = el("img", { class: "frame-thumb", id: "frame-thumb", alt: "", hidden: true });
  const note = el("span", { class: "frame-note", id: "frame-note" });
  let wanted = null, shown = null, busy = false, gone = false, url = null;
  async function load() {
    busy = true;
    try {
      while (wanted !== null && !gone) {
        const at = wanted; wanted = null;
        if (at === shown) continue;
        try {
          const res = await api("GET", `/api/runs/${runId}/frame?t=${at}`, { raw: true });
          const blob = await res.blob();
          if (url) URL.revokeObjectURL(url);
          url = URL.createObjectURL(blob);
          const frameT = Number(res.headers.get("X-Frame-Time-S") ?? at);
          img.src = url; img.hidden = false; img.dataset.t = frameT.toFixed(3);
          img.alt = t("frame_at", { t: frameT.toFixed(2) });
          shown = at; note.textContent = "";
        } catch (err) {
          // Plots do not need the frames: their absence is a note, never the page's error.
          gone = err.code === "frames_expired";
          if (gone) { img.hidden = true; if (url) URL.revokeObjectURL(url); }
          note.textContent = errorText(err);
        }
      }
    } finally { busy = false; }
  }
  return {
    nodes: [img, note],
    show(s) { if (gone) return; wanted = (Math.round(s * 4) / 4).toFixed(2); if (!busy) load(); },
  };
}

async function resultView(runId) {
  const status = await api("GET", `/api/runs/${runId}/status`);
  const head = el("section", { class: "panel", "aria-labelledby": "h-result" },
    el("h2", { id: "h-result", text: `${t("result")} · ${t("run", { id: runId.slice(0, 8) })}` }),
    el("p", {}, el("span", { class: `status ${status.status}`, id: "run-status", text: status.status })));
  main.replaceChildren(head);
  if (status.error) head.append(el("p", { class: "component-error", text: t("failed", { code: status.error.code, message: status.error.message }) }));
  let result;
  try { result = await api("GET", `/api/runs/${runId}`); } catch (err) {
    if (err.code === "run_not_ready") { head.append(el("p", { text: errorText(err) })); return; }
    throw err;
  }
  const manifest = result.manifest;
  const video = manifest.video || {};
  const dur = Number(video.duration_s) || 0;
  const { platform_id: platform, video_id: videoId } = result.run;
  const timeText = el("span", { text: t("hover_time", { t: "—" }) });
  const frame = frameThumbnail(runId);
  const timebar = el("div", { class: "timebar muted", id: "hover-time", "aria-live": "off" }, timeText, frame.nodes);
  onHoverTime((s) => { timeText.textContent = t("hover_time", { t: s.toFixed(2) }); frame.show(s); });
  const manifestBtn = el("button", { type: "button", class: "secondary", id: "download-manifest", text: t("download_manifest"),
    onclick: () => { const blob = new Blob([JSON.stringify(manifest, null, 2)], { type: "application/json" });
      const a = el("a", { href: URL.createObjectURL(blob), download: "manifest.json" }); document.body.append(a); a.click(); a.remove(); } });
  const deleteBtn = el("button", { type: "button", class: "danger", id: "delete-video", text: t("delete_video"),
    onclick: () => guarded(async () => {
      if (!confirm(t("confirm_delete"))) return;
      const done = await api("DELETE", `/api/videos/${encodeURIComponent(platform)}/${encodeURIComponent(videoId)}`);
      disposeCharts();
      main.replaceChildren(el("section", { class: "panel" }, el("p", { id: "deleted", class: "notice",
        text: t("deleted", { runs: done.runs_deleted, uploads: done.uploads_deleted, objects: done.objects_deleted }) })));
      if (draft.videoId === videoId) draft = { uploadId: null, upload: null, videoId: null };
    }) });
  head.append(el("p", { class: "muted", text: `${platform}/${videoId} · ${result.run.profile_id} · ${dur.toFixed(1)} s` }), manifestBtn, deleteBtn);

  const report = el("section", { class: "card report", id: "report", "aria-labelledby": "h-report" },
    el("header", {}, el("h3", { id: "h-report", text: t("report") })));
  const grid = el("div", { class: "grid", id: "cards" });
  main.append(report, timebar, grid);
  const actions = (name) => el("button", { type: "button", class: "secondary", "data-npz": name, text: `${t("download_npz")} (${name})`,
    onclick: () => guarded(() => download(`/api/runs/${runId}/components/${name}.npz`, `${name}.npz`)) });
  const names = [...new Set([...Object.keys(manifest.components || {}), ...Object.keys(result.components)])].sort();
  for (const name of names) {
    grid.append(componentCard(name, manifest.components?.[name], result.components[name], dur, actions));
  }
  if (status.status === "ok") {
    try {
      const rep = await api("GET", `/api/runs/${runId}/report`);
      report.append(el("p", { class: "muted", text: t("report_engine", { engine: rep.engine }) }),
        ...(rep.sentences?.length ? rep.sentences : [rep.text]).map((s) => el("p", { text: s })));
    } catch (err) { report.append(el("p", { text: t("no_report", { why: errorText(err) }) })); }
  } else report.append(el("p", { text: t("no_report", { why: status.status }) }));
}

async function historyView() {
  const [page, account] = await Promise.all([api("GET", "/api/runs?limit=100"), refreshMe()]);
  const charged = {};
  for (const e of account.ledger) if (e.run_id && e.kind !== "topup") charged[e.run_id] = (charged[e.run_id] || 0) + Math.abs(Number(e.amount));
  const rows = page.items.map((r) => el("tr", {},
    el("td", { text: new Date(r.created_at).toLocaleString(locale()) }),
    el("td", {}, el("span", { class: `status ${r.status}`, text: r.status })),
    el("td", { text: r.profile_id }), el("td", { text: `${r.platform_id}/${r.video_id}` }),
    el("td", { text: charged[r.run_id] !== undefined ? money(charged[r.run_id]) : "—" }),
    el("td", {}, el("a", { href: `#/runs/${r.run_id}`, text: t("open") }))));
  main.replaceChildren(el("section", { class: "panel", "aria-labelledby": "h-history" },
    el("h2", { id: "h-history", text: t("history") }),
    rows.length ? el("div", { class: "table-wrap" }, el("table", { id: "history" },
      el("thead", {}, el("tr", {}, ...["created", "status_word", "profile", "source", "price", "open"].map((k) => el("th", { text: t(k) })))),
      el("tbody", {}, rows))) : el("p", { text: t("none_yet") })));
}

async function accountView() {
  const [account, s] = await Promise.all([refreshMe(), api("GET", "/api/me/settings")]);
  const ttl = el("input", { type: "number", id: "cache-days", min: 0, max: 365, value: s.cache_ttl_days });
  const lo = el("input", { type: "number", id: "sentences-min", min: 20, max: 100, value: s.report_sentences_min });
  const hi = el("input", { type: "number", id: "sentences-max", min: 20, max: 100, value: s.report_sentences_max });
  const lang = el("select", { id: "report-locale" }, el("option", { value: "ru", text: "Русский" }), el("option", { value: "en", text: "English" }));
  lang.value = s.report_locale;
  const saved = el("p", { id: "settings-saved", "aria-live": "polite" });
  const form = el("form", { class: "panel", "aria-labelledby": "h-settings" }, el("h2", { id: "h-settings", text: t("settings") }),
    field("cache_days", ttl), field("sentences_min", lo), field("sentences_max", hi), field("report_locale", lang),
    el("button", { type: "submit", text: t("save") }), saved);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); guarded(async () => {
    await api("PATCH", "/api/me/settings", { json: { cache_ttl_days: Number(ttl.value),
      report_sentences_min: Number(lo.value), report_sentences_max: Number(hi.value), report_locale: lang.value } });
    saved.textContent = t("saved");
  }); });
  const ledger = account.ledger.map((e) => el("tr", {}, el("td", { text: new Date(e.created_at).toLocaleString(locale()) }),
    el("td", { text: e.kind }), el("td", { text: money(e.amount) }), el("td", { text: money(e.balance_after) }),
    el("td", { text: e.component_name || e.note || "" })));
  main.replaceChildren(el("section", { class: "panel" }, el("h2", { text: t("account") }),
    el("p", { text: `${account.email} · ${account.subscription}` }),
    el("p", { text: t("balance", { available: money(account.available), reserved: money(account.reserved) }) })),
  form, el("section", { class: "panel", "aria-labelledby": "h-ledger" }, el("h2", { id: "h-ledger", text: t("ledger") }),
    el("div", { class: "table-wrap" }, el("table", {}, el("tbody", {}, ledger)))));
}

async function profilesView(editId) {
  const profiles = await api("GET", "/api/profiles");
  const catalog = [...new Set(profiles.flatMap((p) => p.components.map((c) => c.name)))].sort();
  const list = el("tbody", {}, profiles.map((p) => el("tr", {},
    el("td", { text: p.profile_id }), el("td", { text: p.name }),
    el("td", { text: p.builtin ? t("builtin") : p.owned ? t("own") : "" }),
    el("td", { text: p.components.filter((c) => c.enabled).map((c) => c.name).join(", ") }),
    el("td", {}, p.owned ? [el("a", { href: `#/profiles/${p.profile_id}`, text: t("edit") }), " ",
      el("button", { type: "button", class: "danger", text: t("delete"), onclick: () => guarded(async () => {
        if (!confirm(t("confirm_profile_delete", { id: p.profile_id }))) return;
        await api("DELETE", `/api/profiles/${p.profile_id}`); profilesView();
      }) })] : null))));
  const editing = profiles.find((p) => p.profile_id === editId && p.owned);
  const pid = el("input", { type: "text", id: "profile-id", pattern: "[a-z0-9][a-z0-9_.\\-]{0,63}", value: editing?.profile_id || "", readonly: !!editing });
  const name = el("input", { type: "text", id: "profile-name", value: editing?.name || "" });
  const chosen = new Set((editing?.components || []).filter((c) => c.enabled).map((c) => c.name));
  const boxes = el("div", { class: "toggles" }, catalog.map((c) => el("label", { class: "inline" },
    el("input", { type: "checkbox", value: c, checked: chosen.has(c), onchange: () => effect() }), c)));
  const params = el("textarea", { id: "profile-params" });
  params.value = JSON.stringify(Object.fromEntries((editing?.components || []).filter((c) => Object.keys(c.params).length).map((c) => [c.name, c.params])), null, 1);
  const price = el("p", { class: "estimate", id: "profile-price", "aria-live": "polite" });
  const components = () => {
    const p = JSON.parse(params.value || "{}");
    return [...boxes.querySelectorAll("input:checked")].map((i) => ({ name: i.value, params: p[i.value] || {} }));
  };
  async function effect() {
    const comps = components();
    if (!draft.uploadId || !comps.length) { price.textContent = t("estimate_wait"); return; }
    const est = await guarded(() => api("POST", "/api/estimate", { json: { upload_id: draft.uploadId, profile: { components: comps } } }));
    if (est) price.textContent = t("price_effect", { total: money(est.total) });
  }
  const form = el("form", { class: "panel", "aria-labelledby": "h-profile-edit" },
    el("h2", { id: "h-profile-edit", text: editing ? `${t("edit")} ${editing.profile_id}` : t("new_profile") }),
    field("profile_id", pid), field("profile_name", name),
    el("fieldset", {}, el("legend", { text: t("components") }), boxes), field("params", params), price,
    el("button", { type: "submit", text: t("save") }));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); guarded(async () => {
    await api("PUT", `/api/profiles/${pid.value}`, { json: { profile_id: pid.value, name: name.value,
      components: components(), sampling: editing?.sampling || {}, render: editing?.render || { engine: "template" },
      cache_ttl_days: editing?.cache_ttl_days ?? 3 } });
    location.hash = "#/profiles";
  }); });
  main.replaceChildren(el("section", { class: "panel", "aria-labelledby": "h-profiles" },
    el("h2", { id: "h-profiles", text: t("profiles") }),
    el("div", { class: "table-wrap" }, el("table", { id: "profiles" },
      el("thead", {}, el("tr", {}, ...["profile_id", "profile_name", "profile", "components", "edit"].map((k) => el("th", { text: t(k) })))),
      list))), form);
  effect();
}

// ---- routing ---------------------------------------------------------------------------

function chrome(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("signout").hidden = !signedIn;
  if (!signedIn) document.getElementById("balance").textContent = "";
}

async function route() {
  clearTimeout(pollTimer);
  disposeCharts();
  if (!token()) { chrome(false); signInView(); return; }
  if (!me) { const ok = await guarded(refreshMe); if (!ok) { chrome(false); signInView(); return; } }
  chrome(true);
  const hash = location.hash.replace(/^#/, "") || "/";
  const [, page, arg] = hash.split("/");
  await guarded(async () => {
    if (page === "runs" && arg) await runView(arg);
    else if (page === "history") await historyView();
    else if (page === "account") await accountView();
    else if (page === "profiles") await profilesView(arg);
    else await newAnalysisView();
  });
  document.body.dataset.view = page || "new";
}

document.getElementById("locale").value = locale();
document.getElementById("locale").addEventListener("change", (ev) => {
  setLocale(ev.target.value); translate(); route();
});
document.getElementById("signout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY); me = null; location.hash = "#/"; route();
});
window.addEventListener("hashchange", route);
setLocale(locale());
translate();
route();
