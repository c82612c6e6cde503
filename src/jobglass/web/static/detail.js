// Run detail: the seed's "After" view made real, live over a one-run stream.

import { LiveStream, api, auth } from "./api.js";
import {
  LIVE_STATUSES, clear, debounce, fmtDuration, fmtInt, fmtTime, h, hashFor, parseTime,
  prettyJson, progressBar, setStatusBadge, setText, statusBadge, titleCase,
} from "./dom.js";
import { LogView } from "./logview.js";
import { RateMeter, Timeline, etaText, rateText, setStat } from "./timeline.js";

export function detailPage(root, runId) {
  let run = null;
  let destroyed = false;
  let stream = null;
  const meter = new RateMeter();
  const timeline = new Timeline();
  const logView = new LogView(runId);

  // -- header ----------------------------------------------------------------------------------
  const title = h("h1", null, `Run #${runId}`);
  const badge = statusBadge("");
  const cancelButton = h("button", { type: "button", class: "btn danger admin-only", hidden: true,
    onclick: () => act("cancel") }, "Cancel");
  const retryButton = h("button", { type: "button", class: "btn primary admin-only", hidden: true,
    onclick: () => act("retry") }, "Retry");
  const deleteButton = h("button", { type: "button", class: "btn admin-only", hidden: true,
    onclick: () => remove() }, "Delete");
  const notice = h("div", { class: "notice", hidden: true, role: "status" });
  const head = h("div", { class: "page-head" }, h("a", { href: "#/runs", class: "btn small" },
    "← Runs"), title, badge, h("div", { class: "actions" }, cancelButton, retryButton,
    deleteButton));

  // -- live progress ---------------------------------------------------------------------------
  const stageLine = h("p", { class: "stage-line" });
  const progressMessage = h("p", { class: "progress-message" });
  const bar = progressBar({ large: true });
  const stats = {
    rate: h("span", { class: "stat" }),
    eta: h("span", { class: "stat" }),
    elapsed: h("span", { class: "stat" }),
    attempt: h("span", { class: "stat" }),
  };
  const progressCard = h("section", { class: "card", "aria-label": "Progress" },
    h("div", { class: "muted", text: "Stage" }), stageLine, progressMessage, bar.el,
    h("div", { class: "stats-row" }, Object.values(stats)));

  // -- outcome ---------------------------------------------------------------------------------
  const outcomes = h("div", { class: "outcomes" });
  const summary = h("p", { class: "summary-line", hidden: true });
  const outcomeCard = h("section", { class: "card" }, h("h2", { class: "section-title" },
    "Outcome"), outcomes, summary);

  // -- facts, params, attempts -------------------------------------------------------------------
  const facts = h("dl", { class: "facts" });
  const params = h("pre", { class: "code" });
  const result = h("pre", { class: "code", hidden: true });
  const attempts = h("div");
  const factsCard = h("section", { class: "card" }, h("h2", { class: "section-title" }, "Run"),
    facts);
  const paramsCard = h("section", { class: "card" }, h("h2", { class: "section-title" },
    "Parameters"), params, h("h2", { class: "section-title", hidden: true }, "Result"), result);
  const attemptsCard = h("section", { class: "card", hidden: true },
    h("h2", { class: "section-title" }, "Attempts and errors"), attempts);

  root.append(head, notice,
    h("div", { class: "grid-2" },
      h("div", null, progressCard, outcomeCard, timeline.el),
      h("div", null, factsCard, paramsCard, attemptsCard)),
    logView.el);

  function say(text, isError = false) {
    notice.hidden = !text;
    notice.className = isError ? "notice error" : "notice";
    setText(notice, text);
  }

  // -- rendering ---------------------------------------------------------------------------------
  function applyRun(next) {
    run = { ...(run || {}), ...next };
    document.title = `#${run.id} ${run.jobName} · jobglass`;
    setText(title, `Run #${run.id} · ${run.jobName}`);
    setStatusBadge(badge, run.status);
    renderProgress();
    renderOutcome();
    renderFacts();
    renderParams();
    renderAttempts();
    renderButtons();
    timeline.render(run);
  }

  function renderProgress() {
    const r = run;
    setText(stageLine, r.currentStage || (r.status === "QUEUED" ? "Waiting to start" : "—"));
    setText(progressMessage, r.progressMessage || "");
    bar.set(r.progressCurrent, r.progressTotal, r.entityType, r.status);
    const live = r.status === "RUNNING";
    const start = timeline.stageStart(r.currentStage, r.attempt || 1);
    const rate = live ? meter.rate(r.progressCurrent || 0, start) : averageRate(r);
    setStat(stats.rate, live ? "Rate" : "Average rate", rateText(rate, r.entityType));
    setStat(stats.eta, "ETA", live && r.progressTotal ? etaText(rate, r.progressCurrent || 0,
      r.progressTotal) : "");
    setStat(stats.elapsed, live ? "Elapsed" : "Duration", elapsed(r));
    setStat(stats.attempt, "Attempt", r.maxAttempts > 1 || r.attempt > 1
      ? `${r.attempt} of ${r.maxAttempts}` : "");
  }

  function averageRate(r) {
    const ms = r.durationMs;
    return ms && r.progressCurrent ? r.progressCurrent / (ms / 1000) : null;
  }

  function elapsed(r) {
    if (r.status === "RUNNING" && r.startedAt) return fmtDuration(Date.now() - parseTime(r.startedAt));
    if (r.durationMs !== null && r.durationMs !== undefined) return fmtDuration(r.durationMs);
    return "";
  }

  function renderOutcome() {
    const entries = Object.entries(run.outcomeSummary || {});
    const key = JSON.stringify([entries, run.progressCurrent, run.progressTotal, run.status,
      run.durationMs, run.summary]);
    if (outcomes.dataset.key === key) return;
    outcomes.dataset.key = key;
    clear(outcomes);
    if (run.progressCurrent || run.progressTotal) {
      outcomes.append(outcomeBox("Processed", run.progressTotal && !LIVE_STATUSES.has(run.status)
        ? `${fmtInt(run.progressCurrent)} / ${fmtInt(run.progressTotal)}`
        : fmtInt(run.progressCurrent), "processed"));
    }
    for (const [key, value] of entries) outcomes.append(outcomeBox(titleCase(key), fmtInt(value),
      key.toLowerCase()));
    if (run.durationMs) outcomes.append(outcomeBox("Duration", fmtDuration(run.durationMs), "dur"));
    if (!outcomes.childElementCount) {
      outcomes.append(h("p", { class: "muted", text: "No outcome counters yet." }));
    }
    summary.hidden = !run.summary;
    setText(summary, run.summary || "");
  }

  function outcomeBox(label, value, key) {
    return h("div", { class: `outcome ${key}` }, h("div", { class: "k", text: label }),
      h("div", { class: "v", text: value }));
  }

  function renderFacts() {
    const r = run;
    const rows = [
      ["Job", r.jobName],
      ["Queue", r.queue],
      ["Priority", r.priority],
      ["Trigger", r.trigger],
      ["Scope", r.scope],
      ["Tenant", r.tenantId],
      ["User", r.userId],
      ["Job id", r.jobId],
      ["Schedule", r.scheduleName],
      ["Created", r.createdAt && fmtTime(r.createdAt)],
      ["Run at", r.runAt && r.status === "QUEUED" ? fmtTime(r.runAt) : null],
      ["Started", r.startedAt && fmtTime(r.startedAt)],
      ["Finished", r.finishedAt && fmtTime(r.finishedAt)],
      ["Worker", r.workerId],
      ["Algorithm", r.algorithmVersion],
    ];
    const key = JSON.stringify([rows, r.correlationId, r.cancelRequested, r.status]);
    if (facts.dataset.key === key) return; // unchanged: keep the DOM (and keyboard focus)
    facts.dataset.key = key;
    clear(facts);
    for (const [label, value] of rows) {
      if (value === null || value === undefined || value === "") continue;
      facts.append(h("dt", { text: label }), h("dd", { text: String(value) }));
    }
    if (r.correlationId) {
      const id = r.correlationId;
      const runs = h("a", { class: "mono", href: hashFor("runs", { correlationId: id }),
        title: "All runs with this correlation id", text: id });
      const logs = h("a", { href: hashFor("logs", { correlationId: id }),
        title: "The application logs with this correlation id", text: "logs" });
      facts.append(h("dt", { text: "Correlation id" }), h("dd", null, runs, " · ", logs));
    }
    if (r.cancelRequested && LIVE_STATUSES.has(r.status)) {
      facts.append(h("dt", { text: "Cancel" }), h("dd", { text: "requested; the job will stop" }));
    }
  }

  function renderParams() {
    const p = (run.metadata && run.metadata.params) || {};
    setText(params, Object.keys(p).length ? prettyJson(p) : "(no parameters)");
    const hasResult = run.result !== null && run.result !== undefined;
    result.hidden = !hasResult;
    result.previousElementSibling.hidden = !hasResult;
    if (hasResult) setText(result, prettyJson(run.result));
  }

  function renderAttempts() {
    const errors = run.errors || [];
    attemptsCard.hidden = errors.length === 0;
    const key = JSON.stringify(errors.map((e) => [e.attempt, e.at, e.message]));
    if (attempts.dataset.key === key) return;
    attempts.dataset.key = key;
    clear(attempts);
    for (const err of errors) {
      attempts.append(h("details", { class: "attempt" },
        h("summary", null,
          h("b", { text: `Attempt ${err.attempt ?? "?"}` }), " · ",
          h("span", { class: "error-text", text: `${err.type || "Error"}: ${err.message || ""}` }),
          err.at ? h("span", { class: "muted", text: ` · ${fmtTime(err.at)}` }) : null),
        h("pre", { class: "code", text: err.traceback || "(no traceback)" })));
    }
  }

  function renderButtons() {
    const admin = auth.isAdmin;
    const live = LIVE_STATUSES.has(run.status);
    cancelButton.hidden = !admin || !live;
    cancelButton.disabled = Boolean(run.cancelRequested);
    setText(cancelButton, run.cancelRequested ? "Cancelling…" : "Cancel");
    retryButton.hidden = !admin || !(run.status === "FAILED" || run.status === "CANCELLED");
    deleteButton.hidden = !admin || live;
  }

  // -- actions -------------------------------------------------------------------------------------
  async function act(action) {
    const button = action === "cancel" ? cancelButton : retryButton;
    button.disabled = true;
    try {
      const data = await api(`jobs/${encodeURIComponent(runId)}/${action}`, { method: "POST" });
      if (data && data.run) applyRun(data.run);
      say(action === "cancel" ? "Cancel requested." : "Queued again as a new attempt.");
    } catch (err) {
      say(`Could not ${action}: ${err.message}`, true);
    } finally {
      button.disabled = false;
      renderButtons();
    }
  }

  async function remove() {
    if (!window.confirm(`Delete run #${runId} and its log?`)) return;
    try {
      await api(`jobs/${encodeURIComponent(runId)}`, { method: "DELETE" });
      window.location.hash = "#/runs";
    } catch (err) {
      say(`Could not delete: ${err.message}`, true);
    }
  }

  // -- live -----------------------------------------------------------------------------------------
  const refetch = debounce(async () => {
    try {
      const data = await api(`jobs/${encodeURIComponent(runId)}`);
      if (!destroyed && data.run) applyRun(data.run);
    } catch {
      // the stream's next snapshot will bring it
    }
  }, 200);

  /** After missed events: the log lines and any stage lines among them. */
  function catchUp() {
    logView.catchUp().catch(() => {});
    timeline.load(runId).then(() => run && !destroyed && timeline.render(run)).catch(() => {});
  }

  function onEvent(evt) {
    if (evt.type === "snapshot" || evt.type === "resync") {
      if (evt.run) applyRun(evt.run);
      if (evt.type === "resync") catchUp();
      return;
    }
    if (evt.type === "logs") {
      logView.appendLines(evt.logs);
      if (timeline.add(evt.logs || []) && run) timeline.render(run);
      return;
    }
    if (evt.type === "status") {
      if (run && evt.status) applyRun({ status: evt.status });
      refetch();
      return;
    }
    if (evt.type !== "feedback" || !run) return;
    logView.appendLines(evt.logs);
    if (typeof evt.seq === "number") logView.lastSeq = Math.max(logView.lastSeq, evt.seq);
    const stageChanged = evt.stage && evt.stage !== run.currentStage;
    const added = timeline.add(evt.logs || []);
    if (stageChanged && !added) timeline.noteStage(evt.stage, run.attempt || 1);
    meter.add(evt.progressCurrent || 0, evt.progressTotal, evt.stage);
    const next = {
      currentStage: evt.stage,
      progressCurrent: evt.progressCurrent,
      progressTotal: evt.progressTotal,
      progressMessage: evt.progressMessage,
      outcomeSummary: evt.outcome || run.outcomeSummary,
      summary: evt.summary ?? run.summary,
      hasWarnings: evt.hasWarnings,
    };
    if (evt.status) next.status = evt.status;
    if (next.status && next.status !== run.status) refetch();
    applyRun(next);
  }

  function openStream() {
    if (stream) stream.stop();
    stream = new LiveStream({
      runId,
      level: logView.minLevel,
      after: () => logView.lastSeq,
      onEvent,
      onGap: () => {
        refetch();
        catchUp();
      },
      onRefused: (code, reason) => {
        say(code === 4404 ? `Run #${runId} no longer exists.` : `Live updates refused: ${reason}`,
          true);
      },
    }).start();
  }

  logView.onLevel = () => openStream();

  async function start() {
    try {
      const data = await api(`jobs/${encodeURIComponent(runId)}`);
      if (destroyed) return;
      applyRun(data.run);
      // In this order: the stream resumes after the log view's last line, so the timeline
      // must hold every stage line up to it (loaded in parallel, a line could fall between).
      await logView.load(data.run.logSeq);
      await timeline.load(runId);
      if (destroyed) return;
      timeline.render(run);
      openStream();
    } catch (err) {
      if (err.status === 404) say(`Run #${runId} does not exist (it may have been pruned).`, true);
      else say(`Could not load run #${runId}: ${err.message}`, true);
    }
  }

  const ticker = setInterval(() => {
    if (run && run.status === "RUNNING") {
      renderProgress();
      timeline.render(run);
    }
  }, 1000);
  const offAuth = auth.onChange(() => run && renderButtons());
  start();

  return {
    logLines: () => logView.lines,
    destroy() {
      destroyed = true;
      clearInterval(ticker);
      offAuth();
      if (stream) stream.stop();
      logView.destroy();
    },
  };
}
