// Enqueue: pick a registered job, fill a form built from its parameter schema, submit,
// and land on the new run's live view.

import { api, auth } from "./api.js";
import { clear, h, setText } from "./dom.js";

export function enqueuePage(root, query) {
  let jobs = [];
  let fields = [];
  const jobSelect = h("select", { id: "e-job", name: "job", required: true });
  const description = h("p", { class: "muted" });
  const paramBox = h("div", { class: "form-grid" });
  const extra = h("textarea", { id: "e-extra", name: "extra", placeholder: "{}" });
  const extraLabel = h("label", { for: "e-extra", hidden: true },
    "Other parameters (JSON object)", extra);
  const queue = h("input", { id: "e-queue", name: "queue" });
  const priority = h("input", { id: "e-priority", name: "priority", type: "number", step: "1",
    min: "-1000", max: "1000" });
  const delay = h("input", { id: "e-delay", name: "delay", type: "number", min: "0", step: "any",
    placeholder: "0" });
  const jobId = h("input", { id: "e-jobid", name: "jobId", placeholder: "optional dedupe key" });
  // an admin action: a viewer sees no button, only a note (the API refuses viewers anyway)
  const submit = h("button", { type: "submit", class: "btn primary", hidden: true }, "Enqueue");
  const message = h("div", { class: "notice", hidden: true, role: "alert" });
  const viewerNote = h("p", { class: "muted viewer-note", hidden: true,
    text: "Read-only: viewer. Only admins can enqueue." });
  const form = h("form", { class: "card", "aria-label": "Enqueue a job", novalidate: true,
    onsubmit: (e) => { e.preventDefault(); send(); } },
  h("label", { for: "e-job" }, "Job", jobSelect), description,
  h("h2", { class: "section-title" }, "Parameters"), paramBox, extraLabel,
  h("h2", { class: "section-title" }, "Options"),
  h("div", { class: "form-grid" },
    h("label", { for: "e-queue" }, "Queue", queue),
    h("label", { for: "e-priority" }, "Priority (higher runs first)", priority),
    h("label", { for: "e-delay" }, "Delay (seconds)", delay),
    h("label", { for: "e-jobid" }, "Job id", jobId)),
  h("div", { class: "form-actions" }, submit, viewerNote, message));
  root.append(h("div", { class: "page-head" }, h("h1", null, "Enqueue a job")), form);

  function say(text, isError = false) {
    message.hidden = !text;
    message.className = isError ? "notice error" : "notice";
    setText(message, text);
  }

  function applyRole() {
    submit.hidden = !auth.isAdmin;
    submit.disabled = !auth.isAdmin;
    viewerNote.hidden = auth.isAdmin || auth.role === null;
  }

  async function load() {
    try {
      const data = await api("registry");
      jobs = data.jobs || [];
    } catch (err) {
      say(`Could not load the registered jobs: ${err.message}`, true);
      return;
    }
    clear(jobSelect);
    if (!jobs.length) jobSelect.append(h("option", { value: "", text: "No jobs registered" }));
    for (const job of jobs) jobSelect.append(h("option", { value: job.name, text: job.name }));
    const wanted = query.get("job");
    if (wanted && jobs.some((j) => j.name === wanted)) jobSelect.value = wanted;
    pick();
  }

  function pick() {
    const job = jobs.find((j) => j.name === jobSelect.value);
    clear(paramBox);
    fields = [];
    if (!job) return;
    setText(description, job.description || "");
    queue.value = job.queue || "default";
    priority.value = String(job.priority ?? 0);
    for (const spec of job.params || []) fields.push(field(spec));
    if (!fields.length) paramBox.append(h("p", { class: "muted", text: "This job takes no parameters." }));
    extraLabel.hidden = !job.acceptsAnyParams;
  }

  function field(spec) {
    const id = `p-${spec.name}`;
    const kind = spec.type || "any";
    let input;
    const def = spec.default;
    if (kind === "boolean") {
      input = h("input", { id, type: "checkbox", checked: def === true });
      paramBox.append(h("label", { class: "check", for: id }, input, spec.name,
        spec.required ? h("span", { class: "req", text: " *" }) : null));
    } else {
      if (kind === "integer" || kind === "number") {
        input = h("input", { id, type: "number", step: kind === "integer" ? "1" : "any" });
      } else if (kind === "array" || kind === "object" || kind === "any") {
        input = h("textarea", { id, rows: "2", placeholder: kind === "any" ? "JSON or text" :
          kind === "array" ? "[ ]" : "{ }" });
      } else {
        input = h("input", { id, type: "text" });
      }
      if (def !== undefined && def !== null) {
        input.value = typeof def === "string" && kind === "string" ? def : JSON.stringify(def);
        if (kind === "string" && typeof def !== "string") input.value = String(def);
      }
      if (spec.required) input.required = true;
      paramBox.append(h("label", { for: id },
        h("span", null, spec.name, spec.required ? h("span", { class: "req", text: " *" }) : null,
          h("span", { class: "field-help", text: ` ${kind}` })),
        input));
    }
    return { spec, kind, input, initial: kind === "boolean" ? input.checked : input.value };
  }

  /** Only changed or required values are sent: defaults stay the job's own. */
  function collect() {
    const params = {};
    for (const f of fields) {
      const { spec, kind, input } = f;
      if (kind === "boolean") {
        if (input.checked !== f.initial || spec.required) params[spec.name] = input.checked;
        continue;
      }
      const raw = input.value.trim();
      if (raw === "") {
        if (spec.required) throw new Error(`${spec.name} is required`);
        continue;
      }
      if (raw === f.initial && !spec.required) continue;
      if (kind === "integer" || kind === "number") {
        const n = Number(raw);
        if (!Number.isFinite(n) || (kind === "integer" && !Number.isInteger(n))) {
          throw new Error(`${spec.name} must be ${kind === "integer" ? "an integer" : "a number"}`);
        }
        params[spec.name] = n;
      } else if (kind === "string") {
        params[spec.name] = input.value;
      } else {
        try {
          params[spec.name] = JSON.parse(raw);
        } catch {
          if (kind !== "any") throw new Error(`${spec.name} must be JSON (${kind})`);
          params[spec.name] = raw;
        }
      }
    }
    const more = extra.value.trim();
    if (!extraLabel.hidden && more) {
      let obj;
      try {
        obj = JSON.parse(more);
      } catch {
        throw new Error("other parameters must be a JSON object");
      }
      if (!obj || typeof obj !== "object" || Array.isArray(obj)) {
        throw new Error("other parameters must be a JSON object");
      }
      Object.assign(params, obj);
    }
    return params;
  }

  async function send() {
    say("");
    let body;
    try {
      if (!auth.isAdmin) throw new Error("Read-only: viewer. Only admins can enqueue.");
      body = { jobName: jobSelect.value, params: collect() };
      if (queue.value.trim()) body.queue = queue.value.trim();
      if (priority.value.trim()) body.priority = Number(priority.value);
      if (delay.value.trim()) body.delay = Number(delay.value);
      if (jobId.value.trim()) body.jobId = jobId.value.trim();
    } catch (err) {
      say(err.message, true);
      return;
    }
    submit.disabled = true;
    try {
      const data = await api("jobs", { method: "POST", body });
      window.location.hash = `#/runs/${encodeURIComponent(data.run.id)}`;
    } catch (err) {
      say(`Could not enqueue: ${err.message}`, true);
    } finally {
      applyRole();
    }
  }

  jobSelect.addEventListener("change", pick);
  const off = auth.onChange(applyRole);
  applyRole();
  load();
  return { destroy() { off(); } };
}
