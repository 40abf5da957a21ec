// One card per component: its key findings and a plot. Time plots share one x axis (seconds of
// the video) and one cursor: hovering a moment in any plot shows the same moment in all.
import { t } from "./i18n.js";

const COLORS = ["#2456d6", "#d2461f", "#1b7f3b", "#8a3ffc", "#b58900", "#0f7c90", "#c2185b"];
const SYNC_KEY = "trendflow-time";
const charts = new Set();
let onTime = () => {};

export function onHoverTime(callback) { onTime = callback; }

export function disposeCharts() {
  for (const chart of charts) chart.destroy();
  charts.clear();
}

// A chart keeps its pixel width: shrink each to nothing first so its box takes the layout's
// width, then fit it to that width.
window.addEventListener("resize", () => {
  for (const chart of charts) chart.setSize({ width: 100, height: 190 });
  requestAnimationFrame(() => {
    for (const chart of charts) chart.setSize(size(chart.root.parentElement));
  });
});

function size(el) {
  return { width: Math.max(260, (el?.clientWidth || 600) - 4), height: 190 };
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/** The value of `key`, or undefined. */
export function value(doc, key) { return doc.keys?.[key]?.value; }

function unit(doc, key) { return doc.keys?.[key]?.unit; }

/** Seconds of each row of a series that carries no timestamps of its own, from its step
 *  (`step_s` per original row) and the server's bucketing (see api/presentation.py). */
function bucketTimes(doc, key, stepS) {
  const item = doc.keys[key];
  const shown = item.value.length;
  const down = item.downsampled;
  if (!down || !down.from) return item.value.map((_, i) => (i + 0.5) * stepS);
  const n = down.from, m = down.to;
  return item.value.map((_, i) => {
    const start = Math.floor((i * n) / m), end = Math.floor(((i + 1) * n) / m);
    return ((start + end) / 2) * stepS;
  });
}

function fmt(v) {
  if (typeof v === "number") return Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v * 10) / 10) : v.toPrecision(3);
  if (typeof v === "boolean") return v ? "yes" : "no";
  return String(v);
}

/** A few scalar findings ("key = value unit"). */
function findings(doc, keys) {
  const list = el("ul", { class: "findings" });
  for (const key of keys) {
    const v = value(doc, key);
    if (v === undefined || v === null || typeof v === "object") continue;
    const u = unit(doc, key);
    list.append(el("li", { text: `${key.replaceAll("_", " ")} = ${fmt(v)}${u && u !== "—" ? " " + u : ""}` }));
  }
  return list;
}

function allKeys(doc) {
  const rows = Object.entries(doc.keys || {}).map(([key, item]) => el("tr", {},
    el("td", { text: key }),
    el("td", { text: Array.isArray(item.value) ? `[${item.shape.join("×")}] ${item.dtype}` : fmt(item.value) }),
    el("td", { text: item.unit ?? "" })));
  return el("details", {}, el("summary", { text: t("all_keys") }),
    el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", { text: t("key") }), el("th", { text: t("value") }), el("th", { text: t("unit") }))),
      el("tbody", {}, rows))));
}

/** A time plot (uPlot): `x` seconds, `series` [{label, values}], vertical `marks` (s),
 *  horizontal `levels` [{y, label}], `spans` [[start, end]] shaded. */
