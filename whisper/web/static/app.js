// whisper's page.  Rules: every string from a peer reaches the DOM through textContent
// (never innerHTML); the feed reconnects on its own and resumes from its cursor; the peer
// list is redrawn only when it changes (a redraw under the pointer eats clicks); scrolled
// to the top, the page loads older messages (GET /api/messages?before=SEQ, the history's
// seq when history is on), one page at a time, keeping what is in view where it was.

import { ago, bodyNode, clock, el, fileCard, identityTags, nickSpan, size } from "./render.js";

const $ = (id) => document.getElementById(id);
const MAX_SHOWN = 1500;        // messages kept on the page
const MAX_SEEN = 5000;         // message IDs remembered, to drop what a reconnection resends

const state = {
  cursor: null,      // the feed's Seq cursor; null before the first connect
  oldest: null,      // the oldest Seq shown: where paging back goes on from
  older: "idle",     // paging back: "idle", "loading" or "done" (nothing older)
  seen: new Set(),   // message IDs shown (a reconnection may resend some)
  nick: "",
  peersKey: "",
  usersKey: "",      // the online list drawn (redrawn only when it changes)
  unread: 0,
  retry: 500,
  socket: null,
  files: new Map(),
};

// -- the message list -------------------------------------------------------------------

const list = $("messages");

function atBottom() {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
}

let batch = null;  // while a feed frame is handled: lay out and scroll once, not per event

function append(item) {
  if (batch) {
    batch.push(item);
    return;
  }
  const stick = atBottom();
  list.append(item);
  trim(stick);
}

function trim(stick) {
  while (list.childElementCount > MAX_SHOWN) list.firstElementChild.remove();
  if (stick) list.scrollTop = list.scrollHeight;
}

function inBatch(fn) {
  const stick = atBottom();
  batch = [];
  try { fn(); } finally {
    const items = batch;
    batch = null;
    list.append(...items);
    trim(stick);
  }
}

function showMessage(m) {
  const item = messageItem(m);
  if (!item) return;
  append(item);
  if (!m.Own && !m.History && document.hidden) {
    state.unread += 1;
    document.title = `(${state.unread}) whisper`;
  }
}

function messageItem(m) {
  if (state.oldest === null || m.Seq < state.oldest) state.oldest = m.Seq;
  if (state.seen.has(m.ID)) return null;
  state.seen.add(m.ID);
  if (state.seen.size > MAX_SEEN) state.seen.delete(state.seen.values().next().value);
  const sender = m.Nick || m.Addr;
  const action = m.Body.startsWith("/me ") && !m.File;
  const cls = ["msg", m.Own && "own", m.History && "history", action && "action",
    m.Direct && "direct", m.Trust === "impostor" && "impostor"].filter(Boolean);
  const line = el("span", { class: "line" });
  if (m.History) line.append(el("span", { class: "tag", text: "history" }));
  if (m.File) line.append(el("span", { class: "tag", text: `file #${m.File.Number}` }));
  line.append(...identityTags(m));
  if (action) {
    line.append("* ", nickSpan(sender), bodyNode(m.Body.slice(4)));
  } else {
    line.append(nickSpan(sender));
    if (m.File) {
      line.append(el("br"), fileCard(m.File));
      noteFile({ ...m.File, From: sender });
    } else {
      line.append(bodyNode(m.Body));
    }
    if (m.FileRejected) line.append(el("div", { class: "rejected", text: `file rejected: ${m.FileRejected}` }));
  }
  return el("li", { class: cls.join(" "), "data-testid": "message", title: m.Addr },
    el("time", { class: "time", text: clock(m.Timestamp) }), line);
}

async function loadOlder() {
  if (state.older !== "idle") return;
  state.older = "loading";
  const from = state.oldest === null ? "" : `&before=${state.oldest}`;  // none: the newest
  try {
    const page = await api("GET", `/api/messages?limit=50${from}`);
    const items = page.messages.map(messageItem).filter(Boolean);
    if (page.before === null) {
      items.unshift(el("li", { class: "divider", "data-testid": "beginning", text: "the beginning of the history" }));
    }
    const below = list.scrollHeight - list.scrollTop;  // keep what is in view where it was
    list.prepend(...items);
    list.scrollTop = list.scrollHeight - below;
    state.older = page.before === null ? "done" : "idle";
  } catch (err) {
    state.older = "idle";
    info([`older messages not loaded: ${err.message}`], "error");
  }
}

list.addEventListener("scroll", () => {
  if (list.scrollTop < 40) loadOlder();
});

function info(lines, kind = "info") {
  if (!lines.length) return;  // one item for a reply of several lines (/help, /peers)
  append(el("li", { class: `msg ${kind}`, "data-testid": kind.split(" ")[0] },
    el("span", { class: "time", text: clock() }), el("span", { class: "body", text: lines.join("\n") })));
}

function divider(text) {
  append(el("li", { class: "divider", text }));
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    state.unread = 0;
    document.title = "whisper";
  }
});

// -- side panels ------------------------------------------------------------------------

