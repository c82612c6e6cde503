// Runs: a live table, newest first. Stream events patch the affected rows in place.

import { api, auth } from "./api.js";
import {
  LIVE_STATUSES, STATUSES, clear, debounce, fmtDuration, fmtTime, h, hashFor, parseTime,
  progressBar, setStatusBadge, setText, statusBadge,
} from "./dom.js";
import { hub } from "./hub.js";

const PAGE = 200;
const FILTERS = ["status", "job", "queue", "tenant", "correlationId", "q"];

export function runsPage(root, query) {
  const filters = {};
  for (const key of FILTERS) filters[key] = query.get(key) || "";
  const rows = new Map(); // runId -> row
  const pending = new Set(); // run ids to fetch
  // runs seen that do not match the filters now, id -> what we know of them: stream events
  // update it, and a run whose status or stage brings it into the filters is fetched again
  const rejected = new Map();
  const changes = new Map(); // runId -> status events seen, to spot a fetch they overtook
  let nextCursor = null;
  let loading = false;
  let destroyed = false;
  let generation = 0;

  // -- filters ----------------------------------------------------------------------------
  const jobList = h("datalist", { id: "jobs-list" });
  const queueList = h("datalist", { id: "queues-list" });
  const statusSelect = h("select", { id: "f-status", name: "status" },
    h("option", { value: "", text: "Any" }),
    STATUSES.map((s) => h("option", { value: s, text: s, selected: filters.status === s })));
  const inputs = {
    job: h("input", { id: "f-job", list: "jobs-list", value: filters.job, placeholder: "any" }),
    queue: h("input", { id: "f-queue", list: "queues-list", value: filters.queue,
      placeholder: "any" }),
    tenant: h("input", { id: "f-tenant", value: filters.tenant, placeholder: "any" }),
    correlationId: h("input", { id: "f-correlation", class: "wide", value: filters.correlationId,
      placeholder: "any" }),
    q: h("input", { id: "f-q", class: "wide", type: "search", value: filters.q,
      placeholder: "job, stage, job id…" }),
  };
  const apply = () => {
    filters.status = statusSelect.value;
    for (const [key, input] of Object.entries(inputs)) filters[key] = input.value.trim();
    window.history.replaceState(null, "", hashFor("runs", filters));
    reload();
  };
  const applySoon = debounce(apply, 350);
  statusSelect.addEventListener("change", apply);
  for (const input of Object.values(inputs)) {
    input.addEventListener("input", applySoon);
    input.addEventListener("change", apply);
  }
  const clearButton = h("button", { type: "button", class: "btn small", onclick: () => {
    statusSelect.value = "";
    for (const input of Object.values(inputs)) input.value = "";
    apply();
  } }, "Clear filters");
  const filterBar = h("form", { class: "filters", role: "search", "aria-label": "Filter runs",
    onsubmit: (e) => { e.preventDefault(); apply(); } },
    h("label", { for: "f-status" }, "Status", statusSelect),
    h("label", { for: "f-job" }, "Job", inputs.job),
    h("label", { for: "f-queue" }, "Queue", inputs.queue),
    h("label", { for: "f-tenant" }, "Tenant", inputs.tenant),
    h("label", { for: "f-correlation" }, "Correlation id", inputs.correlationId),
    h("label", { for: "f-q" }, "Search", inputs.q),
    clearButton, jobList, queueList);

  // -- table ------------------------------------------------------------------------------
  const tbody = h("tbody");
  const headers = ["Run", "Status", "Job", "Queue", "Stage", "Progress", "Started", "Duration",
    "Tenant"];
  const table = h("table", { class: "data runs-table" },
    h("caption", { class: "muted", hidden: true, text: "Runs, newest first" }),
    h("thead", null, h("tr", null, headers.map((t) => h("th", { scope: "col", text: t })))),
    tbody);
  const countLabel = h("span", { class: "muted" });
  const moreButton = h("button", { type: "button", class: "btn", hidden: true,
    onclick: () => loadMore() }, "Load older runs");
  const message = h("div", { class: "notice", hidden: true });
  // an admin action: viewers never see it (the API would refuse the enqueue anyway)
  const enqueueLink = h("a", { class: "btn primary", href: "#/enqueue", hidden: !auth.isAdmin },
    "Enqueue a job");
  const offAuth = auth.onChange(() => { enqueueLink.hidden = !auth.isAdmin; });
  root.append(
    h("div", { class: "page-head" }, h("h1", null, "Runs"),
      h("div", { class: "actions" }, enqueueLink)),
    filterBar, message,
    h("div", { class: "table-wrap" }, table),
    h("div", { class: "table-foot" }, moreButton, countLabel),
  );

  function showMessage(text, isError = false) {
    message.hidden = !text;
    message.className = isError ? "notice error" : "notice";
    setText(message, text);
  }

  function queryFor(cursor) {
    const q = { limit: PAGE };
    for (const key of FILTERS) if (filters[key]) q[key] = filters[key];
    if (cursor) q.cursor = cursor;
    return q;
  }

  async function reload() {
    const gen = ++generation;
    loading = true;
    try {
      const data = await api("jobs", { query: queryFor(null) });
      if (gen !== generation || destroyed) return;
      clear(tbody);
      rows.clear();
      rejected.clear();
      changes.clear();
      for (const run of data.runs || []) insertRow(run, false);
      nextCursor = data.nextCursor || null;
      showMessage(rows.size ? "" : "No runs match these filters yet.");
    } catch (err) {
      if (gen === generation) showMessage(`Could not load runs: ${err.message}`, true);
    } finally {
      if (gen === generation) loading = false;
      updateFoot();
    }
  }

  async function loadMore() {
    if (!nextCursor || loading) return;
    loading = true;
    const gen = generation;
    moreButton.disabled = true;
    try {
      const data = await api("jobs", { query: queryFor(nextCursor) });
      if (gen !== generation || destroyed) return;
      for (const run of data.runs || []) insertRow(run, false);
      nextCursor = data.nextCursor || null;
    } catch (err) {
      showMessage(`Could not load more runs: ${err.message}`, true);
    } finally {
      loading = false;
      moreButton.disabled = false;
      updateFoot();
    }
  }

  function updateFoot() {
    moreButton.hidden = !nextCursor;
    setText(countLabel, `${rows.size.toLocaleString("en-US")} runs shown` +
      (nextCursor ? "; older runs are one click away" : ""));
  }

  // -- rows -------------------------------------------------------------------------------
  function makeRow(run) {
    const link = h("a", { href: `#/runs/${encodeURIComponent(run.id)}`, text: `#${run.id}` });
    const badge = statusBadge(run.status);
    const bar = progressBar();
    const cells = {
      id: h("td", { class: "mono" }, link),
      status: h("td", null, badge),
      job: h("td"),
      queue: h("td"),
      stage: h("td", { class: "stage" }),
      progress: h("td", null, bar.el),
      started: h("td"),
      duration: h("td", { class: "num" }),
      tenant: h("td"),
    };
    const tr = h("tr", { class: "clickable", dataset: { runId: String(run.id) } },
      Object.values(cells));
    tr.addEventListener("click", (e) => {
      if (e.target.closest("a")) return;
      window.location.hash = `#/runs/${encodeURIComponent(run.id)}`;
    });
    return { tr, cells, badge, bar, run: {}, id: Number(run.id) };
  }

  /** Apply what changed; a run that no longer matches the filters leaves the table. */
  function patch(row, run) {
    const r = Object.assign(row.run, run);
    if (!matches(r)) {
      removeRow(row.id);
      rejected.set(row.id, r);
      return;
    }
    setStatusBadge(row.badge, r.status);
    setText(row.cells.job, r.jobName);
    setText(row.cells.queue, r.queue);
    setText(row.cells.stage, r.currentStage || "");
    row.cells.stage.title = r.progressMessage || r.currentStage || "";
    row.bar.set(r.progressCurrent, r.progressTotal, r.entityType, r.status);
    setText(row.cells.started, r.startedAt ? fmtTime(r.startedAt) : "");
    setText(row.cells.tenant, r.tenantId ?? "");
    updateDuration(row);
  }

  function removeRow(id) {
    const row = rows.get(id);
    if (!row) return;
    row.tr.remove();
    rows.delete(id);
    if (!rows.size && !loading) showMessage("No runs match these filters yet.");
    updateFoot();
  }

  function updateDuration(row) {
    const r = row.run;
    let ms = r.durationMs;
    if (r.status === "RUNNING" && r.startedAt) ms = Date.now() - parseTime(r.startedAt);
    else if ((ms === null || ms === undefined) && r.startedAt && r.finishedAt) {
      ms = parseTime(r.finishedAt) - parseTime(r.startedAt);
    }
    setText(row.cells.duration, ms === null || ms === undefined ? "" : fmtDuration(ms));
  }

  function oldestLoaded() {
    let min = Infinity;
    for (const id of rows.keys()) min = Math.min(min, id);
    return min;
  }

  /** Insert in id order (newest first); a run older than the loaded window waits for "more". */
  function insertRow(run, live) {
    const id = Number(run.id);
    if (rows.has(id)) {
      patch(rows.get(id), run);
      return;
    }
    if (live && nextCursor && id < oldestLoaded()) return;
    if (!matches(run)) {
      rejected.set(id, { ...run });
      return;
    }
    rejected.delete(id);
    const row = makeRow(run);
    patch(row, run);
    rows.set(id, row);
    let before = null;
    if (live) {
      for (const tr of tbody.children) {
        if (Number(tr.dataset.runId) < id) {
          before = tr;
          break;
        }
      }
    }
    tbody.insertBefore(row.tr, before);
    if (live) {
      row.tr.classList.add("flash");
      showMessage("");
      updateFoot();
    }
  }

  /** The server's filters, on what we know of a run: a field we do not know yet (a stream
   * event carries no correlation id or job id) does not rule it out; a full run decides. */
  function matches(run) {
    if (filters.status && run.status
      && !filters.status.toUpperCase().split(",").map((v) => v.trim()).includes(run.status)) {
      return false;
    }
    if (filters.job && run.jobName && run.jobName !== filters.job) return false;
    if (filters.queue && run.queue && run.queue !== filters.queue) return false;
    if (filters.tenant && "tenantId" in run && String(run.tenantId ?? "") !== filters.tenant) {
      return false;
    }
    if (filters.correlationId && "correlationId" in run
      && run.correlationId !== filters.correlationId) return false;
    if (filters.q && "correlationId" in run) {
      const needle = filters.q.toLowerCase();
      const hay = [run.jobName, run.currentStage, run.jobId, run.correlationId]
        .map((v) => String(v ?? "").toLowerCase());
      if (!hay.some((v) => v.includes(needle))) return false;
    }
    return true;
  }

  // -- live updates -----------------------------------------------------------------------
  const flushPending = debounce(async () => {
    if (pending.size > 50) {
      // a burst (bulk enqueue, many finishing at once): one list read beats many run reads
      pending.clear();
      await resync();
      return;
    }
    const ids = [...pending];
    for (const id of ids) pending.delete(id);
    const gen = generation;
    await Promise.all(ids.map(async (id) => {
      const seen = changes.get(id) || 0;
      try {
        const data = await api(`jobs/${id}`);
        if (destroyed || gen !== generation || !data.run) return;
        if (rows.has(id)) patch(rows.get(id), data.run);
        else insertRow(data.run, true);
        // a status event came while this read was on its way: the answer may predate it
        if ((changes.get(id) || 0) !== seen) pending.add(id);
      } catch (err) {
        if (err.status === 404) {
          removeRow(id);
          rejected.delete(id);
        }
      }
    }));
    if (pending.size) flushPending();
  }, 150);

  function want(id) {
    if (pending.has(id)) return; // already waiting: a new call would only push the read back
    pending.add(id);
    flushPending();
  }

  /** A run we left out: does what this event says bring it into the filters? */
  function reconsider(id, evt) {
    const known = rejected.get(id);
    if (known) {
      Object.assign(known, eventRun(evt));
      if (evt.type === "feedback" && evt.stage !== undefined) known.currentStage = evt.stage;
      if (matches(known)) want(id);
    } else if (matches(eventRun(evt))) {
      want(id);
    }
  }

  function onEvent(evt) {
    if (evt.type === "resync") {
      resync();
      return;
    }
    if (!evt.runId) return;
    const id = Number(evt.runId);
    if (evt.type === "status" || evt.type === "run") changes.set(id, (changes.get(id) || 0) + 1);
    const row = rows.get(id);
    if (evt.type === "feedback") {
      if (row) {
        const change = {
          currentStage: evt.stage, progressCurrent: evt.progressCurrent,
          progressTotal: evt.progressTotal, progressMessage: evt.progressMessage,
        };
        if (evt.status) change.status = evt.status;
        else if (LIVE_STATUSES.has(row.run.status) && row.run.status !== "RUNNING") {
          change.status = "RUNNING";
          want(id); // pick up startedAt
        }
        patch(row, change);
      } else {
        reconsider(id, evt);
      }
      return;
    }
    if (evt.type === "status" || evt.type === "run") {
      if (row) {
        if (evt.status) patch(row, { status: evt.status });
        want(id); // times, attempt, duration
      } else {
        reconsider(id, evt);
      }
    }
  }

  function eventRun(evt) {
    const run = { id: evt.runId };
    if (evt.status) run.status = evt.status;
    if (evt.jobName) run.jobName = evt.jobName;
    if (evt.queue) run.queue = evt.queue;
    if ("tenantId" in evt) run.tenantId = evt.tenantId;
    return run;
  }

  /** After a reconnect or an overflow: refetch the newest page and patch what changed. */
  async function resync() {
    const gen = generation;
    try {
      const data = await api("jobs", { query: { ...queryFor(null),
        limit: Math.min(500, Math.max(PAGE, rows.size)) } });
      if (destroyed || gen !== generation) return;
      const fresh = data.runs || [];
      for (const run of fresh) insertRow(run, true);
      // a shown run missing from the fresh page (within its range) left the filters meanwhile
      const ids = new Set(fresh.map((r) => Number(r.id)));
      const floor = data.nextCursor ? Math.min(...ids) : -Infinity;
      for (const id of [...rows.keys()]) {
        if (id >= floor && !ids.has(id)) {
          rejected.set(id, rows.get(id).run);
          removeRow(id);
        }
      }
      if (!rows.size) nextCursor = data.nextCursor || null;
      updateFoot();
    } catch {
      // the stream will reconnect and ask again
    }
  }

  async function loadLists() {
    try {
      const [registry, queues] = await Promise.all([api("registry"), api("queues")]);
      const jobs = registry.jobs || [];
      clear(jobList).append(...jobs.map((j) => h("option", { value: j.name })));
      const names = Array.isArray(queues.queues) ? queues.queues.map((q) => q.name || q.queue)
        : Object.keys(queues.queues || queues);
      clear(queueList).append(...names.map((n) => h("option", { value: n })));
    } catch {
      // suggestions only
    }
  }

  const unsubscribe = hub.on(onEvent);
  const ticker = setInterval(() => {
    for (const row of rows.values()) if (row.run.status === "RUNNING") updateDuration(row);
  }, 1000);
  const keys = (e) => {
    if (e.key === "/" && !["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName)) {
      e.preventDefault();
      inputs.q.focus();
    }
  };
  document.addEventListener("keydown", keys);
  reload();
  loadLists();

  return {
    destroy() {
      destroyed = true;
      unsubscribe();
      offAuth();
      clearInterval(ticker);
      document.removeEventListener("keydown", keys);
    },
  };
}
