// whisper's page: building DOM nodes.  Every string from a peer goes in through
// textContent (never innerHTML); attributes are set one by one, never parsed from markup.

const BODY_PREVIEW = 4000;  // characters shown before "show all"

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "title" || key === "href"
             || key === "download" || key === "type" || key === "alt" || key === "src") {
      node.setAttribute(key, value);
    } else node[key] = value;
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

export function hue(nick) {
  let h = 0;
  for (const ch of nick) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 360;
}

export function nickSpan(nick, cls = "nick") {
  const span = el("span", { class: cls, text: nick });
  span.style.setProperty("--hue", String(hue(nick)));
  return span;
}

export function clock(ms) {
  const d = ms ? new Date(ms) : new Date();
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

export function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function ago(seconds) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - seconds));
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

export function bodyNode(text) {
  const body = el("span", { class: "body" });
  if (text.length <= BODY_PREVIEW) {
    body.textContent = text;
    return body;
  }
  body.textContent = text.slice(0, BODY_PREVIEW);
  const more = el("button", { class: "more", type: "button",
    text: `… show all (${(text.length - BODY_PREVIEW).toLocaleString()} more characters)` });
  more.addEventListener("click", () => { body.textContent = text; });
  body.append(more);
  return body;
}

export function fileCard(file) {
  const card = el("div", { class: "file-card" },
    el("span", { class: "file-name", text: file.Name }),
    el("span", { class: "file-meta", text: `${size(file.Size)} · ${file.Type}` }));
  if (file.Preview) {
    card.append(el("img", { src: `/api/files/${file.Number}/preview`, alt: file.Name, loading: "lazy" }));
  }
  card.append(el("a", { href: `/api/files/${file.Number}`, download: file.Name, text: "Download" }));
  return card;
}

// Extension 13: a message's channel, whether it is direct, and its trust when not verified.
export function identityTags(m) {
  const tags = [];
  if (m.Channel) tags.push(el("span", { class: "tag channel", text: m.Channel }));
  if (m.Direct) tags.push(el("span", { class: "tag direct", text: m.To ? `direct to ${m.To}` : "direct" }));
  if (m.Trust === "unsigned") tags.push(el("span", { class: "tag unsigned", text: "unsigned" }));
  if (m.Trust === "impostor") {
    tags.push(el("span", { class: "tag impostor", "data-testid": "impostor", text: `impostor ${m.Fingerprint}` }));
  }
  if (m.Trust === "unbound") tags.push(el("span", { class: "tag", text: `signed ${m.Fingerprint}` }));
  return tags;
}
