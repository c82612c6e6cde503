// Schedules: next and last fire, the last run's status; pause, resume and trigger now.

import { api, auth } from "./api.js";
import { clear, fmtAgo, fmtTime, h, setText, statusBadge } from "./dom.js";
import { hub } from "./hub.js";

export function schedulesPage(root) {
  let destroyed = false;
  let schedules = [];
  const tbody = h("tbody");
  const headers = ["Schedule", "Job", "When", "State", "Next fire", "Last fire", "Last run", ""];
  const table = h("table", { class: "data" },
    h("thead", null, h("tr", null, headers.map((t) => h("th", { scope: "col", text: t })))),
    tbody);
  const message = h("div", { class: "notice", hidden: true, role: "status" });
  root.append(h("div", { class: "page-head" }, h("h1", null, "Schedules")), message,
    h("div", { class: "table-wrap" }, table));

  function say(text, isError = false) {
    message.hidden = !text;
    message.className = isError ? "notice error" : "notice";
    setText(message, text);
  }

  async function load() {
    try {
      const data = await api("schedules");
      if (destroyed) return;
      schedules = Array.isArray(data) ? data : data.schedules || [];
      render();
    } catch (err) {
      say(`Could not load schedules: ${err.message}`, true);
    }
  }

  let agos = []; // [element, iso] pairs refreshed every second
  function tick() {
    const now = Date.now();
    for (const [el, iso] of agos) setText(el, fmtAgo(iso, now));
  }

  function render() {
    // keep keyboard focus on the same button across a re-render
    const focused = document.activeElement && tbody.contains(document.activeElement)
      ? document.activeElement.dataset.key : null;
    agos = [];
    clear(tbody);
    if (!schedules.length) {
      tbody.append(h("tr", null, h("td", { colspan: String(headers.length), class: "muted",
        text: "No schedules. Give a job schedule=\"0 */15 * * * ?\" or add one to jobglass.toml." })));
      return;
    }
    const ago = (iso) => {
      const el = h("div", { class: "muted" });
      agos.push([el, iso]);
      return el;
    };
    for (const s of schedules) {
      const state = !s.enabled ? "DISABLED" : s.paused ? "PAUSED" : "ACTIVE";
      const when = h("td", null, h("div", { class: "mono", text: s.cron ||
        (s.everySeconds ? `every ${s.everySeconds}s` : "") }),
      s.humanReadable ? h("div", { class: "muted", text: s.humanReadable }) : null);
      const lastRun = s.lastRunId
        ? h("td", null, h("a", { href: `#/runs/${encodeURIComponent(s.lastRunId)}`,
          text: `#${s.lastRunId}` }), " ", s.lastRunStatus ? statusBadge(s.lastRunStatus) : null)
        : h("td", { class: "muted", text: "never ran" });
      const actions = h("td", { class: "admin-only" });
      if (auth.isAdmin) {
        actions.append(
          s.paused
            ? h("button", { type: "button", class: "btn small", onclick: () => act(s, "resume"),
              dataset: { key: `${s.name}|toggle` } }, "Resume")
            : h("button", { type: "button", class: "btn small", onclick: () => act(s, "pause"),
              disabled: !s.enabled, dataset: { key: `${s.name}|toggle` } }, "Pause"),
          " ",
          h("button", { type: "button", class: "btn small primary",
            onclick: () => act(s, "trigger"), dataset: { key: `${s.name}|trigger` } },
          "Trigger now"));
      }
      tbody.append(h("tr", null,
        h("td", null, h("div", { text: s.name }),
          s.description ? h("div", { class: "muted", text: s.description }) : null),
        h("td", null, h("a", { href: `#/runs?job=${encodeURIComponent(s.jobName)}`,
          text: s.jobName })),
        when,
        h("td", null, statusBadge(state)),
        h("td", null, h("div", { text: s.nextFireAt && !s.paused ? fmtTime(s.nextFireAt) : "—" }),
          s.nextFireAt && !s.paused ? ago(s.nextFireAt) : null),
        h("td", null, h("div", { text: s.lastFireAt ? fmtTime(s.lastFireAt) : "—" }),
          s.lastFireAt ? ago(s.lastFireAt) : null),
        lastRun,
        actions));
    }
    tick();
    if (focused) {
      const again = [...tbody.querySelectorAll("button")].find((b) => b.dataset.key === focused);
      if (again) again.focus();
    }
  }

  async function act(s, action) {
    try {
      const data = await api(`schedules/${encodeURIComponent(s.name)}/${action}`,
        { method: "POST" });
      if (action === "trigger") {
        const run = data && data.run;
        say(run ? `Triggered ${s.name}: run #${run.id}.` : `Triggered ${s.name}.`);
        if (run) {
          clear(message).append(`Triggered ${s.name}: `,
            h("a", { href: `#/runs/${encodeURIComponent(run.id)}`, text: `run #${run.id}` }), ".");
        }
      } else {
        say(`${s.name} ${action === "pause" ? "paused" : "resumed"}.`);
      }
      await load();
    } catch (err) {
      say(`Could not ${action} ${s.name}: ${err.message}`, true);
    }
  }

  // a run started by a schedule, or one that finished, changes "last run": reload (cheap)
  let reloadTimer = null;
  const off = hub.on((evt) => {
    if (evt.type !== "status" && evt.type !== "resync") return;
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(load, 500);
  });
  const offAuth = auth.onChange(render);
  const timers = [setInterval(load, 15000), setInterval(tick, 1000)];
  load();

  return {
    destroy() {
      destroyed = true;
      off();
      offAuth();
      clearTimeout(reloadTimer);
      timers.forEach(clearInterval);
    },
  };
}
