// DOM and formatting helpers. Every piece of data goes in through textContent or
// setAttribute; nothing here ever parses a string as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function applyAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") el.textContent = String(value);
    else if (key === "class") el.setAttribute("class", value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** h("a", {href: "#/runs", class: "x", onclick: fn}, "text", child, ...) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function setText(el, value) {
  const text = value === null || value === undefined ? "" : String(value);
  if (el.textContent !== text) el.textContent = text;
}

const intFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const oneFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

export function fmtInt(n) {
  return n === null || n === undefined || Number.isNaN(n) ? "" : intFmt.format(n);
}

export function fmtNum(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "";
  return Number.isInteger(n) ? intFmt.format(n) : oneFmt.format(n);
}

/** 2m 34s, 1h 02m, 850ms, 12s: the seed's summary style. */
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 24) return `${hrs}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

export function parseTime(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

export function fmtTime(iso) {
  const t = typeof iso === "number" ? iso : parseTime(iso);
  if (t === null) return "";
  const d = new Date(t);
  const now = new Date();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit",
    hourCycle: "h23" });
  if (d.toDateString() === now.toDateString()) return time;
  return `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

export function fmtClock(iso) {
  const t = typeof iso === "number" ? iso : parseTime(iso);
  if (t === null) return "";
  const d = new Date(t);
  const ms = String(d.getMilliseconds()).padStart(3, "0");
  return `${d.toLocaleTimeString([], { hourCycle: "h23" })}.${ms}`;
}

export function fmtAgo(iso, now = Date.now()) {
  const t = typeof iso === "number" ? iso : parseTime(iso);
  if (t === null) return "";
  const diff = now - t;
  if (diff < -1000) return `in ${fmtDuration(-diff)}`;
  if (diff < 1000) return "just now";
  return `${fmtDuration(diff)} ago`;
}

export function titleCase(key) {
  const spaced = String(key).replace(/[_-]+/g, " ").replace(/([a-z])([A-Z])/g, "$1 $2");
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}

export const LIVE_STATUSES = new Set(["QUEUED", "RUNNING", "RETRYING"]);
export const STATUSES = ["QUEUED", "RUNNING", "RETRYING", "SUCCESS", "FAILED", "CANCELLED"];

export function statusBadge(status) {
  return h("span", { class: `badge status-${status || "UNKNOWN"}`, text: status || "?" });
}

export function setStatusBadge(el, status) {
  const cls = `badge status-${status || "UNKNOWN"}`;
  if (el.getAttribute("class") !== cls) el.setAttribute("class", cls);
  setText(el, status || "?");
}

/** A progress bar with `current / total` and a percent, or a count when the total is unknown. */
export function progressBar(opts = {}) {
  const fill = h("div", { class: "progress-fill" });
  const label = h("span", { class: "progress-label" });
  const el = h(
    "div",
    { class: `progress ${opts.large ? "progress-large" : ""}`, role: "progressbar",
      "aria-valuemin": "0", "aria-valuemax": "100" },
    h("div", { class: "progress-track" }, fill),
    label,
  );
  const state = { key: "" };
  function set(current, total, unit, status) {
    const key = `${current}|${total}|${unit}|${status}`;
    if (key === state.key) return;
    state.key = key;
    const cur = current || 0;
    const known = typeof total === "number" && total > 0;
    el.classList.toggle("indeterminate", !known && status === "RUNNING");
    el.classList.toggle("done", status === "SUCCESS");
    el.classList.toggle("failed", status === "FAILED" || status === "CANCELLED");
    if (known) {
      const pct = Math.max(0, Math.min(100, Math.floor((Math.min(cur, total) * 100) / total)));
      fill.style.width = `${pct}%`;
      el.setAttribute("aria-valuenow", String(pct));
      setText(label, `${fmtInt(cur)} / ${fmtInt(total)} · ${pct}%`);
    } else {
      fill.style.width = status === "SUCCESS" ? "100%" : "0%";
      el.removeAttribute("aria-valuenow");
      setText(label, cur ? `${fmtInt(cur)} ${unit || "processed"}` : "");
    }
    el.setAttribute("aria-valuetext", label.textContent || "no progress yet");
  }
  return { el, set };
}

/** Pretty JSON for params, contexts and results (always placed with textContent). */
export function prettyJson(value) {
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Parse "#/runs/12?x=1" into {path: ["runs", "12"], query: URLSearchParams}. */
export function parseHash(hash) {
  const raw = (hash || "").replace(/^#/, "");
  const [pathPart, queryPart] = raw.split("?");
  const path = pathPart.split("/").filter(Boolean).map(decodeURIComponent);
  return { path, query: new URLSearchParams(queryPart || "") };
}

export function hashFor(path, query) {
  const q = query ? new URLSearchParams(
    Object.entries(query).filter(([, v]) => v !== "" && v !== null && v !== undefined),
  ).toString() : "";
  return `#/${path}${q ? `?${q}` : ""}`;
}

/** REST log rows carry the seed's `id` (the per-run sequence); stream rows carry `seq` too. */
export function normalizeLog(line) {
  if (line.seq === undefined || line.seq === null) line.seq = Number(line.id);
  return line;
}
