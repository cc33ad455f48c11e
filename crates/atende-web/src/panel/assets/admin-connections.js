// Connections page: the list with each connection's status (refreshed while the page is open),
// create/edit (kind, name, default queue and flow, credentials that are never shown back,
// cadence override), the web-chat widget snippet, the sync of a WhatsApp Cloud API connection's
// message templates, and the QR code / pairing area that the WhatsApp channel will fill
// (`#connection-pairing-area`, `data-connection-id`).

import { t, get, post } from "./common.js";
import { crud, el, FormError } from "./admin.js";

const REFRESH_MS = 10000;
let queues = [];
let flows = [];

const form = document.getElementById("connection-form");
const kindSelect = document.getElementById("connection-kind");
const queueSelect = document.getElementById("connection-queue");
const flowSelect = document.getElementById("connection-flow");
const credentialsBox = document.getElementById("connection-credentials-box");
const credentialsState = document.getElementById("connection-credentials-state");
const webchatBox = document.getElementById("connection-webchat");
const pairingBox = document.getElementById("connection-pairing");
const refreshed = document.getElementById("connection-refreshed");

function options(select, items, current) {
  const keep = select.options[0];
  select.replaceChildren(
    keep,
    ...items.map((item) => el("option", { value: String(item.id), text: item.name, selected: item.id === current })),
  );
  if (current === null || current === undefined) select.value = "";
}

function status(connection) {
  const state = connection.status ?? "disconnected";
  return el("span", { class: `badge status-${state}` }, t(`admin.status.${state}`));
}

function widgetUrl(key) {
  return new URL(`/widget/${encodeURIComponent(key)}`, location.href).href;
}

/** Fetches the connection's templates from Meta and says what changed. */
async function syncTemplates(connection, button, result) {
  button.disabled = true;
  result.textContent = t("admin.connections.templates_syncing");
  try {
    const report = await post(`/api/v1/connections/${connection.id}/templates/sync`);
    result.textContent = t("admin.connections.templates_synced", {
      listed: report.listed,
      inserted: report.inserted,
      updated: report.updated,
      removed: report.removed,
    });
  } catch (error) {
    result.textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

function access(connection) {
  if (connection.kind === "webchat" && connection.public_key) {
    return el("a", { href: widgetUrl(connection.public_key), target: "_blank", rel: "noopener", text: t("admin.connections.widget_open") });
  }
  const credentials = connection.has_credentials ? t("admin.connections.credentials_set") : t("admin.connections.credentials_unset");
  if (connection.kind !== "whatsapp_cloud" || !connection.has_credentials) return credentials;
  const result = el("span", { class: "templates-sync-result", role: "status" });
  const button = el("button", {
    type: "button",
    class: "secondary templates-sync",
    text: t("admin.connections.templates_sync"),
    "aria-label": t("admin.connections.templates_sync_label", { name: connection.name }),
  });
  button.addEventListener("click", () => syncTemplates(connection, button, result));
  return el("span", {}, credentials, " ", button, " ", result);
}

/** Shows the parts of the form that belong to the chosen kind. */
function showKindParts(connection) {
  const kind = kindSelect.value;
  credentialsBox.hidden = kind === "webchat";
  webchatBox.hidden = !(kind === "webchat" && connection?.public_key);
  if (!webchatBox.hidden) {
    const url = widgetUrl(connection.public_key);
    document.getElementById("connection-snippet").value =
      `<iframe src="${url}" title="Chat" style="border:0;width:360px;height:560px"></iframe>`;
    document.getElementById("connection-widget-link").href = url;
  }
  // Unofficial WhatsApp pairs by QR code or pairing code; the channel issue fills this area.
  pairingBox.hidden = kind !== "evolution";
  pairingBox.dataset.connectionId = connection ? String(connection.id) : "";
}

kindSelect.addEventListener("change", () => showKindParts(null));

function numberOrNull(input) {
  const text = input.value.trim();
  return text === "" ? null : Number(text);
}

const page = crud({
  base: "/api/v1/connections",
  table: "#connection-table",
  dialog: "#connection-dialog",
  newButton: "#connection-new",
  async load() {
    const [connections, allQueues, allFlows] = await Promise.all([
      get("/api/v1/connections"),
      get("/api/v1/queues"),
      get("/api/v1/flows").catch(() => []),
    ]);
    queues = allQueues;
    flows = allFlows;
    return connections;
  },
  after() {
    refreshed.textContent = t("admin.connections.refreshed", { time: new Date().toLocaleTimeString(document.documentElement.lang || undefined) });
  },
  name: (connection) => connection.name,
  row: (connection) => [
    connection.name,
    t(`admin.kind.${connection.kind}`),
    status(connection),
    queues.find((queue) => queue.id === connection.default_queue_id)?.name ?? t("admin.common.none"),
    access(connection),
  ],
  fill(form, connection) {
    kindSelect.value = connection?.kind ?? "webchat";
    kindSelect.disabled = connection !== null;
    form.elements.name.value = connection?.name ?? "";
    options(queueSelect, queues, connection?.default_queue_id);
    options(flowSelect, flows, connection?.default_flow_id);
    form.elements.credentials.value = "";
    credentialsState.textContent = connection?.has_credentials
      ? t("admin.connections.credentials_set")
      : t("admin.connections.credentials_unset");
    const cadence = connection?.cadence_enabled;
    form.elements.cadence_enabled.value = cadence === null || cadence === undefined ? "" : String(cadence);
    form.elements.send_delay_min_ms.value = connection?.send_delay_min_ms ?? "";
    form.elements.send_delay_max_ms.value = connection?.send_delay_max_ms ?? "";
    showKindParts(connection);
  },
  read(form, connection) {
    const cadence = form.elements.cadence_enabled.value;
    const body = {
      name: form.elements.name.value,
      default_queue_id: queueSelect.value ? Number(queueSelect.value) : null,
      default_flow_id: flowSelect.value ? Number(flowSelect.value) : null,
      cadence_enabled: cadence === "" ? null : cadence === "true",
      send_delay_min_ms: numberOrNull(form.elements.send_delay_min_ms),
      send_delay_max_ms: numberOrNull(form.elements.send_delay_max_ms),
    };
    const credentials = form.elements.credentials.value.trim();
    if (credentials && kindSelect.value !== "webchat") {
      try {
        body.credentials = JSON.parse(credentials);
      } catch {
        throw new FormError("credentials", t("admin.connections.bad_json"));
      }
    }
    if (connection === null) body.kind = kindSelect.value;
    return body;
  },
});

// Status comes from the channel; refresh while someone looks, not while a form is open.
setInterval(() => {
  const dialogOpen = document.getElementById("connection-dialog").open;
  if (document.visibilityState === "visible" && !dialogOpen) page.reload();
}, REFRESH_MS);

form.dataset.ready = "true";
