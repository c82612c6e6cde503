// A virtualized, paged, live log: only the rows in view exist in the DOM, pages are
// fetched with `after=` (the per-run sequence number), new lines stream in at the tail.

import { api } from "./api.js";
import { clear, fmtClock, fmtInt, h, normalizeLog, prettyJson, setText } from "./dom.js";

const ROW_HEIGHT = 22;
const PAGE = 2000;
const OVERSCAN = 12;
const LEVELS = ["debug", "info", "milestone", "warning", "error"];

export class LogView {
  constructor(runId) {
    this.runId = runId;
    this.lines = []; // loaded lines, ascending seq, filtered by minLevel
    this.minLevel = "info";
    this.follow = true;
    this.atStart = false;
    this.loadingEarlier = false;
    this.lastSeq = 0; // highest seq seen (any level)
    this.unseen = 0;
    this.selected = -1;
    this.pool = [];
    this.frame = 0;
    this.generation = 0;
    this.programmaticScroll = false;
    this.onLevel = null; // called after the level changes (the stream must follow)
    this.build();
  }

  build() {
    this.levelSelect = h(
      "select",
      { "aria-label": "Lowest log level shown", class: "level-select",
        onchange: () => this.setLevel(this.levelSelect.value) },
      h("option", { value: "debug", text: "All (with debug)" }),
      h("option", { value: "info", text: "Info and above", selected: true }),
      h("option", { value: "milestone", text: "Milestones and above" }),
      h("option", { value: "warning", text: "Warnings and errors" }),
      h("option", { value: "error", text: "Errors only" }),
    );
    this.followButton = h("button", { type: "button", class: "btn small", "aria-pressed": "true",
      onclick: () => this.setFollow(!this.follow) }, "Pause");
    this.countLabel = h("span", { class: "muted log-count", "aria-live": "off" });
    this.toolbar = h("div", { class: "log-toolbar" },
      h("h2", { class: "section-title" }, "Live log"), this.levelSelect, this.followButton,
      this.countLabel);
    this.spacer = h("div", { class: "log-spacer" });
    this.rows = h("div", { class: "log-rows" });
    this.banner = h("div", { class: "log-banner", hidden: true });
    this.viewport = h("div", {
      class: "log-viewport", tabindex: "0", role: "region",
      "aria-label": "Run log: arrow keys move, Enter shows context, End follows the tail",
      onscroll: () => this.onScroll(), onkeydown: (e) => this.onKey(e),
    }, this.spacer, this.rows);
    this.rows.addEventListener("click", (e) => {
      const row = e.target.closest(".log-row");
      if (row && row.dataset.index) this.select(Number(row.dataset.index), true);
    });
    this.resume = h("button", { type: "button", class: "btn small resume", hidden: true,
      onclick: () => this.setFollow(true) }, "");
    this.detail = h("div", { class: "log-detail", hidden: true });
    this.el = h("section", { class: "card log-card" }, this.toolbar, this.banner,
      h("div", { class: "log-frame" }, this.viewport, this.resume), this.detail);
    this.resizer = new ResizeObserver(() => this.render());
    this.resizer.observe(this.viewport);
  }

  destroy() {
    this.generation += 1;
    this.resizer.disconnect();
    if (this.frame) cancelAnimationFrame(this.frame);
  }

  // -- loading --------------------------------------------------------------------------------

  /** Load the tail first (that is what a live view shows), earlier pages as the user scrolls. */
  async load(logSeq) {
    const gen = ++this.generation;
    this.lines = [];
    this.atStart = false;
    this.selected = -1;
    this.detail.hidden = true;
    this.lastSeq = Math.max(this.lastSeq, logSeq || 0);
    const after = Math.max(0, this.lastSeq - PAGE);
    const lines = await this.fetchAfter(after, PAGE + 100);
    if (gen !== this.generation) return;
    this.lines = lines;
    if (after === 0) this.atStart = true;
    this.noteSeq(lines);
    await this.catchUp(gen);
    // a filtered view may hold few lines in the last page: fill the screen from earlier pages
    for (let i = 0; i < 4 && !this.atStart && this.lines.length < 200; i++) {
      await this.loadEarlier(gen);
    }
    if (gen !== this.generation) return;
    this.render(true);
  }

  async fetchAfter(after, limit = PAGE) {
    const data = await api(`jobs/${encodeURIComponent(this.runId)}/logs`, {
      query: { level: this.minLevel, limit, after },
    });
    return (data.logs || []).map(normalizeLog);
  }