export function timeChart(container, { x, series, duration, marks = [], levels = [], spans = [], yRange }) {
  const box = el("div", { class: "chart", role: "img", "aria-label": series.map((s) => s.label).join(", ") });
  container.append(box);
  const points = series.reduce((n, s) => n + s.values.filter((v) => v !== null && v !== undefined).length, 0);
  box.dataset.points = String(points);
  box.dataset.chart = "time";
  const draw = (u) => {
    const ctx = u.ctx;
    ctx.save();
    for (const [a, b] of spans) {
      const x0 = u.valToPos(a, "x", true), x1 = u.valToPos(b, "x", true);
      ctx.fillStyle = "rgba(27,127,59,0.15)";
      ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
    }
    ctx.strokeStyle = "rgba(210,70,31,0.8)";
    ctx.lineWidth = 1.5;
    for (const m of marks) {
      const px = u.valToPos(m, "x", true);
      ctx.beginPath(); ctx.moveTo(px, u.bbox.top); ctx.lineTo(px, u.bbox.top + u.bbox.height); ctx.stroke();
    }
    ctx.setLineDash([6, 4]);
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    ctx.fillStyle = "#5b6475";
    ctx.font = `${12 * devicePixelRatio}px system-ui`;
    for (const { y, label } of levels) {
      const py = u.valToPos(y, "y", true);
      ctx.strokeStyle = "#5b6475";
      ctx.beginPath(); ctx.moveTo(u.bbox.left, py); ctx.lineTo(u.bbox.left + u.bbox.width, py); ctx.stroke();
      ctx.fillText(label, u.bbox.left + 6, py - 4);
    }
    ctx.restore();
  };
  const opts = {
    ...size(container),
    scales: { x: { time: false, range: [0, Math.max(duration, x[x.length - 1] ?? 0, 1)] },
      y: yRange ? { range: yRange } : { auto: true } },
    axes: [{ label: t("time") + ", s" }, {}],
    series: [{ label: "t, s", value: (u, v) => (v === null ? "—" : v.toFixed(2)) },
      ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5,
        spanGaps: false, points: { show: false } }))],
    cursor: { sync: { key: SYNC_KEY, scales: ["x", null] }, drag: { x: false, y: false } },
    hooks: {
      draw: [draw],
      setCursor: [(u) => {
        if (u.cursor.left === null || u.cursor.left < 0) { delete box.dataset.cursorT; return; }
        const at = u.posToVal(u.cursor.left, "x");
        box.dataset.cursorT = at.toFixed(3);
        onTime(at);
      }],
    },
  };
  const chart = new uPlot(opts, [x, ...series.map((s) => s.values)], box);
  charts.add(chart);
  return chart;
}

/** A horizontal bar chart in SVG: `bars` [{label, value}] with values in [0, max]. */
function barChart(container, bars, { max, suffix = "" } = {}) {
  const top = max ?? Math.max(1e-9, ...bars.map((b) => b.value));
  const row = 22, width = 460, labelW = 160;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${bars.length * row + 4}`, class: "chart",
    role: "img", "aria-label": bars.map((b) => `${b.label} ${fmt(b.value)}${suffix}`).join(", ") });
  chart.dataset.points = String(bars.length);
  chart.dataset.chart = "bars";
  bars.forEach((b, i) => {
    const y = i * row + 2;
    const w = Math.max(0, (b.value / top) * (width - labelW - 60));
    chart.append(svg("rect", { x: labelW, y, width: w, height: row - 6, fill: COLORS[i % COLORS.length] }));
    const label = svg("text", { x: 0, y: y + row - 10, "font-size": 12 }); label.textContent = b.label;
    const num = svg("text", { x: labelW + w + 4, y: y + row - 10, "font-size": 12 });
    num.textContent = fmt(b.value) + suffix;
    chart.append(label, num);
  });
  container.append(chart);
}

/** The forecast's interval: p10–p90 as a bar, p50 as a dot, on a log scale. */
function intervalChart(container, rows) {
  const width = 420, row = 34, labelW = 90;
  const all = rows.flatMap((r) => [r.p10, r.p90]).filter((v) => v > 0);
  const lo = Math.log10(Math.max(1, Math.min(...all))) - 0.2, hi = Math.log10(Math.max(...all, 10)) + 0.2;
  const px = (v) => labelW + ((Math.log10(Math.max(v, 1)) - lo) / (hi - lo)) * (width - labelW - 20);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${rows.length * row + 6}`, class: "chart", role: "img",
    "aria-label": rows.map((r) => `${r.label}: ${fmt(r.p10)}–${fmt(r.p90)}, ${fmt(r.p50)}`).join("; ") });
  chart.dataset.points = String(rows.length * 3);
  chart.dataset.chart = "interval";
  rows.forEach((r, i) => {
    const y = i * row + 14;
    const name = svg("text", { x: 0, y: y + 4, "font-size": 12 }); name.textContent = r.label;
    chart.append(name, svg("line", { x1: px(r.p10), x2: px(r.p90), y1: y, y2: y, stroke: COLORS[i], "stroke-width": 8, "stroke-linecap": "round", opacity: 0.45 }),
      svg("circle", { cx: px(r.p50), cy: y, r: 6, fill: COLORS[i] }));
    const num = svg("text", { x: px(r.p50) - 10, y: y + 22, "font-size": 11 });
    num.textContent = `${fmt(r.p10)} · ${fmt(r.p50)} · ${fmt(r.p90)}`;
    chart.append(num);
  });
  container.append(chart);
}

const rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;

function swatches(container, colors, shares) {
  const bar = el("div", { class: "swatches", role: "img", "aria-label": t("swatches") });
  colors.forEach((c, i) => {
    if ((shares[i] ?? 0) <= 0) return;
    bar.append(el("span", { style: `width:${(shares[i] * 100).toFixed(2)}%;background:${rgb(c)}`, title: `${rgb(c)} ${(shares[i] * 100).toFixed(1)} %` }));
  });
  container.append(el("div", { class: "muted", text: t("swatches") }), bar);
}

function paletteStrip(container, palette, limit = 240) {
  const step = Math.max(1, Math.ceil(palette.length / limit));
  const strip = el("div", { class: "strip", role: "img", "aria-label": t("palette_time") });
  for (let i = 0; i < palette.length; i += step) strip.append(el("span", { style: `flex:1;background:${rgb(palette[i][0])}` }));
  container.append(el("div", { class: "muted", text: t("palette_time") }), strip);
}

function decodeText(bytes, [a, b]) {
  return new TextDecoder().decode(new Uint8Array(bytes.slice(a, b)));
}

/** Spans as a 0/1 step series sampled at `x`. */
function spanSeries(spans, duration) {
  const x = [0], y = [0];
  for (const [a, b] of spans) { x.push(a, a, b, b); y.push(0, 1, 1, 0); }
  x.push(duration); y.push(0);
  return { x, y };
}

