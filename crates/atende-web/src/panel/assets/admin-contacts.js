// Contacts page: search with filters and "load more", create/edit (name, phone, e-mail, tags),
// and for managers the ordered wallet owners, block/unblock and merging a duplicate into a contact.

import { t, get, post, patch, toast, reportError } from "./common.js";
import {
  checkedIds,
  chip,
  clearErrors,
  el,
  fillChecklist,
  fillTable,
  labelCells,
  openDialog,
  rowButton,
  setupDialog,
  showError,
  tableRow,
} from "./admin.js";

const PAGE = 50;
const root = document.getElementById("contacts-page");
const manager = root.dataset.manager === "true";
const table = document.getElementById("contact-table");
const more = document.getElementById("contact-more");
const searchForm = document.getElementById("contact-search");
const tagFilter = document.getElementById("contact-tag-filter");
const dialog = setupDialog(document.getElementById("contact-dialog"));
const form = document.getElementById("contact-form");
const tagBox = document.getElementById("contact-tags");
const walletList = document.getElementById("contact-wallet");
const walletAdd = document.getElementById("contact-wallet-add");

let tags = [];
let users = [];
let contacts = [];
let cursor = null;
let editing = null;
let wallet = [];

const userName = (id) => users.find((user) => user.id === id)?.name ?? `#${id}`;

function query(after) {
  const params = new URLSearchParams();
  const data = new FormData(searchForm);
  for (const name of ["search", "tag_id", "blocked"]) {
    const value = String(data.get(name) ?? "").trim();
    if (value) params.set(name, value);
  }
  params.set("limit", String(PAGE));
  if (after) params.set("after", String(after));
  return `/api/v1/contacts?${params}`;
}

function reach(contact) {
  const parts = [contact.phone, contact.email].filter(Boolean);
  if (!parts.length && contact.identities?.length) {
    const first = contact.identities[0];
    parts.push(`${t(`admin.kind.${first.channel}`)}: ${first.external_id}`);
  }
  return parts.length ? parts.join(" · ") : t("admin.common.none");
}

function row(contact) {
  const name = el("span", {}, contact.name, contact.is_group ? el("span", { class: "badge badge-muted", text: t("admin.contacts.group") }) : null);
  const tagCell = el(
    "span",
    { class: "chips" },
    tags.filter((tag) => contact.tag_ids.includes(tag.id)).map((tag) => chip(tag.name, tag.color)),
  );
  const walletCell = contact.wallet_user_ids.length
    ? contact.wallet_user_ids.map(userName).join(", ")
    : t("admin.common.none");
  const state = contact.blocked
    ? el("span", { class: "badge badge-danger", text: t("admin.contacts.blocked_state") })
    : el("span", { class: "badge badge-ok", text: t("admin.contacts.active_state") });
  const buttons = [rowButton(t("admin.common.edit"), contact.name, () => openEditor(contact))];
  if (manager) {
    buttons.push(
      rowButton(contact.blocked ? t("admin.contacts.unblock") : t("admin.contacts.block"), contact.name, () =>
        toggleBlock(contact),
      ),
      rowButton(t("admin.contacts.merge"), contact.name, () => openMerge(contact)),
    );
  }
  return tableRow([name, reach(contact), tagCell, walletCell, state, el("div", { class: "row-actions" }, buttons)], {
    "data-id": String(contact.id),
  });
}

function render() {
  fillTable(table, contacts.map(row));
  more.hidden = cursor === null;
}

async function search() {
  try {
    const page = await get(query(null));
    contacts = page.contacts;
    cursor = page.next_cursor;
    render();
  } catch (error) {
    reportError(error);
  }
}

async function loadMore() {
  if (cursor === null) return;
  try {
    const page = await get(query(cursor));
    contacts = contacts.concat(page.contacts);
    cursor = page.next_cursor;
    table.tBodies[0].append(...page.contacts.map(row));
    labelCells(table);
    more.hidden = cursor === null;
  } catch (error) {
    reportError(error);
  }
}

async function toggleBlock(contact) {
  try {
    await patch(`/api/v1/contacts/${contact.id}`, { blocked: !contact.blocked });
    toast(
      t(contact.blocked ? "admin.contacts.unblocked" : "admin.contacts.blocked_done", { name: contact.name }),
      "ok",
    );
    await search();
  } catch (error) {
    reportError(error);
  }
}

// ---- the wallet: an ordered list of owners -------------------------------------------------

function renderWallet() {
  if (!walletList) return;
  walletList.replaceChildren(
    ...wallet.map((id, index) =>
      el(
        "li",
        {},
        el("span", { class: "grow", text: userName(id) }),
        el("button", {
          type: "button",
          class: "button small",
          text: "↑",
          "aria-label": t("admin.contacts.wallet_up", { name: userName(id) }),
          disabled: index === 0,
          onclick: () => moveOwner(index, -1),
        }),
        el("button", {
          type: "button",
          class: "button small",
          text: "↓",
          "aria-label": t("admin.contacts.wallet_down", { name: userName(id) }),
          disabled: index === wallet.length - 1,
          onclick: () => moveOwner(index, 1),
        }),
        el("button", {
          type: "button",
          class: "button small danger",
          text: "×",
          "aria-label": t("admin.contacts.wallet_remove", { name: userName(id) }),
          onclick: () => {
            wallet.splice(index, 1);
            renderWallet();
            walletAdd.focus();
          },
        }),
      ),
    ),
  );
  const keep = walletAdd.options[0];
  walletAdd.replaceChildren(
    keep,
    ...users
      .filter((user) => !wallet.includes(user.id))
      .map((user) => el("option", { value: String(user.id), text: user.name })),
  );
}