  /** Fetch everything after the newest loaded line (after a reconnect or an overflow). */
  async catchUp(gen = this.generation) {
    for (let i = 0; i < 50; i++) {
      const last = this.lines.length ? this.lines[this.lines.length - 1].seq : this.baseSeq();
      const more = await this.fetchAfter(last);
      if (gen !== this.generation) return;
      this.appendLines(more, false);
      if (more.length < PAGE) break;
    }
    this.render(true);
  }

  baseSeq() {
    return Math.max(0, this.lastSeq - PAGE);
  }

  async loadEarlier(gen = this.generation) {
    if (this.atStart || this.loadingEarlier) return;
    this.loadingEarlier = true;
    try {
      const first = this.lines.length ? this.lines[0].seq : this.lastSeq + 1;
      const after = Math.max(0, first - 1 - PAGE);
      const page = (await this.fetchAfter(after)).filter((l) => l.seq < first);
      if (gen !== this.generation) return;
      if (after === 0) this.atStart = true;
      if (page.length) {
        this.lines = page.concat(this.lines);
        if (this.selected >= 0) this.selected += page.length;
        this.scrollBy(page.length * ROW_HEIGHT);
      }
    } finally {
      this.loadingEarlier = false;
    }
    this.render();
  }

  noteSeq(lines) {
    for (const line of lines) if (line.seq > this.lastSeq) this.lastSeq = line.seq;
  }

  /** New lines from the stream (or a catch-up page); older or duplicate seqs are dropped. */
  appendLines(lines, render = true) {
    if (!lines || !lines.length) return;
    lines.forEach(normalizeLog);
    this.noteSeq(lines);
    const rank = LEVELS.indexOf(this.minLevel);
    let last = this.lines.length ? this.lines[this.lines.length - 1].seq : this.baseSeq();
    let added = 0;
    for (const line of lines) {
      if (line.seq <= last) continue;
      if (LEVELS.indexOf(line.level) < rank) continue;
      this.lines.push(line);
      last = line.seq;
      added += 1;
    }
    if (!added) return;
    if (!this.follow) this.unseen += added;
    if (render) this.scheduleRender();
  }

  setLevel(level) {
    this.minLevel = level;
    this.load(this.lastSeq).catch((err) => this.showError(err));
    if (this.onLevel) this.onLevel(level);
  }

  showError(err) {
    this.banner.hidden = false;
    setText(this.banner, `Could not load the log: ${err.message}`);
  }

  // -- follow / scroll ------------------------------------------------------------------------

  setFollow(on) {
    this.follow = on;
    this.unseen = 0;
    this.followButton.setAttribute("aria-pressed", on ? "true" : "false");
    setText(this.followButton, on ? "Pause" : "Follow");
    if (on) this.render(true);
    else this.updateResume();
  }

  scrollBy(dy) {
    this.programmaticScroll = true;
    this.spacer.style.height = `${this.lines.length * ROW_HEIGHT}px`;
    this.viewport.scrollTop += dy;
  }

  onScroll() {
    if (this.programmaticScroll) {
      this.programmaticScroll = false;
    } else {
      const bottom = this.viewport.scrollHeight - this.viewport.clientHeight;
      const atBottom = this.viewport.scrollTop >= bottom - ROW_HEIGHT;
      if (this.follow && !atBottom) this.setFollow(false);
      else if (!this.follow && atBottom && this.unseen === 0) this.setFollow(true);
    }
    if (this.viewport.scrollTop < ROW_HEIGHT * 20 && !this.atStart) {
      this.loadEarlier().catch((err) => this.showError(err));
    }
    this.scheduleRender();
  }

  onKey(e) {
    const page = Math.max(1, Math.floor(this.viewport.clientHeight / ROW_HEIGHT) - 1);
    const keys = {
      ArrowDown: () => this.select(Math.min(this.lines.length - 1, this.selected + 1)),
      ArrowUp: () => this.select(Math.max(0, this.selected < 0 ? this.lines.length - 1
        : this.selected - 1)),
      PageDown: () => this.select(Math.min(this.lines.length - 1, this.selected + page)),
      PageUp: () => this.select(Math.max(0, this.selected - page)),
      Home: () => this.select(0),
      End: () => this.setFollow(true),
      Enter: () => this.toggleDetail(),
      " ": () => this.toggleDetail(),
      Escape: () => { this.detail.hidden = true; },
    };
    const fn = keys[e.key];
    if (!fn || !this.lines.length && e.key !== "End") return;
    e.preventDefault();
    fn();
  }

  select(index, show = false) {
    if (index < 0 || index >= this.lines.length) return;
    this.selected = index;
    if (this.follow && index < this.lines.length - 1) this.setFollow(false);
    const top = index * ROW_HEIGHT;
    const vp = this.viewport;
    if (top < vp.scrollTop) {
      this.programmaticScroll = true;
      vp.scrollTop = top;
    } else if (top + ROW_HEIGHT > vp.scrollTop + vp.clientHeight) {
      this.programmaticScroll = true;
      vp.scrollTop = top + ROW_HEIGHT - vp.clientHeight;
    }
    if (show || !this.detail.hidden) this.showDetail(this.lines[index]);
    this.render();
  }