// Each plot: what it draws from the component's keys. Returns nothing when the keys are absent.
const PLOTS = {
  shot_detection(doc, body, d) {
    body.append(findings(doc, ["n_cuts", "cuts_per_minute", "mean_shot_length_s", "median_shot_length_s"]));
    timeChart(body, { x: value(doc, "timestamps_s"), duration: d, marks: value(doc, "cut_timestamps_s") || [],
      series: [{ label: "content score (0-255)", values: value(doc, "content_score") }] });
  },
  color_stats(doc, body, d) {
    body.append(findings(doc, ["brightness_mean", "saturation_mean", "contrast_mean", "colorfulness_mean", "warm_cool_balance"]));
    swatches(body, value(doc, "video_palette_rgb") || [], value(doc, "video_palette_share") || []);
    const palette = value(doc, "palette_rgb");
    if (palette?.length) paletteStrip(body, palette);
    timeChart(body, { x: value(doc, "timestamps_s"), duration: d, yRange: [0, 1],
      series: ["brightness", "saturation", "contrast", "warm_fraction", "cool_fraction"]
        .map((k) => ({ label: k.replace("_", " "), values: value(doc, k) })) });
  },
  motion(doc, body, d) {
    body.append(findings(doc, ["motion_mean", "motion_p90", "camera_motion_mean", "object_motion_mean", "static_ratio"]));
    timeChart(body, { x: value(doc, "timestamps_s"), duration: d,
      series: [["motion_magnitude", "motion"], ["camera_magnitude", "camera"], ["object_magnitude", "objects"]]
        .map(([k, label]) => ({ label: `${label} (frame heights/s)`, values: value(doc, k) })) });
  },
  loudness(doc, body, d) {
    body.append(findings(doc, ["integrated_lufs", "loudness_range_lu", "true_peak_dbtp", "short_term_max_lufs"]));
    const lufs = value(doc, "short_term_lufs").map((v) => (v === null || v <= -119 ? null : v));
    const integrated = value(doc, "integrated_lufs");
    const levels = [{ y: -14, label: t("lufs_ref") }];
    if (integrated > -119) levels.push({ y: integrated, label: `${t("integrated")} ${fmt(integrated)} LUFS` });
    const finite = lufs.filter((v) => v !== null);
    const low = Math.min(-30, ...finite, integrated > -119 ? integrated : -30) - 3;
    const high = Math.max(-8, ...finite) + 2;
    timeChart(body, { x: value(doc, "short_term_times_s"), duration: d, levels, yRange: [low, high],
      series: [{ label: "short-term LUFS (3 s)", values: lufs }] });
  },
  audio_features(doc, body, d) {
    body.append(findings(doc, ["tempo_bpm", "n_beats", "onset_rate_per_s", "silence_ratio", "rms_dbfs_mean", "spectral_centroid_mean"]));
    const beats = value(doc, "beat_times_s") || [];
    const x = beats.slice(1), bpm = beats.slice(1).map((b, i) => 60 / Math.max(1e-3, b - beats[i]));
    timeChart(body, { x: x.length ? x : [0], duration: d, marks: beats,
      series: [{ label: "tempo between beats (BPM)", values: x.length ? bpm : [null] }] });
  },
  speech_activity(doc, body, d) {
    body.append(findings(doc, ["speech_ratio", "speech_duration_s", "audio_duration_s"]));
    const probs = value(doc, "speech_probs") || [];
    timeChart(body, { x: bucketTimes(doc, "speech_probs", value(doc, "window_s")), duration: d, yRange: [0, 1],
      spans: value(doc, "segments_s") || [], series: [{ label: "speech probability", values: probs }] });
  },
  faces(doc, body, d) {
    body.append(findings(doc, ["frames_with_faces_ratio", "mean_face_count", "max_face_count", "mean_screen_share", "n_largest_face_tracks"]));
    timeChart(body, { x: value(doc, "timestamps_s"), duration: d,
      series: [{ label: "faces", values: value(doc, "face_count") },
        { label: "screen share (0-1)", values: value(doc, "screen_share") }] });
  },
  face_emotion(doc, body) {
    const labels = value(doc, "labels") || [];
    const shares = value(doc, "emotion_distribution") || [];
    barChart(body, labels.map((label, i) => ({ label, value: shares[i] ?? 0 })), { max: 1 });
    const dom = value(doc, "dominant_share") || [];
    body.append(el("p", { class: "muted", text: "dominant: " + labels.map((l, i) => `${l} ${Math.round((dom[i] ?? 0) * 100)} %`).join(", ") }));
  },
  ocr_text(doc, body, d) {
    body.append(findings(doc, ["frames_with_text_ratio", "mean_text_area_ratio", "distinct_lines", "raw_text_stored"]));
    timeChart(body, { x: value(doc, "timestamps_s"), duration: d,
      series: [{ label: "text area (0-1)", values: value(doc, "text_area_ratio") },
        { label: "lines read", values: value(doc, "box_count") }] });
  },
  transcript(doc, body, d) {
    body.append(findings(doc, ["language", "source", "word_count", "words_per_minute", "text_stored"]));
    const segments = value(doc, "segments_s") || [];
    const steps = spanSeries(segments, d);
    timeChart(body, { x: steps.x, duration: d, yRange: [0, 1.2], spans: segments,
      series: [{ label: t("speech"), values: steps.y }] });
    const spans = value(doc, "segment_spans") || [];
    const bytes = value(doc, "text_utf8") || [];
    if (value(doc, "text_stored")) {
      const list = el("ol", { class: "transcript" });
      segments.forEach((seg, i) => list.append(el("li", { text: `${seg[0].toFixed(1)}–${seg[1].toFixed(1)} s: ${decodeText(bytes, spans[i])}` })));
      body.append(el("h4", { text: t("transcript_text") }), list);
    } else body.append(el("p", { class: "muted", text: t("text_not_stored", { n: segments.length }) }));
  },
  metadata_features(doc, body) {
    body.append(findings(doc, ["duration_s", "width", "height", "fps", "is_vertical", "has_audio", "tags_count"]));
    barChart(body, ["title_chars", "title_words", "description_chars", "description_words", "tags_chars", "description_hashtags", "description_links"]
      .filter((k) => value(doc, k) !== undefined).map((k) => ({ label: k.replace("_", " "), value: value(doc, k) })));
  },
  popularity_prediction(doc, body) {
    const rows = [];
    for (const target of ["views", "likes"]) {
      const pick = (q) => {
        const key = Object.keys(doc.keys).find((k) => k.includes(target) && k.includes(q) && !Array.isArray(value(doc, k)));
        return key ? value(doc, key) : undefined;
      };
      const [p10, p50, p90] = ["p10", "p50", "p90"].map(pick);
      if ([p10, p50, p90].every((v) => typeof v === "number")) rows.push({ label: t(target), p10, p50, p90 });
    }
    if (!rows.length) return false;
    intervalChart(body, rows);
    body.append(el("p", { class: "muted", text: t("interval") }));
  },
};