function renderPeers(peers) {
  const key = JSON.stringify(peers.map((p) => [p.Addr, p.Direction, p.State, p.Error]));
  if (key === state.peersKey) return;
  state.peersKey = key;
  const ul = $("peers");
  const focused = document.activeElement?.closest?.("#peers") ? document.activeElement.dataset.addr : null;
  ul.replaceChildren();
  if (!peers.length) ul.append(el("li", { class: "empty", text: "No links yet: connect to a peer below." }));
  for (const p of peers) {
    const row = el("li", { "data-testid": "peer-row", "data-addr": p.Addr },
      el("span", { class: "dir", text: p.Direction, title: p.Direction === "out" ? "we dialled it" : "it dialled us" }),
      el("span", { class: "peer-addr", text: p.Addr }));
    const label = p.Direction === "out" ? `Disconnect from ${p.Addr}` : `Close the connection from ${p.Addr}`;
    const button = el("button", { class: "disconnect", type: "button", text: "Disconnect",
      "data-testid": "disconnect", "aria-label": label });
    button.dataset.addr = p.Addr;
    button.addEventListener("click", () => disconnect(p.Addr));
    row.append(button);
    if (focused === p.Addr) queueMicrotask(() => button.focus());
    const detail = p.Error && p.State !== "connected" ? `${p.State} · ${p.Error}` : p.State;
    row.append(el("span", { class: `peer-state ${p.State === "connected" ? "connected" : ""}`, text: detail }));
    ul.append(row);
  }
  $("peer-count").textContent = String(peers.filter((p) => p.State === "connected").length);
}

function updateAgo() {
  for (const li of $("users").querySelectorAll("[data-seen]")) li.lastChild.textContent = `heard ${ago(Number(li.dataset.seen))}`;
}

// who is online by presence (ourselves first), then, dimmed, those heard but not online
function renderUsers(who) {
  const key = JSON.stringify([who.online.map((u) => [u.Nick, u.Addr, u.Linked]), who.heard.map((u) => [u.Nick, u.Seen])]);
  if (key === state.usersKey) return;
  state.usersKey = key;
  const ul = $("users");
  ul.replaceChildren();
  for (const u of who.online) {
    const when = u.You ? "you" : u.Linked ? "online · linked" : "online";
    ul.append(el("li", { "data-testid": "user", class: "online", title: u.Addr },
      nickSpan(u.Nick), el("span", { class: "when", text: when })));
  }
  if (!who.online.some((u) => !u.You)) ul.append(el("li", { class: "empty", text: "Nobody else is online yet." }));
  for (const u of who.heard) {
    const li = el("li", { "data-testid": "user", class: "heard", title: `${u.Addr} · not online by presence` },
      nickSpan(u.Nick), el("span", { class: "when", text: `heard ${ago(u.Seen)}` }));
    li.dataset.seen = String(u.Seen);
    ul.append(li);
  }
  $("online-count").textContent = String(who.online.length);
}

function noteFile(f) {
  if (state.files.has(f.Number)) return;
  state.files.set(f.Number, f);
  const ul = $("files");
  ul.querySelector(".empty")?.remove();
  ul.prepend(el("li", { "data-testid": "file" },
    el("span", { class: "file-name", text: f.Name }),
    el("span", { class: "file-meta", text: `${size(f.Size)} · ${f.Type}${f.From ? ` · from ${f.From}` : ""}` }),
    el("a", { href: `/api/files/${f.Number}`, download: f.Name, text: "Download" })));
}

function setMe(me) {
  state.nick = me.Nick;
  $("nick").textContent = me.Nick || "set a nick";
  $("addr").textContent = me.Addr;
}

// -- talking to whisper ---------------------------------------------------------------

async function api(method, path, body, type = "application/json") {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = type === "application/json" ? JSON.stringify(body) : body;
    init.headers["content-type"] = type;
  }
  const response = await fetch(path, init);
  let data = {};
  try { data = await response.json(); } catch { /* an empty or non-JSON answer */ }
  if (response.status === 401) banner("This page's session has ended: open the address whisper printed (with ?token=...).");
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

function banner(text) {
  const b = $("banner");
  b.textContent = text;
  b.hidden = !text;
}

async function submitLine(text) {
  if (text.startsWith("/") && !text.startsWith("//")) {
    const reply = await api("POST", "/api/commands", { Line: text });
    if (reply.clear) { list.replaceChildren(); }
    if (reply.lines.length) info(reply.lines);
    return;
  }
  await api("POST", "/api/messages", { Body: text.startsWith("//") ? text.slice(1) : text });
}

async function disconnect(addr) {
  try { await api("DELETE", `/api/peers/${encodeURIComponent(addr)}`); }
  catch (err) { info([err.message], "error"); }
}

async function sendFile(file) {
  info([`sending ${file.name} (${size(file.size)})…`]);
  try {
    await api("POST", `/api/files?name=${encodeURIComponent(file.name)}`, file, file.type || "application/octet-stream");
  } catch (err) { info([`${file.name} not sent: ${err.message}`], "error"); }
}

// -- the feed ---------------------------------------------------------------------------