  toggleDetail() {
    if (this.selected < 0) return;
    if (this.detail.hidden) this.showDetail(this.lines[this.selected]);
    else this.detail.hidden = true;
  }

  showDetail(line) {
    clear(this.detail);
    const ctx = line.context && Object.keys(line.context).length ? prettyJson(line.context) : null;
    this.detail.append(
      h("div", { class: "log-detail-head" },
        h("span", { class: `lvl lvl-${line.level}`, text: line.level.toUpperCase() }),
        h("span", { class: "muted", text: `#${fmtInt(line.seq)} · ${fmtClock(line.createdAt)}` +
          `${line.stage ? ` · ${line.stage}` : ""}` +
          `${line.attempt ? ` · attempt ${line.attempt}` : ""}` }),
        h("button", { type: "button", class: "btn small", onclick: () => {
          this.detail.hidden = true;
          this.viewport.focus();
        } }, "Close")),
      h("p", { class: "log-detail-message", text: line.message }),
      ctx ? h("pre", { class: "code", text: ctx }) : h("p", { class: "muted", text: "No context." }),
    );
    this.detail.hidden = false;
    this.detail.scrollIntoView({ block: "nearest" });
  }

  // -- rendering ------------------------------------------------------------------------------

  scheduleRender() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  updateResume() {
    this.resume.hidden = this.follow;
    const lines = this.unseen === 1 ? "line" : "lines";
    setText(this.resume, this.unseen ? `${fmtInt(this.unseen)} new ${lines} · Follow` : "Follow");
  }

  render(toBottom = false) {
    const vp = this.viewport;
    const total = this.lines.length;
    const height = total * ROW_HEIGHT;
    if (this.spacer.style.height !== `${height}px`) this.spacer.style.height = `${height}px`;
    if (this.follow || toBottom && this.follow) {
      const bottom = Math.max(0, height - vp.clientHeight);
      if (Math.abs(vp.scrollTop - bottom) > 1) {
        this.programmaticScroll = true;
        vp.scrollTop = bottom;
      }
    }
    const first = Math.max(0, Math.floor(vp.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const count = Math.min(total - first, Math.ceil(vp.clientHeight / ROW_HEIGHT) + OVERSCAN * 2);
    while (this.pool.length < count) this.pool.push(this.makeRow());
    for (let i = 0; i < this.pool.length; i++) {
      const row = this.pool[i];
      if (i >= count) {
        if (row.el.parentNode) row.el.remove();
        continue;
      }
      const index = first + i;
      this.fillRow(row, this.lines[index], index);
      if (!row.el.parentNode) this.rows.appendChild(row.el);
    }
    this.updateResume();
    const more = this.atStart ? "" : " (scroll up for earlier lines)";
    setText(this.countLabel, `${fmtInt(total)} lines loaded${more}`);
    if (!total) {
      this.banner.hidden = false;
      setText(this.banner, "No log lines at this level yet.");
    } else if (this.banner.textContent.startsWith("No log lines")) {
      this.banner.hidden = true;
    }
  }

  makeRow() {
    const time = h("span", { class: "log-time" });
    const level = h("span", { class: "lvl" });
    const stage = h("span", { class: "log-stage" });
    const msg = h("span", { class: "log-msg" });
    const ctx = h("span", { class: "log-ctx", title: "has context: Enter or click to show" });
    const el = h("div", { class: "log-row" }, time, level, stage, msg, ctx);
    return { el, time, level, stage, msg, ctx, seq: -1, selected: false };
  }

  fillRow(row, line, index) {
    row.el.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
    row.el.dataset.index = String(index);
    const selected = index === this.selected;
    if (row.seq !== line.seq) {
      row.seq = line.seq;
      row.el.className = `log-row level-${line.level}`;
      setText(row.time, fmtClock(line.createdAt));
      setText(row.level, line.level.toUpperCase());
      row.level.className = `lvl lvl-${line.level}`;
      setText(row.stage, line.stage || "");
      setText(row.msg, line.message);
      const hasCtx = line.context && Object.keys(line.context).length > 0;
      setText(row.ctx, hasCtx ? compactJson(line.context) : "");
      row.selected = !selected;
    }
    if (row.selected !== selected) {
      row.selected = selected;
      row.el.classList.toggle("selected", selected);
    }
  }
}

function compactJson(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return text.length > 160 ? `${text.slice(0, 157)}…` : text;
}
