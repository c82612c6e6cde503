// Logs: the application's own log lines and audit events (`/logs`, `/audit`), newest first,
// filtered by the indexed fields, paged back with the cursor. Data only via textContent.

import { api } from "./api.js";
import { clear, debounce, fmtTime, h, hashFor, prettyJson, setText } from "./dom.js";

const PAGE = 100;
const LEVELS = ["debug", "info", "warning", "error"];
const KINDS = { logs: "Application logs", audit: "Audit events" };
// filter -> which kinds it applies to
const FILTERS = {
  level: ["logs"],
  action: ["audit"],
  resource: ["audit"],
  userId: ["logs", "audit"],
  correlationId: ["logs", "audit"],
  sourceKey: ["logs", "audit"],
  recordKey: ["logs", "audit"],
  since: ["logs", "audit"],
  until: ["logs", "audit"],
};

/** "2025-01-02T03:04" (local, from datetime-local) -> ISO-8601 in UTC, or "" */
function toIso(local) {
  if (!local) return "";
  const t = Date.parse(local);
  return Number.isNaN(t) ? "" : new Date(t).toISOString();
}

function compact(value) {
  if (value === null || value === undefined) return "";
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

export function logsPage(root, query) {
  const state = { kind: query.get("kind") === "audit" ? "audit" : "logs" };
  const filters = {};
  for (const key of Object.keys(FILTERS)) filters[key] = query.get(key) || "";
  let nextCursor = null;
  let generation = 0;
  let destroyed = false;
  let count = 0;

  // -- kind toggle --------------------------------------------------------------------------
  const kindButtons = {};
  for (const [kind, label] of Object.entries(KINDS)) {
    kindButtons[kind] = h("button", { type: "button", class: "btn small", dataset: { kind },
      onclick: () => setKind(kind) }, label);
  }
  const toggle = h("div", { class: "segmented", role: "group", "aria-label": "Show" },
    Object.values(kindButtons));

  // -- filters ------------------------------------------------------------------------------
  const levelSelect = h("select", { id: "lf-level", name: "level" },
    h("option", { value: "", text: "Any" }),
    LEVELS.map((l) => h("option", { value: l, text: l, selected: filters.level === l })));
  const text = (id, key, placeholder = "any", cls = null) =>
    h("input", { id, name: key, class: cls, value: filters[key], placeholder, spellcheck: "false" });
  const inputs = {
    action: text("lf-action", "action", "post.created"),
    resource: text("lf-resource", "resource", "posts"),
    userId: text("lf-user", "userId"),
    correlationId: text("lf-correlation", "correlationId", "any", "wide"),
    sourceKey: text("lf-source", "sourceKey"),
    recordKey: text("lf-record", "recordKey"),
    since: h("input", { id: "lf-since", name: "since", type: "datetime-local", step: "1" }),
    until: h("input", { id: "lf-until", name: "until", type: "datetime-local", step: "1" }),
  };
  // the hash keeps ISO times; the inputs show them in local time
  for (const key of ["since", "until"]) {
    const t = Date.parse(filters[key]);
    if (!Number.isNaN(t)) {
      const d = new Date(t - new Date(t).getTimezoneOffset() * 60000);
      inputs[key].value = d.toISOString().slice(0, 19);
    }
  }
  const labels = {
    level: h("label", { for: "lf-level" }, "Level", levelSelect),
    action: h("label", { for: "lf-action" }, "Action", inputs.action),
    resource: h("label", { for: "lf-resource" }, "Resource", inputs.resource),
    userId: h("label", { for: "lf-user" }, "User id", inputs.userId),
    correlationId: h("label", { for: "lf-correlation" }, "Correlation id", inputs.correlationId),
    sourceKey: h("label", { for: "lf-source" }, "Source key", inputs.sourceKey),
    recordKey: h("label", { for: "lf-record" }, "Record key", inputs.recordKey),
    since: h("label", { for: "lf-since" }, "Since", inputs.since),
    until: h("label", { for: "lf-until" }, "Until", inputs.until),
  };

  function readFilters() {
    filters.level = levelSelect.value;
    for (const [key, input] of Object.entries(inputs)) {
      filters[key] = key === "since" || key === "until" ? toIso(input.value) : input.value.trim();
    }
  }

  function writeHash() {
    const q = { kind: state.kind === "audit" ? "audit" : "" };
    for (const [key, kinds] of Object.entries(FILTERS)) {
      if (kinds.includes(state.kind)) q[key] = filters[key];
    }
    window.history.replaceState(null, "", hashFor("logs", q));
  }

  // `change` fires again on blur: a query that did not change keeps the rows (and open details)
  let shownKey = "";
  const apply = () => {
    readFilters();
    writeHash();
    if (JSON.stringify([state.kind, queryFor(null)]) !== shownKey) reload();
  };
  const applySoon = debounce(apply, 350);
  levelSelect.addEventListener("change", apply);
  for (const input of Object.values(inputs)) {
    input.addEventListener("input", applySoon);
    input.addEventListener("change", apply);
  }
  const clearButton = h("button", { type: "button", class: "btn small", onclick: () => {
    levelSelect.value = "";
    for (const input of Object.values(inputs)) input.value = "";
    apply();
  } }, "Clear filters");
  const filterBar = h("form", { class: "filters", role: "search", "aria-label": "Filter logs",
    onsubmit: (e) => { e.preventDefault(); apply(); } },
  Object.values(labels), clearButton);

  // -- table --------------------------------------------------------------------------------
  const headRow = h("tr");
  const tbody = h("tbody");
  const table = h("table", { class: "data logs-table" },
    h("caption", { class: "muted", hidden: true, text: "Newest first" }),
    h("thead", null, headRow), tbody);
  const countLabel = h("span", { class: "muted" });
  const moreButton = h("button", { type: "button", class: "btn", hidden: true,
    onclick: () => load(nextCursor) }, "Load older");
  const message = h("div", { class: "notice", hidden: true });
  root.append(
    h("div", { class: "page-head" }, h("h1", null, "Logs"), toggle),
    filterBar, message,
    h("div", { class: "table-wrap" }, table),
    h("div", { class: "table-foot" }, moreButton, countLabel),
  );

  function showMessage(textValue, isError = false) {
    message.hidden = !textValue;
    message.className = isError ? "notice error" : "notice";
    setText(message, textValue);
  }

  function headers() {
    const second = state.kind === "audit" ? ["Action", "Resource"] : ["Level"];
    const msg = state.kind === "audit" ? "Data" : "Message";
    return ["Time", ...second, msg, "User", "Correlation id", "IP", "Path"];
  }

  function renderKind() {
    for (const [kind, button] of Object.entries(kindButtons)) {
      button.setAttribute("aria-pressed", String(kind === state.kind));
      button.classList.toggle("primary", kind === state.kind);
    }
    for (const [key, kinds] of Object.entries(FILTERS)) {
      labels[key].hidden = !kinds.includes(state.kind);
    }
    clear(headRow);
    for (const t of headers()) headRow.append(h("th", { scope: "col", text: t }));
  }

  function setKind(kind) {
    if (kind === state.kind) return;
    state.kind = kind;
    renderKind();
    readFilters();
    writeHash();
    reload();
  }

  function queryFor(cursor) {
    const q = { limit: PAGE };
    for (const [key, kinds] of Object.entries(FILTERS)) {
      if (kinds.includes(state.kind) && filters[key]) q[key] = filters[key];
    }
    if (cursor) q.beforeId = cursor;
    return q;
  }

  function cell(value, cls) {
    return h("td", { class: cls || null, text: value ?? "", title: value ? String(value) : null });
  }

  function correlationCell(id) {
    if (!id) return h("td");
    const link = h("a", { href: hashFor("runs", { correlationId: id }), class: "mono",
      title: "Runs with this correlation id", text: id,
      onclick: (e) => e.stopPropagation() });
    return h("td", null, link);
  }

  function toggleDetail(tr, record) {
    const next = tr.nextElementSibling;
    if (next && next.classList.contains("applog-context")) {
      next.remove();
      tr.setAttribute("aria-expanded", "false");
      return;
    }
    const full = { ...record };
    const pre = h("pre", { class: "code", text: prettyJson(full) });
    const detail = h("tr", { class: "applog-context" },
      h("td", { colspan: String(headers().length) }, pre));
    tr.after(detail);
    tr.setAttribute("aria-expanded", "true");
  }

  function rowFor(record) {
    const cells = [cell(fmtTime(record.timestamp), "mono")];
    if (state.kind === "audit") {
      cells.push(cell(record.action, "mono"), cell(record.resource));
      cells.push(cell(compact(record.data), "applog-msg mono"));
    } else {
      const level = record.level || "";
      cells.push(h("td", null, h("span", { class: `lvl lvl-${level}`, text: level })));
      cells.push(cell(record.message, "applog-msg"));
    }
    cells.push(cell(record.userId), correlationCell(record.correlationId),
      cell(record.ipAddress, "mono"), cell(record.path, "mono"));
    const tr = h("tr", { class: "clickable", tabindex: "0", "aria-expanded": "false",
      dataset: { id: record.id || "" } }, cells);
    tr.querySelector("td").setAttribute("title", record.timestamp || "");
    tr.addEventListener("click", () => toggleDetail(tr, record));
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && e.target === tr) {
        e.preventDefault();
        toggleDetail(tr, record);
      }
    });
    return tr;
  }

  async function load(cursor) {
    const gen = cursor ? generation : ++generation;
    const kind = state.kind;
    moreButton.disabled = true;
    try {
      const data = await api(kind === "audit" ? "audit" : "logs", { query: queryFor(cursor) });
      if (gen !== generation || destroyed || kind !== state.kind) return;
      if (!cursor) {
        clear(tbody);
        count = 0;
      }
      const records = (kind === "audit" ? data.events : data.logs) || [];
      for (const record of records) tbody.append(rowFor(record));
      count += records.length;
      nextCursor = data.nextCursor || null;
      showMessage(count ? "" : `No ${kind === "audit" ? "audit events" : "log lines"} match `
        + "these filters.");
    } catch (err) {
      if (gen === generation) shownKey = ""; // the same query may be retried
      if (gen === generation && !destroyed) showMessage(`Could not load: ${err.message}`, true);
    } finally {
      if (gen === generation) {
        moreButton.disabled = false;
        moreButton.hidden = !nextCursor;
        setText(countLabel, count ? `${count} shown, newest first` : "");
      }
    }
  }

  function reload() {
    shownKey = JSON.stringify([state.kind, queryFor(null)]);
    nextCursor = null;
    return load(null);
  }

  renderKind();
  reload();

  return {
    destroy() {
      destroyed = true;
    },
    reload,
  };
}
