// Queues: per-queue counts (live), throughput of the last hour, and the live workers.

import { api } from "./api.js";
import {
  clear, debounce, fmtAgo, fmtDuration, fmtInt, h, hashFor, parseTime, setText, svg,
} from "./dom.js";
import { hub } from "./hub.js";

const COUNTS = [
  ["waiting", "Waiting"], ["delayed", "Delayed"], ["active", "Running"], ["retrying", "Retrying"],
  ["completed", "Completed"], ["failed", "Failed"], ["cancelled", "Cancelled"],
];
const MINUTES = 60;

/** `{name: stats}` or `[{name, ...}]` -> `[[name, stats]]`, sorted by name. */
export function queueEntries(data) {
  const raw = data && data.queues !== undefined ? data.queues : data;
  const entries = Array.isArray(raw) ? raw.map((q) => [q.name || q.queue, q])
    : Object.entries(raw || {});
  return entries.sort((a, b) => String(a[0]).localeCompare(String(b[0])));
}

export function queuesPage(root) {
  let destroyed = false;
  const countsBody = h("tbody");
  const countsTable = h("table", { class: "data" },
    h("thead", null, h("tr", null, h("th", { scope: "col", text: "Queue" }),
      COUNTS.map(([, label]) => h("th", { scope: "col", class: "num", text: label })),
      h("th", { scope: "col", class: "num", text: "Oldest waiting" }))),
    countsBody);
  const chartBox = h("div");
  const chartNote = h("p", { class: "muted chart-note", "aria-live": "polite" });
  const chartQueue = h("select", { id: "chart-queue", "aria-label": "Queue shown in the chart",
    onchange: () => drawThroughput() },
    h("option", { value: "", text: "All queues" }));
  const workersBody = h("tbody");
  const workersTable = h("table", { class: "data" },
    h("thead", null, h("tr", null, ["Worker", "Host", "PID", "Queues", "Running", "Started",
      "Heartbeat"].map((t) => h("th", { scope: "col", text: t })))),
    workersBody);
  const message = h("div", { class: "notice error", hidden: true });
  root.append(
    h("div", { class: "page-head" }, h("h1", null, "Queues")),
    message,
    h("section", { class: "card" }, h("h2", { class: "section-title" }, "Runs per queue"),
      h("div", { class: "table-wrap" }, countsTable)),
    h("section", { class: "card" },
      h("div", { class: "page-head" }, h("h2", { class: "section-title" },
        "Throughput, last hour (runs finished per minute)"),
      h("div", { class: "legend actions" },
        chartQueue,
        h("span", null, h("span", { class: "sw ok" }), "completed"),
        h("span", null, h("span", { class: "sw bad" }), "failed"))),
      chartBox, chartNote),
    h("section", { class: "card" }, h("h2", { class: "section-title" }, "Workers"),
      h("div", { class: "table-wrap" }, workersTable)),
  );

  function fail(err) {
    message.hidden = false;
    setText(message, `Could not load: ${err.message}`);
  }

  const rows = new Map();
  function renderCounts(data) {
    const entries = queueEntries(data);
    if (!entries.length && !rows.size) {
      clear(countsBody).append(h("tr", null, h("td", { colspan: String(COUNTS.length + 2),
        class: "muted", text: "No queues yet: enqueue a job." })));
      return;
    }
    if (!rows.size) clear(countsBody);
    for (const [name, stats] of entries) {
      let row = rows.get(name);
      if (!row) {
        const cells = COUNTS.map(() => h("td", { class: "num" }));
        const oldest = h("td", { class: "num" });
        const link = h("a", { href: hashFor("runs", { queue: name }), text: name });
        const tr = h("tr", null, h("td", null, link), cells, oldest);
        row = { tr, cells, oldest };
        rows.set(name, row);
        countsBody.append(tr);
        addQueueOption(name);
      }
      COUNTS.forEach(([key], i) => setText(row.cells[i], fmtInt(stats[key] ?? 0)));
      const age = stats.oldestWaitingAgeSeconds;
      setText(row.oldest, age === null || age === undefined ? "" : fmtDuration(age * 1000));
    }
  }

  async function loadCounts() {
    try {
      renderCounts(await api("queues"));
    } catch (err) {
      fail(err);
    }
  }

  // -- throughput ---------------------------------------------------------------------------
  // GET /queues/throughput: runs that finished in each minute of the last hour (by the time
  // they ended, whenever they were created), per queue; summed here, or one queue picked.
  let throughput = null;
  async function loadThroughput() {
    if (destroyed) return;
    try {
      const data = await api("queues/throughput", { query: { minutes: MINUTES } });
      if (destroyed) return;
      throughput = data;
      drawThroughput();
    } catch (err) {
      setText(chartNote, `Throughput unavailable: ${err.message}`);
    }
  }

  function drawThroughput() {
    if (!throughput) return;
    const start = parseTime(throughput.since);
    const minutes = throughput.minutes || MINUTES;
    const only = chartQueue.value;
    const buckets = Array.from({ length: minutes }, () => ({ ok: 0, bad: 0 }));
    for (const b of throughput.buckets || []) {
      addQueueOption(b.queue);
      if (only && b.queue !== only) continue;
      const i = Math.floor((parseTime(b.minute) - start) / 60000);
      if (i < 0 || i >= minutes) continue;
      buckets[i].ok += b.completed || 0;
      buckets[i].bad += b.failed || 0;
    }
    clear(chartBox).append(chart(buckets, start));
    const ok = buckets.reduce((a, b) => a + b.ok, 0);
    const bad = buckets.reduce((a, b) => a + b.bad, 0);
    setText(chartNote, `${fmtInt(ok + bad)} runs finished in the last hour` +
      `${only ? ` on ${only}` : ""}: ${fmtInt(ok)} completed, ${fmtInt(bad)} failed.`);
  }

  function addQueueOption(name) {
    if (!name || [...chartQueue.options].some((o) => o.value === name)) return;
    const after = [...chartQueue.options].slice(1).find((o) => o.value.localeCompare(name) > 0);
    chartQueue.insertBefore(h("option", { value: name, text: name }), after || null);
  }

  // a run that ends changes this minute's bar: read again soon (one indexed query)
  const throughputSoon = debounce(loadThroughput, 1000);

  // -- workers ------------------------------------------------------------------------------
  let workers = [];
  async function loadWorkers() {
    try {
      const data = await api("workers");
      workers = Array.isArray(data) ? data : data.workers || [];
      renderWorkers();
    } catch (err) {
      fail(err);
    }
  }

  function renderWorkers() {
    clear(workersBody);
    if (!workers.length) {
      workersBody.append(h("tr", null, h("td", { colspan: "7", class: "muted",
        text: "No live workers. Start one with: jobglass worker MODULE:APP" })));
      return;
    }
    const now = Date.now();
    for (const w of workers) {
      const beat = parseTime(w.heartbeatAt);
      const stale = beat !== null && now - beat > 30000;
      workersBody.append(h("tr", null,
        h("td", { class: "mono", text: w.id }),
        h("td", { text: w.hostname }),
        h("td", { class: "num", text: w.pid }),
        h("td", { text: (w.queues || []).join(", ") }),
        h("td", { class: "num", text: `${w.running ?? 0} / ${w.concurrency ?? "?"}` }),
        h("td", { text: fmtAgo(w.startedAt, now) }),
        h("td", { class: stale ? "stale" : "", text: fmtAgo(w.heartbeatAt, now) +
          (stale ? " (stale)" : "") })));
    }
  }

  const off = hub.on((evt) => {
    if (evt.type === "status" && (evt.status === "SUCCESS" || evt.status === "FAILED")) {
      throughputSoon();
    } else if (evt.type === "resync") throughputSoon();
    if (evt.type === "queues" && evt.queues) renderCounts(evt.queues);
    else if ((evt.type === "snapshot" || evt.type === "resync") && evt.queues) {
      renderCounts(evt.queues);
    }
  });
  const timers = [
    setInterval(loadCounts, 10000),
    setInterval(loadWorkers, 5000),
    setInterval(renderWorkers, 1000),
    setInterval(loadThroughput, 30000),
  ];
  loadCounts();
  loadWorkers();
  loadThroughput();

  return {
    destroy() {
      destroyed = true;
      off();
      timers.forEach(clearInterval);
    },
  };
}

