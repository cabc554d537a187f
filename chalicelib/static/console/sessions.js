// The admin's sessions view: a live table of every session (GET /session/all), create and delete.

import { call } from "./api.js";
import { el, notice, onClick, onSubmit, poll } from "./ui.js";

const REFRESH_MS = 5000;

const yesNo = (value) => (value ? "yes" : "no");

/** Render into `root` (the sessions template is already there); returns a stop function. */
export function renderSessions(root, { auth, onRows }) {
  const admin = { admin: auth.token };
  const body = root.querySelector("#sessions-table tbody");

  const draw = (rows) => {
    onRows(rows);
    body.replaceChildren(...rows.map((row) => {
      const open = el("a", { href: `#/session/${encodeURIComponent(row.name)}` }, "Open");
      open.setAttribute("aria-label", `Open session ${row.name}`);
      const remove = el("button", { type: "button", className: "danger" }, "Delete");
      remove.setAttribute("aria-label", `Delete session ${row.name}`);
      onClick(remove, async () => {
        if (!window.confirm(`Delete session ${row.name}? Its device is unlinked and its token stops working.`)) return;
        await call("POST", "/session/delete", { auth: { admin: auth.token, token: row.token } });
        await poller.refresh();
        notice(`Session ${row.name} deleted.`);
      });
      return el("tr", {},
        el("th", { scope: "row" }, row.name),
        el("td", { className: "mono" }, row.jid || "–"),
        el("td", {}, row.pushName || "–"),
        el("td", {}, yesNo(row.connected)),
        el("td", {}, yesNo(row.loggedIn)),
        el("td", { className: "mono" }, row.ownerHost || "–"),
        el("td", {}, row.lastError || "–"),
        el("td", { className: "row-actions" }, open, " ", remove));
    }));
    if (rows.length === 0) body.replaceChildren(el("tr", {}, el("td", { colSpan: 8 }, "No sessions yet.")));
  };

  const poller = poll(REFRESH_MS, async (isLatest) => {
    const rows = await call("GET", "/session/all", { auth: admin });
    if (isLatest()) draw(rows);
  });
  onClick(root.querySelector("#sessions-refresh"), () => poller.refresh());

  const form = root.querySelector("#create-form");
  onSubmit(form, async (data) => {
    const created = await call("POST", "/session/init", {
      auth: admin,
      body: { Name: data.get("Name"), Token: data.get("Token"), Os: data.get("Os") },
    });
    form.reset();
    await poller.refresh();
    notice(`Session ${created.name} created (id ${created.id}).`);
  });
  return () => poller.stop();
}
