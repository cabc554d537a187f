// One session's view: live status and QR, connect (subscriptions), pair code, disconnect, logout,
// webhook settings, the delivery log (redrive for admins), a test text, the call page link.
//
// Everything is called with the session's own token; the admin token is added only for the admin-only
// calls (delete, redrive), whose controls are absent from a session-token login.

import { ApiError, call } from "./api.js";
import { el, notice, onClick, onSubmit, poll, setText, showError } from "./ui.js";

const STATUS_MS = 2000; // status and QR: a rotated QR (every 20 s on WhatsApp) shows within 2 s
const DELIVERIES_MS = 4000;
const EVENT_TYPES = ["Message", "ReadReceipt", "Presence", "HistorySync", "ChatPresence", "Call", "LoggedOut",
  "Newsletter", "All"]; // WaGo's subscription types (chalicelib/core/contract.py EVENT_TYPES, plus All)
// Answers of GET /session/qr that only mean "no QR right now" (WaGo's texts), not failures.
const NO_QR = new Set(["No session", "Not connected", "Already Logged in"]);

const yesNo = (value) => (value ? "yes" : "no");

/** Render into `root` (the session template is already there); returns a stop function. */
export function renderSession(root, { admin, auth, session }) {
  const $ = (selector) => root.querySelector(selector);
  const mine = { token: session.token };
  const withAdmin = { token: session.token, admin: auth.token };
  setText($("#session-title"), session.name ? `Session ${session.name}` : "Your session");

  // Status and QR, live.
  const qrBox = $("#qr-box");
  const qr = $("#qr");
  const hideQr = () => { qrBox.hidden = true; qr.removeAttribute("src"); };
  const refreshQr = async () => {
    try {
      const { QRCode: code } = await call("GET", "/session/qr", { auth: mine });
      if (code && qr.getAttribute("src") !== code) qr.setAttribute("src", code);
      qrBox.hidden = !code;
    } catch (error) {
      if (error instanceof ApiError && NO_QR.has(error.message)) hideQr();
      else throw error;
    }
  };
  const status = poll(STATUS_MS, async (isLatest) => {
    const s = await call("GET", "/session/status", { auth: mine });
    if (!isLatest()) return;
    const jid = s.Jid && s.Jid.User ? `${s.Jid.User}@${s.Jid.Server}` : "";
    setText($("#st-connected"), yesNo(s.Connected));
    setText($("#st-loggedin"), yesNo(s.LoggedIn));
    setText($("#st-jid"), jid || "–");
    setText($("#st-pushname"), s.PushName || "–");
    setText($("#st-events"), s.Events || "–");
    setText($("#st-lasterror"), s.LastError || "–");
    const state = s.LoggedIn ? "LoggedIn" : s.Connected ? "Connected, waiting for the QR scan or pair code" : "Disconnected";
    setText($("#st-summary"), `Status: ${state}${jid ? ` as ${jid}` : ""}`);
    root.dataset.state = s.LoggedIn ? "LoggedIn" : s.Connected ? "Connected" : "Disconnected";
    if (s.Connected && !s.LoggedIn) await refreshQr();
    else hideQr();
  });

  // Connect with subscriptions, or a pair code.
  const fieldset = $("#subscribe");
  for (const type of EVENT_TYPES) {
    fieldset.append(el("label", {}, el("input", { type: "checkbox", name: "Subscribe", value: type }), ` ${type}`));
  }
  onSubmit($("#connect-form"), async (data) => {
    const result = await call("POST", "/session/connect", { auth: mine, body: { Subscribe: data.getAll("Subscribe") } });
    notice(`${result.details} Subscriptions: ${result.events || "All"}.`);
    await Promise.all([status.refresh(), loadWebhook()]);
  });
  onSubmit($("#pair-form"), async (data) => {
    const result = await call("POST", "/session/pair", { auth: mine, body: { Phone: data.get("Phone") } });
    setText($("#pair-code"), `Pair code: ${result.LinkingCode} (WhatsApp, Linked devices, Link with phone number)`);
    await status.refresh();
  });

  onClick($("#disconnect"), async () => {
    const result = await call("POST", "/session/disconnect", { auth: mine });
    notice(result.Details);
    await status.refresh();
  });
  onClick($("#logout-session"), async () => {
    if (!window.confirm("Log the device out? The phone must scan a new QR code to link again.")) return;
    const result = await call("POST", "/session/logout", { auth: mine });
    notice(result.Details);
    await status.refresh();
  });
  const remove = $("#delete-session");
  if (admin && remove) {
    onClick(remove, async () => {
      if (!window.confirm(`Delete session ${session.name}? Its device is unlinked and its token stops working.`)) return;
      await call("POST", "/session/delete", { auth: withAdmin });
      notice(`Session ${session.name} deleted.`);
      window.location.hash = "#/";
    });
  }

  // Webhook: the secret is write-only; the API answers only its last characters.
  const loadWebhook = async () => {
    const hook = await call("GET", "/webhook", { auth: mine });
    setText($("#wh-url"), hook.webhook || "none");
    setText($("#wh-secret"), hook.secret ? `set (${hook.secret}: its last characters only)` : "not set");
    setText($("#wh-subscribe"), (hook.subscribe || []).join(", ") || "–");
    const input = $("#wh-url-input");
    if (document.activeElement !== input && !input.value) input.value = hook.webhook || "";
  };
  loadWebhook().catch(showError);
  onSubmit($("#webhook-form"), async (data) => {
    const body = { WebhookURL: String(data.get("WebhookURL") || "").trim() };
    const secret = String(data.get("Secret") || "");
    if ($("#wh-secret-clear").checked) body.Secret = "";
    else if (secret) body.Secret = secret;
    await call("POST", "/webhook", { auth: mine, body });
    $("#wh-secret-input").value = "";
    $("#wh-secret-clear").checked = false;
    notice("Webhook saved.");
    await loadWebhook();
  });

  // Delivery log, live; redrive for admins.
  const deliveriesBody = $("#deliveries-table tbody");
  const deliveries = poll(DELIVERIES_MS, async (isLatest) => {
    const page = await call("GET", "/webhook/deliveries?limit=20", { auth: mine });
    if (!isLatest()) return;
    const rows = page.deliveries.map((d) => el("tr", { className: `state-${d.state}` },
      el("td", {}, d.type),
      el("td", {}, d.dropReason ? `${d.state} (${d.dropReason})` : d.state),
      el("td", {}, d.attempts),
      el("td", {}, d.lastStatus || "no answer"),
      el("td", {}, d.lastError || "–"),
      el("td", {}, Math.round(d.latencyMs)),
      el("td", {}, d.updatedAt || d.deliveredAt || "–")));
    if (rows.length === 0) rows.push(el("tr", {}, el("td", { colSpan: 7 }, "No deliveries yet.")));
    deliveriesBody.replaceChildren(...rows);
  });
  onClick($("#deliveries-refresh"), () => deliveries.refresh());
  const redrive = $("#redrive");
  if (admin && redrive) {
    onClick(redrive, async () => {
      const result = await call("POST", "/webhook/redrive", { auth: { admin: auth.token }, body: { Token: session.token } });
      notice(`Redriven: ${result.redriven} event(s) sent back for delivery.`);
      await deliveries.refresh();
    });
  }

  // A test text.
  onSubmit($("#send-form"), async (data) => {
    const result = await call("POST", "/send/text", { auth: mine, body: { Phone: data.get("Phone"), Body: data.get("Body") } });
    setText($("#send-result"), `${result.Details}: message ${result.Id} at ${result.Timestamp}`);
  });

  return () => { status.stop(); deliveries.stop(); };
}
