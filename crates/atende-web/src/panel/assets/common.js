// Shared by every page's module (import from "./common.js"): the page's translations, the JSON
// API client that sends the CSRF token, toasts, and the live WebSocket with reconnect and replay.

const stringsElement = document.getElementById("page-strings");
const strings = stringsElement ? JSON.parse(stringsElement.textContent || "{}") : {};

/** The text of `key` handed to this page (`Page::strings`), with `{name}` filled from `vars`. */
export function t(key, vars) {
  let text = strings[key] ?? key;
  for (const [name, value] of Object.entries(vars ?? {})) {
    text = text.replaceAll(`{${name}}`, String(value));
  }
  return text;
}

/** The session's CSRF token (from `<meta name="csrf-token">`). */
export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content ?? "";
}

/** A failed API call: `status` 0 means the server could not be reached. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field ?? null;
  }
}

/**
 * Calls the JSON API with the session cookie and the CSRF token. `body` is sent as JSON, or as
 * is when it is a FormData (uploads). Resolves to the parsed answer (null when empty); rejects
 * with an ApiError carrying the server's `{error:{code,message,field}}`. A 401 goes to the login.
 */
export async function api(method, path, body, { signal } = {}) {
  const headers = { Accept: "application/json", "X-CSRF-Token": csrfToken() };
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, credentials: "same-origin", signal });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw new ApiError(0, "network", t("common.js.network_error"));
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 401) {
    toLogin();
    throw new ApiError(401, "unauthenticated", t("common.js.session_ended"));
  }
  if (!response.ok) {
    const error = data?.error;
    throw new ApiError(
      response.status,
      error?.code ?? `http_${response.status}`,
      error?.message ?? t("common.js.request_failed"),
      error?.field,
    );
  }
  return data;
}

export const get = (path, options) => api("GET", path, undefined, options);
export const post = (path, body, options) => api("POST", path, body ?? {}, options);
export const put = (path, body, options) => api("PUT", path, body ?? {}, options);
export const patch = (path, body, options) => api("PATCH", path, body ?? {}, options);
export const del = (path, options) => api("DELETE", path, undefined, options);

function toLogin() {
  const next = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(next)}`);
}

/** Shows a short message in the corner; `kind` is "error", "ok" or "info". */
export function toast(message, kind = "error", ms = 6000) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const item = document.createElement("div");
  item.className = `toast toast-${kind}`;
  item.setAttribute("role", kind === "error" ? "alert" : "status");
  const text = document.createElement("span");
  text.textContent = message;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close";
  close.setAttribute("aria-label", t("common.js.close"));
  close.textContent = "×";
  close.addEventListener("click", () => item.remove());
  item.append(text, close);
  box.append(item);
  if (ms > 0) setTimeout(() => item.remove(), ms);
}

/** The usual `catch` of a page: aborted requests are silent, the rest become a toast. */
export function reportError(error) {
  if (error?.name === "AbortError") return;
  console.error(error);
  toast(error?.message || t("common.js.request_failed"));
}

/**
 * Opens the live event socket (`/api/v1/events`, see `live.rs`) and keeps it open: pings every
 * `heartbeatMs`, reconnects with growing delays, and asks for the events missed meanwhile with
 * `?since=`. Callbacks:
 *   onEvent({id, type, at, data})  every event, once, in order;
 *   onResync()                     the server cannot replay the gap: reload the page's data;
 *   onHello({last_id}, first)      the socket is (re)open; `first` on the initial connection;
 *   onStatus("online"|"offline")   for a connection indicator.
 * Returns { send(frame), close(), lastId }.
 */
export function connectLive({ onEvent, onResync, onHello, onStatus, heartbeatMs = 20000 } = {}) {
  let lastId = null;
  let socket = null;
  let pinger = null;
  let attempt = 0;
  let stopped = false;
  let opened = false;

  function open() {
    const url = new URL("/api/v1/events", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (lastId !== null) url.searchParams.set("since", String(lastId));
    if (heartbeatMs !== 20000) url.searchParams.set("heartbeat_ms", String(heartbeatMs));
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      attempt = 0;
      pinger = setInterval(() => send({ type: "ping" }), heartbeatMs);
      onStatus?.("online");
    });
    socket.addEventListener("message", (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      switch (frame.type) {
        case "hello":
          if (lastId === null) lastId = frame.last_id;
          onHello?.(frame, !opened);
          opened = true;
          return;
        case "resync":
          lastId = frame.last_id;
          onResync?.();
          return;
        case "pong":
          return;
        case "error":
          console.warn("live:", frame.code, frame.message);
          return;
        default:
          if (typeof frame.id === "number") {
            if (lastId !== null && frame.id <= lastId) return;
            lastId = frame.id;
          }
          onEvent?.(frame);
      }
    });
    socket.addEventListener("close", (event) => {
      clearInterval(pinger);
      onStatus?.("offline");
      if (stopped) return;
      if (event.code === 4001) {
        toLogin();
        return;
      }
      const delay = Math.min(30000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt += 1;
      setTimeout(open, delay);
    });
  }

  function send(frame) {
    if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  open();
  return {
    send,
    close() {
      stopped = true;
      socket?.close();
    },
    get lastId() {
      return lastId;
    },
  };
}

// Close the user menu with Escape (keyboard users).
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  for (const menu of document.querySelectorAll("details[open].usermenu")) {
    menu.open = false;
    menu.querySelector("summary")?.focus();
  }
});

// Lets browser tests (and page scripts) know the shared module is loaded.
document.documentElement.dataset.commonReady = "true";
