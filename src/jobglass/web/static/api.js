// The admin API client: auth token, JSON requests, and the self-healing live stream.

const TOKEN_KEY = "jobglass.token";

function apiBase() {
  const meta = document.querySelector('meta[name="jobglass-api"]');
  const path = (meta && meta.getAttribute("content")) || "api/admin";
  return new URL(path.replace(/\/?$/, "/"), document.baseURI);
}

export const API_BASE = apiBase();

function decodeJwt(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** Who we are: the token (sessionStorage) and the role the server reports for it. */
export const auth = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  role: null, // "admin" | "viewer" | null (unknown yet)
  subject: null,
  listeners: new Set(),

  /** `?token=` in the address bar signs in, then disappears from it (and from history). */
  adoptTokenFromUrl() {
    const url = new URL(window.location.href);
    const token = url.searchParams.get("token");
    if (!token) return;
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    this.setToken(token);
  },

  setToken(token) {
    this.token = (token || "").trim();
    this.role = null;
    this.subject = null;
    if (this.token) sessionStorage.setItem(TOKEN_KEY, this.token);
    else sessionStorage.removeItem(TOKEN_KEY);
    const claims = this.token ? decodeJwt(this.token) : null;
    if (claims) {
      const role = claims.role;
      const roles = Array.isArray(role) ? role : String(role || "").split(/[\s,]+/);
      if (roles.includes("admin") || roles.includes("superadmin")) this.role = "admin";
      else if (roles.includes("viewer")) this.role = "viewer";
      this.subject = claims.sub || null;
    }
    this.emit();
  },

  setIdentity(identity) {
    if (!identity) return;
    this.role = identity.role || this.role;
    this.subject = identity.subject || this.subject;
    this.emit();
  },

  signOut() {
    this.setToken("");
  },

  get isAdmin() {
    return this.role === "admin";
  },

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  },

  emit() {
    for (const fn of this.listeners) fn(this);
  },
};

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function messageFrom(body, status) {
  if (body && typeof body === "object") {
    const detail = body.detail ?? body.error ?? body.message;
    if (typeof detail === "string") return detail;
    if (detail && typeof detail === "object" && typeof detail.message === "string") {
      return detail.message;
    }
    if (Array.isArray(detail) && detail.length) {
      return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    }
  }
  return `HTTP ${status}`;
}

/** api("jobs", {query: {status: "RUNNING"}}) -> parsed JSON; throws ApiError. */
export async function api(path, { method = "GET", query, body, signal } = {}) {
  const url = new URL(path.replace(/^\//, ""), API_BASE);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = { Accept: "application/json" };
  if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "the server is unreachable", null);
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text };
    }
  }
  if (!response.ok) {
    const err = new ApiError(response.status, messageFrom(data, response.status), data);
    if (response.status === 401) window.dispatchEvent(new CustomEvent("jobglass:unauthorized"));
    throw err;
  }
  return data;
}

/** Ask the server who we are (role and subject); a refused token throws ApiError 401/403. */
export async function whoAmI() {
  const data = await api("me");
  auth.setIdentity(data.identity || data);
  return auth;
}

// -- live stream ----------------------------------------------------------------------------

export const connection = {
  state: "idle", // idle | connecting | live | reconnecting
  listeners: new Set(),
  streams: new Set(),
  set(state) {
    this.state = state;
    for (const fn of this.listeners) fn(state);
  },
  refresh() {
    let state = "idle";
    for (const s of this.streams) {
      if (s.state === "live" && state === "idle") state = "live";
      if (s.state === "connecting" || s.state === "reconnecting") state = "reconnecting";
    }
    if (state !== this.state) this.set(state);
  },
};

/**
 * One WebSocket to /stream that reconnects by itself. A one-run stream resumes after the
 * last log sequence it saw (`after=<seq>`, from opts.after()), so a restart of the server
 * leaves no gap; the all-runs stream answers a reconnect with a fresh snapshot.
 *
 * opts: {runId, level, after(), onEvent(evt), onOpen(resumed), onGap(evt), onRefused(code)}
 */
export class LiveStream {
  constructor(opts) {
    this.opts = opts;
    this.ws = null;
    this.state = "idle";
    this.closed = false;
    this.attempt = 0;
    this.timer = null;
    this.watchdog = null;
    this.pinger = null;
  }

  url() {
    const url = new URL("stream", API_BASE);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (auth.token) url.searchParams.set("token", auth.token);
    if (this.opts.runId) url.searchParams.set("runId", this.opts.runId);
    if (this.opts.level) url.searchParams.set("level", this.opts.level);
    const after = this.opts.after ? this.opts.after() : null;
    if (after !== null && after !== undefined) url.searchParams.set("after", after);
    return url.toString();
  }

  start() {
    this.closed = false;
    connection.streams.add(this);
    this.connect();
    return this;
  }

  setState(state) {
    this.state = state;
    connection.refresh();
  }

  connect() {
    if (this.closed) return;
    this.setState(this.attempt ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.schedule();
      return;
    }
    this.ws = ws;
    const resumed = this.attempt > 0;
    ws.addEventListener("open", () => {
      this.attempt = 0;
      this.setState("live");
      this.kick();
      // the server answers {"type":"ping"} with a pong: proof the connection still works
      clearInterval(this.pinger);
      this.pinger = setInterval(() => {
        if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"ping"}');
      }, 15000);
      if (this.opts.onOpen) this.opts.onOpen(resumed);
    });
    ws.addEventListener("message", (msg) => {
      this.kick();
      let evt;
      try {
        evt = JSON.parse(msg.data);
      } catch {
        return;
      }
      if (evt.type === "ping" || evt.type === "pong") return;
      if (evt.type === "hello") {
        if (evt.role) auth.setIdentity({ role: evt.role });
        return;
      }
      if (evt.type === "overflow") {
        if (this.opts.onGap) this.opts.onGap(evt);
        return;
      }
      if (evt.type === "error" && evt.status === 401) {
        window.dispatchEvent(new CustomEvent("jobglass:unauthorized"));
        return;
      }
      this.opts.onEvent(evt);
    });
    ws.addEventListener("close", (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearTimeout(this.watchdog);
      clearInterval(this.pinger);
      if (this.closed) return;
      if (e.code === 4401) {
        window.dispatchEvent(new CustomEvent("jobglass:unauthorized"));
        this.setState("idle");
        return;
      }
      if (e.code === 4400 || e.code === 4403 || e.code === 4404) {
        // refused for good (bad filter, no permission, no such run): retrying cannot help
        this.setState("idle");
        if (this.opts.onRefused) this.opts.onRefused(e.code, e.reason);
        return;
      }
      this.schedule();
    });
  }

  /** A stream that goes quiet for too long is presumed dead (no close frame after a crash). */
  kick() {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      if (this.ws) this.ws.close();
    }, 40000);
  }

  schedule() {
    this.setState("reconnecting");
    this.attempt += 1;
    const delay = Math.min(5000, 250 * 2 ** Math.min(this.attempt - 1, 5));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay * (0.8 + Math.random() * 0.4));
  }

  stop() {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.watchdog);
    clearInterval(this.pinger);
    connection.streams.delete(this);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000);
    }
    this.setState("idle");
  }
}