/** The generic plot: every 1-D numeric key against its component's timestamps, else the
 *  vectors as bars (embeddings). */
function genericPlot(doc, body, d) {
  body.append(findings(doc, Object.keys(doc.keys).filter((k) => doc.keys[k].shape.length === 0).slice(0, 6)));
  const x = value(doc, "timestamps_s");
  if (Array.isArray(x) && x.length) {
    const series = Object.entries(doc.keys)
      .filter(([k, item]) => k !== "timestamps_s" && k !== "frame_indices" && item.shape.length === 1
        && item.dtype.startsWith("float") && item.value.length === x.length)
      .slice(0, 6).map(([k, item]) => ({ label: k, values: item.value }));
    if (series.length) { timeChart(body, { x, duration: d, series }); return; }
  }
  const vector = Object.entries(doc.keys).find(([, item]) => item.shape.length === 1 && item.dtype.startsWith("float"));
  if (vector) {
    const [k, item] = vector;
    timeChartless(body, k, item.value);
  }
}

/** A vector (e.g. an embedding) as a line over its index, not on the time axis. */
function timeChartless(container, label, values) {
  const box = el("div", { class: "chart", role: "img", "aria-label": label });
  container.append(box);
  box.dataset.points = String(values.length);
  box.dataset.chart = "vector";
  const chart = new uPlot({ ...size(container), scales: { x: { time: false } }, axes: [{ label: "index" }, {}],
    series: [{ label: "index" }, { label, stroke: COLORS[0], width: 1, points: { show: false } }],
    cursor: { drag: { x: false, y: false } } }, [values.map((_, i) => i), values], box);
  charts.add(chart);
}

/** The card of one component from its manifest record and (when it produced one) its JSON. */
export function componentCard(name, record, doc, duration, actions) {
  const status = record?.status || doc?.status || "pending";
  const card = el("section", { class: "card", "data-component": name, "aria-labelledby": `h-${name}` },
    el("header", {}, el("h3", { id: `h-${name}`, text: name.replaceAll("_", " ") }),
      el("span", { class: `status ${status}`, text: status })));
  const body = el("div", { class: "card-body" });
  card.append(body);
  if (status === "empty" || doc?.status === "empty") {
    const reason = record?.empty_reason || doc?.empty_reason;
    const key = `reason_${reason}`;
    body.append(el("p", { class: "empty-reason", text: t("empty", { reason: t(key) === key ? reason : t(key) }) }));
  } else if (status === "error" || status === "failed") {
    const err = record?.error || {};
    body.append(el("p", { class: "component-error", text: t("failed", { code: err.code || "error", message: err.message || "" }) }));
  } else if (doc) {
    const plot = PLOTS[name];
    if (!plot || plot(doc, body, duration) === false) genericPlot(doc, body, duration);
    body.append(allKeys(doc));
  }
  if (doc && actions) body.append(actions(name));
  return card;
}