/** Stacked bars: completed (bottom) and failed (top) per minute; <title> for the numbers.
 * The SVG stretches to the card's width; the labels are HTML so they never stretch. */
function chart(buckets, start) {
  const W = buckets.length * 10;
  const H = 100;
  const max = Math.max(1, ...buckets.map((b) => b.ok + b.bad));
  const scale = (v) => (v / max) * H;
  const bars = buckets.map((b, i) => {
    const x = i * 10 + 1;
    const hOk = scale(b.ok);
    const hBad = scale(b.bad);
    const at = new Date(start + i * 60000).toLocaleTimeString([], { hour: "2-digit",
      minute: "2-digit", hourCycle: "h23" });
    return svg("g", null,
      svg("title", { text: `${at}: ${b.ok} completed, ${b.bad} failed` }),
      svg("rect", { class: "ok", x, width: 8, y: H - hOk, height: hOk }),
      svg("rect", { class: "bad", x, width: 8, y: H - hOk - hBad, height: hBad }),
      // a transparent full-height target so the tooltip works on empty minutes too
      svg("rect", { x: i * 10, width: 10, y: 0, height: H, fill: "transparent" }));
  });
  const plot = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none",
    role: "img", "aria-label": `Runs finished per minute over the last hour; peak ${max} a minute` },
  svg("line", { class: "axis", x1: 0, x2: W, y1: H, y2: H }), bars);
  return h("div", { class: "chart-wrap" },
    h("div", { class: "chart-y" }, h("span", { text: String(max) }), h("span", { text: "0" })),
    plot,
    h("div", { class: "chart-x" }, h("span", { text: "60 min ago" }), h("span", { text: "now" })));
}
