// The gateway's API as the console uses it: same origin, relative to the page, WaGo's envelope.
//
// The API base is derived from the page's own location, so the console works at /console locally and
// at /<stage>/console behind API Gateway. Tokens travel only in the `token` / `admintoken` headers
// (never in a URL) and are kept in this tab's sessionStorage (never a cookie or localStorage).

const AUTH_KEY = "wago-console-auth";

/** "" locally, "/api" behind API Gateway's stage: the path of this page without its last segment. */
export function apiBase() {
  return window.location.pathname.replace(/\/console\/?$/, "");
}

/** A failed call: `message` is WaGo's error text from the envelope, `status` the HTTP status. */
export class ApiError extends Error {
  constructor(status, message, route) {
    super(message);
    this.status = status;
    this.route = route;
  }
}

/**
 * Call the API. `auth` is {token?, admin?}: the session token and/or the admin token to send.
 * Resolves to the envelope's `data`; rejects with ApiError carrying WaGo's `error` text.
 */
export async function call(method, path, { auth = {}, body } = {}) {
  const headers = { Accept: "application/json" };
  if (auth.token) headers.token = auth.token;
  if (auth.admin) headers.admintoken = auth.admin;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const route = `${method} ${path.split("?")[0]}`;
  let response;
  try {
    response = await fetch(apiBase() + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "omit", redirect: "error",
    });
  } catch (error) {
    throw new ApiError(0, `network error: ${error.message}`, route);
  }
  let payload;
  try {
    payload = await response.json();
  } catch {
    throw new ApiError(response.status, `HTTP ${response.status}: the answer is not JSON`, route);
  }
  if (!response.ok || payload.success === false) {
    throw new ApiError(response.status, payload.error || `HTTP ${response.status}`, route);
  }
  return payload.data;
}

/** {kind: "admin" | "session", token} from sessionStorage, or null. */
export function loadAuth() {
  try {
    const saved = JSON.parse(window.sessionStorage.getItem(AUTH_KEY) || "null");
    if (saved && (saved.kind === "admin" || saved.kind === "session") && typeof saved.token === "string") {
      return saved;
    }
  } catch {
    // a corrupt entry is treated as no login
  }
  return null;
}

export function saveAuth(kind, token) {
  window.sessionStorage.setItem(AUTH_KEY, JSON.stringify({ kind, token }));
}

export function clearAuth() {
  window.sessionStorage.removeItem(AUTH_KEY);
}
