// Stage timeline (from the `Starting: <stage>` milestone lines) and the progress rate / ETA.

import { api } from "./api.js";
import { clear, fmtDuration, fmtNum, fmtTime, h, normalizeLog, parseTime } from "./dom.js";

const STARTING = "Starting: ";

export function isStageLine(line) {
  return line.level === "milestone" && typeof line.message === "string"
    && line.message.startsWith(STARTING);
}

/** The stages of the run's latest attempt, and how long each took. */
export class Timeline {
  constructor() {
    this.entries = []; // {stage, at, attempt, seq}
    this.attempt = 1;
    this.list = h("ol", { class: "timeline", "aria-label": "Stages" });
    this.empty = h("p", { class: "muted", text: "No stages yet." });
    this.el = h("section", { class: "card" }, h("h2", { class: "section-title" }, "Stages"),
      this.empty, this.list);
    this.seen = new Set();
    this.errors = []; // run.errors: their times mark where each attempt ended
  }

  /** The attempt a line belongs to: its own field, else counted from the failed attempts. */
  attemptOf(line) {
    if (line.attempt) return line.attempt;
    const t = parseTime(line.createdAt);
    let attempt = 1;
    for (const err of this.errors) {
      const end = parseTime(err.at);
      if (end !== null && t !== null && end <= t) attempt = Math.max(attempt, (err.attempt || 0) + 1);
    }
    return attempt;
  }

  setErrors(errors) {
    const list = errors || [];
    if (list.length === this.errors.length) return;
    this.errors = list;
    for (const e of this.entries) if (!e.ownAttempt) e.attempt = this.attemptOf(e.line);
  }

  /** Read every stage line of the run (milestones are few: a handful of pages at most). */
  async load(runId) {
    let after = 0;
    const found = [];
    for (let page = 0; page < 20; page++) {
      const data = await api(`jobs/${encodeURIComponent(runId)}/logs`,
        { query: { level: "milestone", limit: 2000, after } });
      const logs = (data.logs || []).map(normalizeLog);
      for (const line of logs) if (isStageLine(line)) found.push(line);
      if (logs.length < 2000) break;
      after = logs[logs.length - 1].seq;
    }
    this.add(found);
  }

  add(lines) {
    let added = false;
    for (const line of lines) {
      normalizeLog(line);
      if (!isStageLine(line) || this.seen.has(line.seq)) continue;
      this.seen.add(line.seq);
      this.entries.push({
        stage: line.stage || line.message.slice(STARTING.length),
        at: parseTime(line.createdAt),
        attempt: this.attemptOf(line),
        ownAttempt: Boolean(line.attempt),
        seq: line.seq,
        line: { createdAt: line.createdAt },
      });
      added = true;
    }
    if (added) this.entries.sort((a, b) => a.seq - b.seq);
    return added;
  }

  /** A stage change seen in a progress event before (or without) its milestone line. */
  noteStage(stage, attempt) {
    if (!stage) return;
    const current = this.current(attempt);
    if (current.length && current[current.length - 1].stage === stage) return;
    this.entries.push({ stage, at: Date.now(), attempt, seq: Infinity, provisional: true,
      ownAttempt: true });
  }

  current(attempt) {
    return this.entries.filter((e) => e.attempt === attempt);
  }

  stageStart(stage, attempt) {
    const list = this.current(attempt);
    const last = list[list.length - 1];
    return last && last.stage === stage ? last.at : null;
  }

  render(run) {
    this.setErrors(run.errors);
    const attempt = run.attempt || 1;
    // provisional entries are replaced once their milestone line arrives
    this.entries = this.entries.filter((e) => !e.provisional
      || !this.entries.some((o) => !o.provisional && o.stage === e.stage
        && o.attempt === e.attempt));
    const list = this.current(attempt);
    const endAt = parseTime(run.finishedAt);
    const live = run.status === "RUNNING";
    const now = Date.now();
    const spans = list.map((e, i) => {
      const next = list[i + 1];
      const end = next ? next.at : (live ? now : endAt);
      return { ...e, ms: end && e.at ? Math.max(0, end - e.at) : null, last: !next };
    });
    const longest = Math.max(1, ...spans.map((s) => s.ms || 0));
    clear(this.list);
    this.empty.hidden = spans.length > 0;
    for (const s of spans) {
      const cls = s.last && live ? "current" : (s.last && run.status === "FAILED" ? "failed" : "");
      const bar = h("div", { class: "bar" });
      bar.style.width = `${Math.max(2, Math.round(((s.ms || 0) / longest) * 100))}%`;
      this.list.append(h("li", { class: cls },
        h("span", { class: "dot", "aria-hidden": "true" }),
        h("div", null, h("div", { text: s.stage }),
          h("div", { class: "muted", text: s.at ? `started ${fmtTime(s.at)}` : "" }), bar),
        h("span", { class: "dur", text: s.ms === null ? "" :
          `${fmtDuration(s.ms)}${s.last && live ? " so far" : ""}` })));
    }
    if (attempt > 1 && this.entries.some((e) => e.attempt < attempt)) {
      this.list.append(h("li", { class: "muted" }, h("span"),
        h("span", { text: `Stages of attempt ${attempt}; earlier attempts are in the log.` }),
        h("span")));
    }
  }
}

/** Items per second over the last ~30 s of progress events; resets on a new stage or total. */
export class RateMeter {
  constructor() {
    this.samples = [];
    this.key = "";
  }

  add(current, total, stage) {
    const key = `${stage}|${total}`;
    if (key !== this.key) {
      this.key = key;
      this.samples = [];
    }
    const now = Date.now();
    const last = this.samples[this.samples.length - 1];
    if (last && last.current === current) return;
    this.samples.push({ t: now, current });
    while (this.samples.length > 2 && now - this.samples[0].t > 30000) this.samples.shift();
  }

  /** items/s, or null; falls back to the average since the stage started. */
  rate(current, stageStart) {
    const s = this.samples;
    if (s.length >= 2) {
      const dt = (s[s.length - 1].t - s[0].t) / 1000;
      if (dt >= 1) return (s[s.length - 1].current - s[0].current) / dt;
    }
    if (stageStart && current > 0) {
      const dt = (Date.now() - stageStart) / 1000;
      if (dt >= 1) return current / dt;
    }
    return null;
  }
}

export function rateText(rate, unit) {
  if (rate === null || !Number.isFinite(rate) || rate <= 0) return "";
  const per = rate >= 1 ? `${fmtNum(rate)} ${unit || "items"}/s`
    : `${fmtNum(rate * 60)} ${unit || "items"}/min`;
  return per;
}

export function etaText(rate, current, total) {
  if (!rate || rate <= 0 || !total || current >= total) return "";
  return `about ${fmtDuration(((total - current) / rate) * 1000)} left`;
}

export function setStat(el, label, value) {
  el.hidden = !value;
  if (el.dataset.value === (value || "")) return;
  el.dataset.value = value || "";
  clear(el).append(h("span", { class: "muted", text: `${label} ` }), h("b", { text: value || "" }));
}