function connectFeed() {
  const since = state.cursor === null ? "" : `?since=${state.cursor}`;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/feed${since}`);
  state.socket = socket;
  socket.addEventListener("open", () => {
    state.retry = 500;
    $("link-state").textContent = "live";
    $("link-state").classList.add("live");
    banner("");
  });
  socket.addEventListener("message", (e) => {
    inBatch(() => {
      for (const line of String(e.data).split("\n")) {
        if (line) handle(JSON.parse(line));
      }
    });
    if (list.scrollHeight <= list.clientHeight) loadOlder();  // nothing to scroll yet
  });
  socket.addEventListener("close", () => {
    $("link-state").textContent = "reconnecting…";
    $("link-state").classList.remove("live");
    // a whisper restarted with a new token refuses this page's cookie: api() says so
    api("GET", "/api/me").catch(() => {});
    setTimeout(connectFeed, state.retry);
    state.retry = Math.min(state.retry * 2, 8000);
  });
}

function handle(event) {
  switch (event.Event) {
    case "message":
      state.cursor = event.Seq;
      showMessage(event);
      break;
    case "me":
      if (state.cursor !== null && event.Next < state.cursor) {
        divider("whisper restarted");  // its cursor starts again from 1
        state.cursor = 0;
        state.oldest = null;
        state.older = "idle";
      }
      setMe(event);
      break;
    case "peers": renderPeers(event.peers); break;
    case "users": renderUsers(event); break;
    case "notice": info([event.Text], event.Warning ? "notice warning" : "notice"); break;
    case "missed":
      if (event.Messages) divider(`${event.Messages} messages not shown: this page fell behind`);
      if (event.Events) info([`${event.Events} notices not shown: this page fell behind`], "notice warning");
      break;
    default: break;
  }
}

// -- input --------------------------------------------------------------------------------

const input = $("message-input");

function grow() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, window.innerHeight * 0.4)}px`;
}

async function send() {
  const text = input.value;
  if (!text.trim()) return;
  input.value = "";
  grow();
  try { await submitLine(text); }
  catch (err) {
    info([err.message], "error");
    if (!input.value) { input.value = text; grow(); }
  }
}

input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
input.addEventListener("input", grow);
$("compose").addEventListener("submit", (e) => { e.preventDefault(); send(); input.focus(); });

$("peer-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const field = $("peer-input");
  const addr = field.value.trim();
  if (!addr) return;
  try {
    const reply = await api("POST", "/api/peers", { Addr: addr });
    field.value = "";
    if (reply.Text) info([reply.Text]);
  } catch (err) { info([err.message], "error"); }
});

// the nick: a button that turns into a field
const nickButton = $("nick");
const nickForm = $("nick-form");
const nickInput = $("nick-input");
nickButton.addEventListener("click", () => {
  nickForm.hidden = false;
  nickButton.hidden = true;
  nickInput.value = state.nick;
  nickInput.focus();
  nickInput.select();
});
function closeNick() { nickForm.hidden = true; nickButton.hidden = false; }
nickInput.addEventListener("keydown", (e) => { if (e.key === "Escape") { closeNick(); nickButton.focus(); } });
nickInput.addEventListener("blur", closeNick);
nickForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const nick = nickInput.value.trim();
  closeNick();
  if (!nick || nick === state.nick) return;
  try { setMe(await api("PUT", "/api/me", { Nick: nick })); info([`you are now ${nick}`]); }
  catch (err) { info([err.message], "error"); }
  input.focus();
});

// files: the button and drag and drop
$("file-input").addEventListener("change", (e) => {
  for (const file of e.target.files) sendFile(file);
  e.target.value = "";
});
const chat = document.querySelector(".chat");
let dragDepth = 0;
chat.addEventListener("dragenter", (e) => { if ([...e.dataTransfer.types].includes("Files")) { dragDepth += 1; $("drop-hint").hidden = false; } });
chat.addEventListener("dragleave", () => { dragDepth = Math.max(0, dragDepth - 1); if (!dragDepth) $("drop-hint").hidden = true; });
chat.addEventListener("dragover", (e) => e.preventDefault());
chat.addEventListener("drop", (e) => {
  e.preventDefault();
  dragDepth = 0;
  $("drop-hint").hidden = true;
  for (const file of e.dataTransfer.files) sendFile(file);
});

// the side panel on a phone
const toggle = $("panel-toggle");
toggle.addEventListener("click", () => {
  const open = $("side").classList.toggle("open");
  toggle.setAttribute("aria-expanded", String(open));
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && $("side").classList.contains("open")) {
    $("side").classList.remove("open");
    toggle.setAttribute("aria-expanded", "false");
    toggle.focus();
  }
});

setInterval(updateAgo, 30000);

// -- start --------------------------------------------------------------------------------

async function start() {
  if (window.matchMedia("(max-width: 760px)").matches) input.placeholder = "Message · /help";
  input.focus();
  try {
    const { files } = await api("GET", "/api/files");
    if (!files.length) $("files").append(el("li", { class: "empty", text: "Files people send show here." }));
    for (const f of files) noteFile(f);
  } catch { /* the feed says what is wrong */ }
  connectFeed();
}
start();