function moveOwner(index, step) {
  const [id] = wallet.splice(index, 1);
  wallet.splice(index + step, 0, id);
  renderWallet();
  const buttons = walletList.children[index + step]?.querySelectorAll("button");
  buttons?.[step < 0 ? 0 : 1]?.focus();
}

document.getElementById("contact-wallet-add-button")?.addEventListener("click", () => {
  const id = Number(walletAdd.value);
  if (id && !wallet.includes(id)) {
    wallet.push(id);
    renderWallet();
  }
});

// ---- create / edit -------------------------------------------------------------------------

function openEditor(contact) {
  editing = contact;
  form.reset();
  form.elements.name.value = contact?.name ?? "";
  form.elements.phone.value = contact?.phone ?? "";
  form.elements.email.value = contact?.email ?? "";
  fillChecklist(tagBox, tags, contact?.tag_ids ?? []);
  document.getElementById("contact-no-tags").hidden = tags.length > 0;
  wallet = [...(contact?.wallet_user_ids ?? [])];
  renderWallet();
  if (form.elements.blocked) form.elements.blocked.checked = contact?.blocked ?? false;
  const identities = document.getElementById("contact-identities");
  const list = contact?.identities ?? [];
  identities.hidden = list.length === 0;
  identities
    .querySelector("ul")
    .replaceChildren(...list.map((identity) => el("li", { text: `${t(`admin.kind.${identity.channel}`)}: ${identity.external_id}` })));
  openDialog(dialog, { editing: contact !== null });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form);
  if (!form.reportValidity()) return;
  const body = {
    name: form.elements.name.value,
    phone: form.elements.phone.value.trim() || null,
    email: form.elements.email.value.trim() || null,
    tag_ids: checkedIds(tagBox),
  };
  if (manager) {
    body.wallet_user_ids = wallet;
    body.blocked = form.elements.blocked.checked;
  }
  try {
    const saved = editing ? await patch(`/api/v1/contacts/${editing.id}`, body) : await post("/api/v1/contacts", body);
    dialog.close();
    toast(t("admin.common.saved", { name: saved.name }), "ok");
    await search();
  } catch (error) {
    showError(form, error);
  }
});

// ---- merge ---------------------------------------------------------------------------------

const mergeDialog = document.getElementById("merge-dialog");
let keeping = null;

async function findDuplicates() {
  const text = document.getElementById("merge-search").value.trim();
  const results = document.getElementById("merge-results");
  try {
    const params = new URLSearchParams({ limit: "20" });
    if (text) params.set("search", text);
    const page = await get(`/api/v1/contacts?${params}`);
    const others = page.contacts.filter((contact) => contact.id !== keeping?.id);
    results.replaceChildren(
      ...others.map((contact) =>
        el(
          "label",
          { class: "check" },
          el("input", { type: "radio", name: "absorb_id", value: String(contact.id), required: true }),
          `${contact.name} — ${reach(contact)}`,
        ),
      ),
    );
    document.getElementById("merge-none").hidden = others.length > 0;
  } catch (error) {
    reportError(error);
  }
}

function openMerge(contact) {
  keeping = contact;
  const mergeForm = mergeDialog.querySelector("form");
  mergeForm.reset();
  document.getElementById("merge-into").textContent = t("admin.contacts.merge_into", { name: contact.name });
  // Duplicates rarely share the whole name; the first word finds "Maria S." for "Maria Silva".
  document.getElementById("merge-search").value = contact.name.split(/\s+/)[0] ?? "";
  document.getElementById("merge-results").replaceChildren();
  openDialog(mergeDialog);
  findDuplicates();
}

if (mergeDialog) {
  setupDialog(mergeDialog);
  const mergeForm = mergeDialog.querySelector("form");
  document.getElementById("merge-find").addEventListener("click", findDuplicates);
  document.getElementById("merge-search").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      findDuplicates();
    }
  });
  mergeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(mergeForm);
    if (!mergeForm.reportValidity() || !keeping) return;
    const absorb = Number(new FormData(mergeForm).get("absorb_id"));
    try {
      const merged = await post(`/api/v1/contacts/${keeping.id}/merge`, { absorb_id: absorb });
      mergeDialog.close();
      toast(t("admin.contacts.merged", { name: merged.name }), "ok");
      await search();
    } catch (error) {
      showError(mergeForm, error);
    }
  });
}

// ---- start ---------------------------------------------------------------------------------

searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  search();
});
tagFilter.addEventListener("change", search);
document.getElementById("contact-blocked-filter").addEventListener("change", search);
more.addEventListener("click", loadMore);
document.getElementById("contact-new").addEventListener("click", () => openEditor(null));

(async () => {
  try {
    [tags, users] = await Promise.all([get("/api/v1/tags"), get("/api/v1/users")]);
  } catch (error) {
    reportError(error);
  }
  tagFilter.append(...tags.map((tag) => el("option", { value: String(tag.id), text: tag.name })));
  await search();
  root.dataset.ready = "true";
})();
