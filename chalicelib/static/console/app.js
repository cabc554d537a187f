// The console's entry point: login, navigation (#/ = sessions, #/session/<name> = one session) and
// the views' lifetimes (each view's polling stops when another view is shown).

import { call, clearAuth, loadAuth, saveAuth } from "./api.js";
import { renderSession } from "./session.js";
import { renderSessions } from "./sessions.js";
import { clearError, notice, onSubmit, showError } from "./ui.js";

const main = document.getElementById("main");
let stopView = () => {};
let sessionRows = []; // the admin's last /session/all answer: a session view needs the session's token

/** A fresh copy of a <template>'s content, without admin-only parts unless `admin`. */
function fromTemplate(id, admin) {
  const fragment = document.getElementById(id).content.cloneNode(true);
  if (!admin) fragment.querySelectorAll("[data-admin]").forEach((node) => node.remove());
  return fragment;
}

function show(fragment, title) {
  stopView();
  stopView = () => {};
  main.replaceChildren(fragment);
  document.title = `${title} · WaGo console`;
}

function showLogin() {
  document.getElementById("nav").hidden = true;
  show(fromTemplate("tpl-login", false), "Log in");
  const form = document.getElementById("login-form");
  onSubmit(form, async (data) => {
    const kind = data.get("kind");
    const token = String(data.get("token") || "").trim();
    // Check the token before keeping it: the admin lists sessions, a session reads its status.
    if (kind === "admin") sessionRows = await call("GET", "/session/all", { auth: { admin: token } });
    else await call("GET", "/session/status", { auth: { token } });
    saveAuth(kind, token);
    notice(kind === "admin" ? "Logged in with the admin token." : "Logged in with a session token.");
    route();
  });
  document.getElementById("login-token").focus();
}

async function route() {
  const auth = loadAuth();
  if (!auth) return showLogin();
  const admin = auth.kind === "admin";
  const nav = document.getElementById("nav");
  nav.hidden = false;
  document.getElementById("who").textContent = admin ? "Admin" : "Session";
  document.getElementById("nav-sessions").hidden = !admin;

  if (!admin) {
    show(fromTemplate("tpl-session", false), "Your session");
    stopView = renderSession(main, { admin: false, auth, session: { name: "", token: auth.token } });
    return;
  }
  const match = /^#\/session\/(.+)$/.exec(window.location.hash);
  if (!match) {
    show(fromTemplate("tpl-sessions", true), "Sessions");
    stopView = renderSessions(main, {
      auth, onRows: (rows) => { sessionRows = rows; },
    });
    return;
  }
  const name = decodeURIComponent(match[1]);
  let row = sessionRows.find((r) => r.name === name);
  if (!row) {
    try {
      sessionRows = await call("GET", "/session/all", { auth: { admin: auth.token } });
    } catch (error) {
      showError(error);
      return;
    }
    row = sessionRows.find((r) => r.name === name);
  }
  if (!row) {
    showError(new Error(`no session named ${name}`));
    window.location.hash = "#/";
    return;
  }
  show(fromTemplate("tpl-session", true), `Session ${name}`);
  stopView = renderSession(main, { admin: true, auth, session: { name: row.name, token: row.token } });
}

document.getElementById("logout").addEventListener("click", () => {
  stopView();
  clearAuth();
  sessionRows = [];
  clearError();
  notice("Logged out.");
  window.location.hash = "";
  showLogin();
});

window.addEventListener("hashchange", () => {
  if (window.location.hash === "" || window.location.hash.startsWith("#/")) {
    clearError();
    route();
  }
});

route();
