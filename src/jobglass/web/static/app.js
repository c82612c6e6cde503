// jobglass Job Manager: the shell (sign-in, navigation, theme, connection) and the router.

import { api, auth, connection, whoAmI } from "./api.js";
import { detailPage } from "./detail.js";
import { clear, h, parseHash, setText } from "./dom.js";
import { enqueuePage } from "./enqueue.js";
import { hub } from "./hub.js";
import { logsPage } from "./logs.js";
import { queuesPage } from "./queues.js";
import { runsPage } from "./runs.js";
import { schedulesPage } from "./schedules.js";

const THEME_KEY = "jobglass.theme";
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const connEl = document.getElementById("conn");
const connText = document.getElementById("conn-text");
const roleEl = document.getElementById("role");
const signOutButton = document.getElementById("sign-out");
const themeButton = document.getElementById("theme");
let page = null;

// -- theme: follows the system unless the toggle chose light or dark ---------------------------
function applyTheme(choice) {
  if (choice === "light" || choice === "dark") {
    document.documentElement.dataset.theme = choice;
    localStorage.setItem(THEME_KEY, choice);
  } else {
    delete document.documentElement.dataset.theme;
    localStorage.removeItem(THEME_KEY);
  }
  const effective = currentTheme();
  setText(themeButton, effective === "dark" ? "☀ Light" : "☾ Dark");
  themeButton.setAttribute("aria-label", `Switch to ${effective === "dark" ? "light" : "dark"} theme`);
}

function currentTheme() {
  const chosen = document.documentElement.dataset.theme;
  if (chosen) return chosen;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

themeButton.addEventListener("click", () => applyTheme(currentTheme() === "dark" ? "light" : "dark"));
applyTheme(localStorage.getItem(THEME_KEY));
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () =>
  applyTheme(localStorage.getItem(THEME_KEY)));

// -- connection indicator --------------------------------------------------------------------
const CONN_TEXT = { idle: "Offline", connecting: "Connecting…", live: "Live",
  reconnecting: "Reconnecting…" };
connection.listeners.add((state) => {
  connEl.className = `conn ${state}`;
  setText(connText, CONN_TEXT[state] || state);
});

// -- auth ------------------------------------------------------------------------------------
function renderIdentity() {
  const signedIn = Boolean(auth.token);
  roleEl.hidden = !signedIn || !auth.role;
  setText(roleEl, auth.role ? `${auth.role}${auth.subject ? ` · ${auth.subject}` : ""}` : "");
  signOutButton.hidden = !signedIn;
  nav.hidden = !signedIn;
  document.body.classList.toggle("is-admin", auth.isAdmin);
}
auth.onChange(renderIdentity);

signOutButton.addEventListener("click", () => {
  auth.signOut();
  hub.stop();
  showSignIn("Signed out.");
});

window.addEventListener("jobglass:unauthorized", () => {
  if (page && page.signIn) return; // the sign-in form reports it itself
  auth.signOut();
  hub.stop();
  showSignIn("Your token was refused (expired or invalid). Sign in again.");
});

function showSignIn(note) {
  if (page && page.destroy) page.destroy();
  clear(main);
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true,
    spellcheck: "false", placeholder: "eyJhbGciOi… or your API key" });
  const error = h("p", { class: "error-text", role: "alert" }, note || "");
  const submit = h("button", { type: "submit", class: "btn primary" }, "Sign in");
  const form = h("form", { class: "card", onsubmit: async (e) => {
    e.preventDefault();
    submit.disabled = true;
    setText(error, "");
    auth.setToken(input.value);
    try {
      await whoAmI();
      start();
    } catch (err) {
      auth.signOut();
      setText(error, err.status === 401 || err.status === 403
        ? `Not accepted: ${err.message}` : `Could not reach the server: ${err.message}`);
    } finally {
      submit.disabled = false;
    }
  } },
  h("h1", null, "Sign in"),
  h("p", { class: "muted" }, "Paste an admin or viewer token (JWT) or an API key. It is kept ",
    "in this tab only (session storage)."),
  h("label", { for: "token" }, "Token or API key", input), submit, error);
  main.append(h("div", { class: "signin" }, form));
  page = { signIn: true, destroy() {} };
  document.title = "Sign in · jobglass";
  input.focus();
}

// -- routing ----------------------------------------------------------------------------------
const ROUTES = {
  runs: (root, path, query) => (path[1] ? detailPage(root, path[1]) : runsPage(root, query)),
  queues: (root) => queuesPage(root),
  schedules: (root) => schedulesPage(root),
  enqueue: (root, path, query) => enqueuePage(root, query),
  logs: (root, path, query) => logsPage(root, query),
};
const TITLES = { runs: "Runs", queues: "Queues", schedules: "Schedules", enqueue: "Enqueue",
  logs: "Logs" };

function route() {
  if (!auth.token) {
    showSignIn();
    return;
  }
  const { path, query } = parseHash(window.location.hash);
  const name = ROUTES[path[0]] ? path[0] : "runs";
  if (!ROUTES[path[0]]) {
    window.history.replaceState(null, "", "#/runs");
  }
  if (page && page.destroy) page.destroy();
  clear(main);
  document.title = `${TITLES[name]} · jobglass`;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  page = ROUTES[name](main, path, query);
  window.jobglass.page = page;
  main.focus({ preventScroll: true });
}

function start() {
  renderIdentity();
  hub.start();
  route();
}

window.addEventListener("hashchange", () => {
  if (auth.token) route();
});

async function boot() {
  auth.adoptTokenFromUrl();
  renderIdentity();
  if (!auth.token) {
    showSignIn();
    return;
  }
  try {
    await whoAmI();
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      auth.signOut();
      showSignIn(`Not accepted: ${err.message}`);
      return;
    }
    // unreachable right now: show the page anyway, the stream keeps retrying
  }
  start();
}

// for the console and the browser tests (e.g. `jobglass.page.logLines()`); the page never reads it
window.jobglass = { api, auth, hub, page: null };

boot();
