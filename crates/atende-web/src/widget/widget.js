// The web-chat widget page: sends the visitor's messages and polls for the conversation.
// Handwritten, no dependencies. The server put the widget key and the signed visitor token on
// <html>; every request sends the token in `x-atende-visitor` (cookies often do not reach a
// third-party iframe).

const root = document.documentElement;
const key = root.dataset.key;
const token = root.dataset.visitor;
const api = `/api/widget/v1/${encodeURIComponent(key)}/messages`;
const POLL_MS = 1500;
const RETRY_MS = 3000;

const list = document.getElementById('messages');
const form = document.getElementById('composer');
const nameInput = document.getElementById('name');
const bodyInput = document.getElementById('body');
const statusLine = document.getElementById('status');

let lastId = 0;
const shown = new Map(); // message id -> <li>

nameInput.value = localStorage.getItem('atende-widget-name') || '';

function showStatus(text) {
  statusLine.textContent = text || '';
  statusLine.hidden = !text;
}

function timeOf(ms) {
  const date = new Date(ms);
  return date.toLocaleTimeString(root.lang, { hour: '2-digit', minute: '2-digit' });
}

function mediaOf(message) {
  const url = `${message.media_url}?v=${encodeURIComponent(token)}`;
  if (message.kind === 'image' || message.kind === 'sticker') {
    const image = document.createElement('img');
    image.src = url;
    image.alt = '';
    image.loading = 'lazy';
    return image;
  }
  const link = document.createElement('a');
  link.href = url;
  link.target = '_blank';
  link.rel = 'noopener';
  link.textContent = `📎 ${message.kind}`;
  return link;
}

function render(message, element) {
  const item = element || document.createElement('li');
  item.className = message.from;
  item.textContent = '';
  if (message.media_url) item.append(mediaOf(message));
  if (message.body) item.append(document.createTextNode(message.body));
  const time = document.createElement('time');
  time.dateTime = new Date(message.sent_at).toISOString();
  time.textContent = timeOf(message.sent_at);
  item.append(time);
  if (!element) list.append(item);
  shown.set(message.id, item);
  lastId = Math.max(lastId, message.id);
}

function scrollToEnd() {
  list.scrollTop = list.scrollHeight;
}

function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function request(method, url, body) {
  const headers = { 'x-atende-visitor': token };
  let payload;
  if (body instanceof FormData) {
    payload = body; // the browser sets the multipart boundary
  } else if (body) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const response = await fetch(url, { method, headers, body: payload, credentials: 'same-origin' });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error((data.error && data.error.message) || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

async function poll() {
  try {
    const url = lastId ? `${api}?after=${lastId}` : api;
    const data = await request('GET', url);
    let added = false;
    for (const message of data.messages) {
      if (!shown.has(message.id)) {
        render(message);
        added = true;
      }
    }
    if (added) scrollToEnd();
    if (statusLine.dataset.kind === 'offline') {
      statusLine.dataset.kind = '';
      showStatus('');
    }
  } catch (error) {
    statusLine.dataset.kind = 'offline';
    showStatus(root.dataset.offline);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// A message is retried with the same client id until the server has it, so a retry after a
// lost answer never makes it twice.
async function send(body, name, clientId, placeholder, file) {
  try {
    let payload = { name: name || null, body, client_message_id: clientId };
    if (file) {
      payload = new FormData();
      if (name) payload.append('name', name);
      payload.append('body', body);
      payload.append('client_message_id', clientId);
      payload.append('file', file, file.name);
    }
    const data = await request('POST', api, payload);
    placeholder.remove();
    if (data.message && !shown.has(data.message.id)) render(data.message);
    showStatus('');
    scrollToEnd();
  } catch (error) {
    if (error.status && error.status < 500 && error.status !== 429) {
      placeholder.remove();
      showStatus(error.message);
      return;
    }
    showStatus(root.dataset.sendFailed);
    setTimeout(() => send(body, name, clientId, placeholder, file), RETRY_MS);
  }
}

const fileInput = document.getElementById('file');
fileInput.addEventListener('change', () => {
  fileInput.parentElement.classList.toggle('has-file', fileInput.files.length > 0);
});

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const body = bodyInput.value.trim();
  const file = fileInput.files[0];
  if (!body && !file) return;
  const name = nameInput.value.trim();
  localStorage.setItem('atende-widget-name', name);
  const placeholder = document.createElement('li');
  placeholder.className = 'visitor pending';
  placeholder.textContent = file ? `📎 ${file.name} ${body}` : body;
  list.append(placeholder);
  scrollToEnd();
  bodyInput.value = '';
  fileInput.value = '';
  fileInput.parentElement.classList.remove('has-file');
  bodyInput.focus();
  send(body, name, newClientId(), placeholder, file);
});

bodyInput.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});

poll();
