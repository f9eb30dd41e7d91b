/*
 * Chat widget of the municipal assistant.
 *
 * Embed with one tag (served by the assistant itself, no CDN):
 *   <script src="https://ASSISTANT/webchat/static/widget.js" defer
 *           data-channel="website"          (or "hulpplein")
 *           data-storage="session"          (or "local": keep the chat after closing the browser)
 *           data-identity-token="..."       (optional: the signed DigiD identity token)
 *           data-open="true"                (optional: open the chat at once)
 *           data-server="https://ASSISTANT" (optional: when the script is served from elsewhere)
 *           data-init-payload="/greet"      (optional: what starts a new conversation)
 *           data-text-size="3"              (optional: default text size step 1-5 until the user picks one)
 *           data-mount="#element"           (optional: the chat fills this element and stays open; the
 *                                            host page owns the conversation: no launcher, close or
 *                                            "Nieuw gesprek" button. Used by the Digitaal Hulpplein page.)
 *   ></script>
 *
 * JS API: window.GemeenteChat.open(), .close(), .newConversation(),
 *         .setIdentityToken(token), .renderText(text) -> DocumentFragment (the safe renderer),
 *         .setMetadata({key: value}) (extra message metadata; the server keeps only what it knows),
 *         .endConversation() -> Promise<{closed}> (ends the conversation for good: the server
 *           forgets the session, storage/cookies of the chat and the visible history are cleared).
 * Custom payloads from the bot are not shown in the chat; they are dispatched as the DOM event
 * "gemeentechat:custom" (detail = the payload), which bubbles up to document and window.
 *
 * Bot and user text is only ever put in the page as text (textContent / text nodes);
 * the renderer knows **bold**, [label](https://...) and bare http(s) links, nothing else.
 * The socket.io client below speaks Engine.IO v4 / Socket.IO v5 over a WebSocket.
 */
(function () {
  "use strict";
  if (window.GemeenteChat && window.GemeenteChat.version) {
    return;
  }

  const script = document.currentScript ||
    document.querySelector('script[src*="/webchat/static/widget.js"]');
  const data = (script && script.dataset) || {};
  const scriptUrl = new URL(script ? script.src : location.href, location.href);
  const SERVER = String(data.server || scriptUrl.origin).replace(/\/+$/, "");
  const CHANNEL = data.channel === "hulpplein" ? "hulpplein" : "website";
  const INIT_PAYLOAD = data.initPayload || "/greet";
  const EMBEDDED = typeof data.mount === "string" && data.mount !== "";
  const CLOSE_PATH = "/webchat/session/close";
  const KEY_SESSION = "gemeentechat.session";
  const KEY_OPEN = "gemeentechat.open";
  const KEY_PREFS = "gemeentechat.prefs";
  const SCALES = [1, 1.15, 1.3, 1.5, 1.75];
  const DEFAULT_SCALE = Math.min(SCALES.length - 1, Math.max(0, (parseInt(data.textSize, 10) || 1) - 1));
  const SVG_NS = "http://www.w3.org/2000/svg";
  const ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
    close: "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4L12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z",
    speaker: "M3 9v6h4l5 5V4L7 9H3zm13.5 3a4.5 4.5 0 0 0-2.5-4v8a4.5 4.5 0 0 0 2.5-4zM14 3.2v2.1a7 7 0 0 1 0 13.4v2.1a9 9 0 0 0 0-17.6z",
  };

  // ------------------------------------------------------------------ storage

  function makeStore(kind) {
    try {
      const store = window[kind];
      store.setItem("gemeentechat.test", "1");
      store.removeItem("gemeentechat.test");
      return store;
    } catch (e) {
      const memory = {};
      return {
        getItem: (k) => (Object.prototype.hasOwnProperty.call(memory, k) ? memory[k] : null),
        setItem: (k, v) => { memory[k] = String(v); },
        removeItem: (k) => { delete memory[k]; },
      };
    }
  }
  const sessionStore = makeStore(data.storage === "local" ? "localStorage" : "sessionStorage");
  const prefStore = makeStore("localStorage");
  function readJson(store, key) {
    try { return JSON.parse(store.getItem(key) || "null"); } catch (e) { return null; }
  }
  function writeJson(store, key, value) {
    try { store.setItem(key, JSON.stringify(value)); } catch (e) { /* storage full or blocked */ }
  }

  // ------------------------------------------------------------------ socket.io client

  class SocketClient {
    constructor(server, path) {
      this.url = (server + path.replace(/\/+$/, "") + "/?EIO=4&transport=websocket").replace(/^http/, "ws");
      this.handlers = {};
      this.acks = {};
      this.ackId = 0;
      this.ws = null;
      this.connected = false;
      this.stopped = true;
      this.attempt = 0;
      this.retryTimer = null;
      this.heartbeatTimer = null;
      this.heartbeatMs = 45000;
    }
    on(event, fn) { (this.handlers[event] = this.handlers[event] || []).push(fn); }
    fire(event, args) {
      (this.handlers[event] || []).forEach((fn) => {
        try { fn.apply(null, args || []); } catch (e) { console.error(e); }
      });
    }
    open() {
      this.stopped = false;
      clearTimeout(this.retryTimer);
      if (this.ws && this.ws.readyState <= 1) { return; }
      let ws;
      try { ws = new WebSocket(this.url); } catch (e) { this.retry(); return; }
      this.ws = ws;
      ws.onmessage = (ev) => { if (this.ws === ws && typeof ev.data === "string") { this.onPacket(ev.data); } };
      ws.onclose = () => { if (this.ws === ws) { this.onClose(); } };
    }
    close() {
      this.stopped = true;
      clearTimeout(this.retryTimer);
      if (this.ws) { this.ws.close(); }
    }
    send(raw) { if (this.ws && this.ws.readyState === 1) { this.ws.send(raw); } }
    emit(event, payload, ack) {
      if (!this.connected) { return false; }
      let id = "";
      if (ack) { id = String(++this.ackId); this.acks[id] = ack; }
      this.send("42" + id + JSON.stringify([event, payload]));
      return true;
    }
    heartbeat() {
      clearTimeout(this.heartbeatTimer);
      this.heartbeatTimer = setTimeout(() => { if (this.ws) { this.ws.close(); } }, this.heartbeatMs);
    }
    onPacket(packet) {
      const type = packet.charAt(0);
      if (type === "0") {                       // Engine.IO open
        try {
          const info = JSON.parse(packet.slice(1));
          this.heartbeatMs = (info.pingInterval || 25000) + (info.pingTimeout || 20000);
        } catch (e) { /* keep the default */ }
        this.heartbeat();
        this.send("40");                        // connect to the main namespace
      } else if (type === "2") {                // ping -> pong
        this.heartbeat();
        this.send("3");
      } else if (type === "1") {
        this.ws.close();
      } else if (type === "4") {
        this.onSocketPacket(packet.slice(1));
      }
    }
    onSocketPacket(packet) {
      const type = packet.charAt(0);
      const rest = packet.slice(1);
      if (rest.charAt(0) === "/") { return; }   // other namespaces: not used
      if (type === "0") {
        this.connected = true;
        this.attempt = 0;
        this.fire("connect");
      } else if (type === "1") {
        this.ws.close();
      } else if (type === "2" || type === "3") {
        const match = /^(\d*)([\s\S]*)$/.exec(rest);
        let args;
        try { args = JSON.parse(match[2]); } catch (e) { return; }
        if (!Array.isArray(args)) { return; }
        if (type === "2") {
          this.fire(String(args[0]), args.slice(1));
        } else {
          const fn = this.acks[match[1]];
          delete this.acks[match[1]];
          if (fn) { fn.apply(null, args); }
        }
      } else if (type === "4") {
        this.fire("connect_error", [rest]);
      }
    }
    onClose() {
      const was = this.connected;
      this.connected = false;
      this.ws = null;
      this.acks = {};
      clearTimeout(this.heartbeatTimer);
      if (was) { this.fire("disconnect"); }
      if (!this.stopped) { this.retry(); }
    }
    retry() {
      const delay = Math.min(10000, 1000 * Math.pow(2, this.attempt++)) * (0.75 + Math.random() * 0.5);
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.open(), delay);
    }
  }

  // ------------------------------------------------------------------ safe text rendering

  const TOKEN_RE = /\*\*([^*\n]+?)\*\*|\[([^\]\n]{1,200})\]\(([^)\s]{1,2000})\)|(https?:\/\/[^\s<>"']+)/g;

  function safeUrl(href) {
    try {
      const url = new URL(href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function srOnly(text) {
    const span = document.createElement("span");
    span.className = "gc-sr-only";
    span.textContent = text;
    return span;
  }

  function makeLink(href, label) {
    const url = safeUrl(href);
    if (!url) { return null; }
    const a = document.createElement("a");
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.textContent = label;
    a.appendChild(srOnly(" (opent in een nieuw venster)"));
    return a;
  }

  /** Text -> DocumentFragment with only text nodes, <br>, <strong> and safe <a>. */
  function renderText(text) {
    const fragment = document.createDocumentFragment();
    String(text == null ? "" : text).split("\n").forEach((line, index) => {
      if (index > 0) { fragment.appendChild(document.createElement("br")); }
      let last = 0;
      let match;
      TOKEN_RE.lastIndex = 0;
      while ((match = TOKEN_RE.exec(line)) !== null) {
        if (match.index > last) { fragment.appendChild(document.createTextNode(line.slice(last, match.index))); }
        if (match[1] !== undefined) {
          const strong = document.createElement("strong");
          strong.textContent = match[1];
          fragment.appendChild(strong);
        } else if (match[2] !== undefined) {
          fragment.appendChild(makeLink(match[3], match[2]) || document.createTextNode(match[0]));
        } else {
          let url = match[4];
          const trail = /[.,;:!?)\]]+$/.exec(url);
          const tail = trail ? trail[0] : "";
          if (tail) { url = url.slice(0, -tail.length); }
          const link = makeLink(url, url);
          fragment.appendChild(link || document.createTextNode(url));
          if (tail) { fragment.appendChild(document.createTextNode(tail)); }
        }
        last = TOKEN_RE.lastIndex;
      }
      if (last < line.length) { fragment.appendChild(document.createTextNode(line.slice(last))); }
    });
    return fragment;
  }

  function plainText(text) {
    return String(text || "")
      .replace(/\*\*([^*\n]+?)\*\*/g, "$1")
      .replace(/\[([^\]\n]+)\]\([^)\s]+\)/g, "$1");
  }

  // ------------------------------------------------------------------ read aloud

  const speech = ("speechSynthesis" in window && "SpeechSynthesisUtterance" in window) ? window.speechSynthesis : null;

  function dutchVoice() {
    const voices = speech.getVoices() || [];
    return voices.find((v) => /^nl[-_]NL/i.test(v.lang)) || voices.find((v) => /^nl\b/i.test(v.lang)) || null;
  }

  function speak(text, interrupt) {
    if (!speech) { return; }
    if (interrupt) { speech.cancel(); }
    const utterance = new SpeechSynthesisUtterance(plainText(text).replace(/https?:\/\/\S+/g, "link"));
    utterance.lang = "nl-NL";
    utterance.rate = 0.95;
    const voice = dutchVoice();
    if (voice) { utterance.voice = voice; }
    speech.speak(utterance);
  }

  // ------------------------------------------------------------------ state

  const storedPrefs = readJson(prefStore, KEY_PREFS) || {};
  const state = {
    config: {
      assistant_name: "de digitale assistent", title: "Digitale assistent", gemeente: "",
      colours: null, socket_path: "/webchat/socket.io",
    },
    session: readJson(sessionStore, KEY_SESSION),
    resumed: false,
    ready: false,
    open: false,
    needGreeting: false,
    queue: [],
    identityToken: data.identityToken || null,
    extraMetadata: {},
    prefs: {
      scale: Number.isInteger(storedPrefs.scale) ? Math.min(SCALES.length - 1, Math.max(0, storedPrefs.scale)) : DEFAULT_SCALE,
      contrast: storedPrefs.contrast === true,
      autoRead: storedPrefs.autoRead === true,
    },
  };
  let socket = null;
  let ui = null;
  const pending = [];   // API calls made before the widget was built

  function name() { return state.config.assistant_name; }

  // ------------------------------------------------------------------ DOM helpers

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text != null) { node.textContent = text; }
    return node;
  }

  function icon(path) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "gc-icon");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const p = document.createElementNS(SVG_NS, "path");
    p.setAttribute("d", path);
    svg.appendChild(p);
    return svg;
  }

  function button(className, label, onClick) {
    const b = el("button", className);
    b.type = "button";
    if (label != null) { b.textContent = label; }
    b.addEventListener("click", onClick);
    return b;
  }

  function build() {
    const root = el("aside", "gc-root");
    root.setAttribute("aria-label", "Chat met de gemeente");
    root.dataset.busy = "false";
    const colours = state.config.colours || {};
    if (/^#[0-9a-fA-F]{6}$/.test(colours.primary || "") && /^#[0-9a-fA-F]{6}$/.test(colours.on_primary || "")) {
      root.style.setProperty("--gc-brand", colours.primary);
      root.style.setProperty("--gc-on-brand", colours.on_primary);
    }

    if (EMBEDDED) { root.classList.add("gc-root--embedded"); }
    const launcher = button("gc-launcher", null, () => openPanel(true));
    launcher.id = "gc-launcher";
    launcher.hidden = EMBEDDED;
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", "gc-panel");
    launcher.appendChild(icon(ICONS.chat));
    launcher.appendChild(el("span", null, "Chat met " + name()));

    const panel = el("section", "gc-panel");
    panel.id = "gc-panel";
    panel.hidden = true;
    panel.setAttribute("aria-labelledby", "gc-title");

    const header = el("div", "gc-header");
    const heading = el("div", "gc-heading");
    const title = el("h2", "gc-title", name());
    title.id = "gc-title";
    const subtitle = el("p", "gc-subtitle",
      state.config.title + (state.config.gemeente ? " van gemeente " + state.config.gemeente : ""));
    heading.append(title, subtitle);
    const close = button("gc-close", null, closePanel);
    close.append(icon(ICONS.close), el("span", null, "Sluiten"));
    close.setAttribute("aria-label", "Sluiten: chat dichtdoen");
    header.append(heading);
    if (!EMBEDDED) { header.append(close); }

    const toolbar = el("div", "gc-toolbar");
    toolbar.setAttribute("role", "group");
    toolbar.setAttribute("aria-label", "Weergave en voorlezen");
    const smaller = button("gc-tool gc-smaller", null, () => setScale(state.prefs.scale - 1));
    smaller.append(el("span", null, "A−"), srOnly(" Tekst"), document.createTextNode(" kleiner"));
    const larger = button("gc-tool gc-larger", null, () => setScale(state.prefs.scale + 1));
    larger.append(el("span", null, "A+"), srOnly(" Tekst"), document.createTextNode(" groter"));
    const contrast = button("gc-tool gc-contrast", "Hoog contrast", () => {
      state.prefs.contrast = !state.prefs.contrast;
      savePrefs();
      announce(state.prefs.contrast ? "Hoog contrast staat aan." : "Hoog contrast staat uit.");
    });
    const autoRead = button("gc-tool gc-autoread", null, toggleAutoRead);
    autoRead.append(icon(ICONS.speaker), el("span", null, "Voorlezen"));
    const fresh = button("gc-tool gc-new", "Nieuw gesprek", askNewConversation);
    toolbar.append(smaller, larger, contrast);
    if (speech) { toolbar.append(autoRead); }
    if (!EMBEDDED) { toolbar.append(fresh); }

    const log = el("div", "gc-log");
    log.tabIndex = 0;
    log.setAttribute("role", "region");
    log.setAttribute("aria-label", "Gesprek met " + name());
    const list = el("ol", "gc-messages");
    log.appendChild(list);

    const typing = el("div", "gc-typing");
    typing.hidden = true;
    typing.setAttribute("aria-hidden", "true");
    const dots = el("span", "gc-dots");
    dots.append(el("span"), el("span"), el("span"));
    typing.append(dots, el("span", null, name() + " typt een antwoord"));

    const status = el("div", "gc-status");
    status.setAttribute("role", "status");

    const confirm = el("div", "gc-confirm");
    confirm.hidden = true;
    confirm.setAttribute("role", "group");
    confirm.setAttribute("aria-labelledby", "gc-confirm-text");
    const confirmText = el("p", null, "Wilt u een nieuw gesprek beginnen? Dit gesprek ziet u dan niet meer.");
    confirmText.id = "gc-confirm-text";
    const confirmButtons = el("div", "gc-confirm-buttons");
    const confirmYes = button("gc-action gc-confirm-yes", "Ja, nieuw gesprek", () => {
      confirm.hidden = true;
      newConversation();
      ui.input.focus();
    });
    const confirmNo = button("gc-action gc-action--secondary gc-confirm-no", "Nee, verder met dit gesprek", () => {
      confirm.hidden = true;
      ui.fresh.focus();
    });
    confirmButtons.append(confirmYes, confirmNo);
    confirm.append(confirmText, confirmButtons);

    const form = el("form", "gc-form");
    form.setAttribute("novalidate", "");
    const label = el("label", "gc-sr-only", "Uw bericht aan " + name());
    label.htmlFor = "gc-input";
    const input = el("input", "gc-input");
    input.id = "gc-input";
    input.type = "text";
    input.autocomplete = "off";
    input.setAttribute("enterkeyhint", "send");
    input.placeholder = "Typ hier uw vraag";
    const send = el("button", "gc-send", "Verstuur");
    send.type = "submit";
    form.append(label, input, send);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (sendMessage(input.value)) { input.value = ""; }
      input.focus();
    });

    const live = el("div", "gc-sr-only");
    live.setAttribute("aria-live", "polite");
    live.setAttribute("aria-atomic", "true");

    panel.append(header, toolbar, log, typing, status, confirm, form, live);
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        if (!confirm.hidden) { confirm.hidden = true; ui.fresh.focus(); } else if (!EMBEDDED) { closePanel(); }
      }
    });
    root.append(launcher, panel);
    ui = { root, launcher, panel, log, list, typing, status, input, live, smaller, larger, contrast,
      autoRead, fresh, confirm, confirmYes };
    applyPrefs();
    const mount = EMBEDDED ? document.querySelector(data.mount) : null;
    (mount || document.body).appendChild(root);
  }

  // ------------------------------------------------------------------ preferences

  function savePrefs() {
    writeJson(prefStore, KEY_PREFS, state.prefs);
    applyPrefs();
  }

  function applyPrefs() {
    if (!ui) { return; }
    ui.root.style.setProperty("--gc-scale", String(SCALES[state.prefs.scale]));
    ui.root.classList.toggle("gc-hc", state.prefs.contrast);
    ui.contrast.setAttribute("aria-pressed", String(state.prefs.contrast));
    ui.autoRead.setAttribute("aria-pressed", String(state.prefs.autoRead));
    ui.smaller.setAttribute("aria-disabled", String(state.prefs.scale === 0));
    ui.larger.setAttribute("aria-disabled", String(state.prefs.scale === SCALES.length - 1));
    ui.root.dataset.scale = String(state.prefs.scale);
  }

  function setScale(step) {
    if (step < 0 || step >= SCALES.length) { return; }
    state.prefs.scale = step;
    savePrefs();
    announce("Tekstgrootte " + (step + 1) + " van " + SCALES.length + ".");
    scrollToBottom();
  }

  function toggleAutoRead() {
    state.prefs.autoRead = !state.prefs.autoRead;
    savePrefs();
    if (state.prefs.autoRead) {
      speak("Voorlezen staat aan. Ik lees nieuwe berichten voor.", true);
    } else if (speech) {
      speech.cancel();
      announce("Voorlezen staat uit.");
    }
  }

  // ------------------------------------------------------------------ messages

  let announceTimer = null;
  let announceParts = [];
  function announce(text) {
    if (!ui) { return; }
    announceParts.push(text);
    clearTimeout(announceTimer);
    announceTimer = setTimeout(() => {
      ui.live.textContent = "";
      const message = announceParts.join(" ");
      announceParts = [];
      setTimeout(() => { ui.live.textContent = message; }, 50);
    }, 150);
  }

  function scrollToBottom() {
    if (!ui) { return; }
    ui.log.scrollTop = ui.log.scrollHeight;
    // With very large text on a small screen the whole panel scrolls (the input stays in view).
    if (ui.panel.scrollHeight > ui.panel.clientHeight) { ui.panel.scrollTop = ui.panel.scrollHeight; }
  }

  function removeReplies() {
    ui.list.querySelectorAll(".gc-replies").forEach((group) => group.remove());
  }

  function addUserMessage(text) {
    removeReplies();
    const item = el("li", "gc-msg gc-msg--user");
    const bubble = el("div", "gc-bubble");
    bubble.append(srOnly("U: "), el("p", null, text));
    item.appendChild(bubble);
    ui.list.appendChild(item);
    scrollToBottom();
  }

  function addBotMessage(message, live) {
    if (!message || typeof message !== "object") { return; }
    let text = typeof message.text === "string" ? message.text : "";
    let link = null;
    if (message.custom && typeof message.custom === "object") {
      ui.root.dispatchEvent(new CustomEvent("gemeentechat:custom", { detail: message.custom, bubbles: true }));
      if (typeof message.custom.text === "string") { text = message.custom.text; }
    }
    const attachment = message.attachment && message.attachment.payload;
    if (attachment && typeof attachment.src === "string") {
      link = makeLink(attachment.src, "Bekijk de afbeelding");
    }
    if (!text && !link) { return; }
    const replies = Array.isArray(message.quick_replies) ? message.quick_replies : (message.buttons || []);

    // A KCC employee's message (live chat): same text rendering, labelled "Medewerker".
    const employee = message.from === "medewerker";
    const who = employee ? "Medewerker" : name();
    const item = el("li", employee ? "gc-msg gc-msg--bot gc-msg--medewerker" : "gc-msg gc-msg--bot");
    const bubble = el("div", "gc-bubble");
    if (employee) {
      const label = el("p", "gc-from");
      label.appendChild(el("strong", null, who));
      bubble.appendChild(label);
    } else {
      bubble.appendChild(srOnly(who + ": "));
    }
    if (text) {
      const p = el("p");
      p.appendChild(renderText(text));
      bubble.appendChild(p);
    }
    if (link) {
      const p = el("p");
      p.appendChild(link);
      bubble.appendChild(p);
    }
    const row = el("div", "gc-msg-row");
    row.appendChild(bubble);
    if (speech && text) {
      const readButton = button("gc-speak", null, () => speak(text, true));
      readButton.appendChild(icon(ICONS.speaker));
      readButton.setAttribute("aria-label", "Lees dit bericht voor");
      readButton.title = "Lees dit bericht voor";
      row.appendChild(readButton);
    }
    item.appendChild(row);
    if (replies.length) {
      removeReplies();
      const group = el("div", "gc-replies");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "Kies een antwoord");
      replies.forEach((reply) => {
        if (!reply || typeof reply.title !== "string") { return; }
        const payload = typeof reply.payload === "string" && reply.payload ? reply.payload : reply.title;
        group.appendChild(button("gc-reply", reply.title, () => {
          if (sendMessage(payload, reply.title)) { ui.input.focus(); }
        }));
      });
      item.appendChild(group);
    }
    ui.list.appendChild(item);
    scrollToBottom();
    if (live) {
      announce(who + " zegt: " + plainText(text));
      if (state.prefs.autoRead && text) { speak(text, false); }
    }
  }

  function clearLog() {
    if (ui) { ui.list.textContent = ""; }
  }

  function setBusy(busy) {
    if (!ui) { return; }
    ui.typing.hidden = !busy;
    ui.root.dataset.busy = String(busy);
    if (busy) { scrollToBottom(); }
  }

  function setStatus(text) {
    if (ui && ui.status.textContent !== text) { ui.status.textContent = text; }
  }

  function metadata(buttonTitle) {
    const meta = Object.assign({}, state.extraMetadata, { channel: CHANNEL, page_url: location.origin + location.pathname });
    if (state.identityToken) { meta.identity_token = state.identityToken; }
    if (buttonTitle) { meta.button_title = buttonTitle; }
    return meta;
  }

  function emitMessage(item) {
    return state.ready && socket.emit("user_uttered", {
      message: item.text, session_id: state.session && state.session.id, metadata: metadata(item.title),
    });
  }

  /** Send a user message (text typed, or a button payload with its title). */
  function sendMessage(text, buttonTitle) {
    text = String(text || "").trim();
    if (!text) { return false; }
    // Too long: say so and send nothing; the text stays in the input box to shorten.
    // (The server refuses it too, but a very long one would break the connection.)
    const limit = state.config.max_message_chars || 4000;
    if (Array.from(text).length > limit) {
      addBotMessage({ text: state.config.too_long_text || "Uw bericht is te lang. Typt u een korter bericht?" }, true);
      return false;
    }
    addUserMessage(buttonTitle || text);
    const item = { text, title: buttonTitle || null };
    if (!emitMessage(item)) {
      state.queue.push(item);
      connect();
    }
    setBusy(true);
    return true;
  }

  function sendGreeting() {
    state.needGreeting = false;
    const item = { text: INIT_PAYLOAD, title: null, hidden: true };
    if (!emitMessage(item)) { state.queue.unshift(item); }
    setBusy(true);
  }

  /** Messages typed while offline stay visible until they are sent. */
  function showQueued() {
    state.queue.forEach((item) => { if (!item.hidden) { addUserMessage(item.title || item.text); } });
  }

  function flushQueue() {
    while (state.queue.length && state.ready) {
      if (!emitMessage(state.queue[0])) { return; }
      state.queue.shift();
    }
  }

  // ------------------------------------------------------------------ connection

  function connect() {
    if (!socket) {
      socket = new SocketClient(SERVER, state.config.socket_path || "/webchat/socket.io");
      socket.on("connect", () => {
        setStatus("");
        const session = state.session || {};
        socket.emit("session_request", { session_id: session.id || null, token: session.token || null });
      });
      socket.on("disconnect", () => {
        state.ready = false;
        setBusy(false);
        setStatus(socket.stopped ? "" : "De verbinding is weg. Ik probeer het opnieuw.");
      });
      socket.on("session_token", (info) => {
        if (!info || typeof info.session_id !== "string") { return; }
        state.session = { id: info.session_id, token: info.token };
        state.resumed = info.resumed === true;
        writeJson(sessionStore, KEY_SESSION, state.session);
      });
      socket.on("session_confirm", () => {
        state.ready = true;
        if (state.resumed) {
          socket.emit("history_request", {}, (answer) => {
            const messages = (answer && Array.isArray(answer.messages)) ? answer.messages : [];
            clearLog();
            messages.forEach((m) => {
              if (m.sender === "user") { addUserMessage(String(m.text || "")); } else { addBotMessage(m, false); }
            });
            showQueued();
            if (!messages.length && !state.queue.length) { state.needGreeting = true; }
            afterSessionReady();
          });
        } else {
          clearLog();
          showQueued();
          if (!state.queue.length) { state.needGreeting = true; }
          afterSessionReady();
        }
      });
      socket.on("bot_uttered", (message) => { addBotMessage(message, true); });
      socket.on("user_echo", (info) => { if (info && typeof info.text === "string") { addUserMessage(info.text); } });
      socket.on("typing", (info) => { setBusy(!!(info && info.typing)); });
      socket.on("session_closed", () => { forgetConversation(); });
      socket.on("kcc_state", (info) => {  // live chat with a KCC employee
        const shown = { waiting: "U wacht op een medewerker.", active: "U chat nu met een medewerker van de gemeente." };
        setStatus((info && shown[info.state]) || "");
      });
      window.addEventListener("online", () => { if (socket && !socket.connected) { socket.open(); } });
    }
    if (socket.stopped || !socket.ws) {
      setStatus(state.open ? "Verbinden..." : "");
      socket.open();
    }
  }

  function afterSessionReady() {
    if (state.needGreeting && state.open) { sendGreeting(); }
    flushQueue();
  }

  function askNewConversation() {
    ui.confirm.hidden = false;
    ui.confirmYes.focus();
  }

  function newConversation() {
    if (speech) { speech.cancel(); }
    sessionStore.removeItem(KEY_SESSION);
    state.session = null;
    state.ready = false;
    state.queue = [];
    state.needGreeting = true;
    clearLog();
    setBusy(false);
    if (socket && socket.connected) {
      socket.emit("session_request", { session_id: null, token: null });
    } else {
      connect();
    }
  }

  /** Forget everything of this conversation in the browser: storage, cookies, visible history. */
  function forgetConversation() {
    if (speech) { speech.cancel(); }
    if (socket) { socket.close(); }
    ["sessionStorage", "localStorage"].forEach((kind) => {
      try {
        const store = window[kind];
        for (let i = store.length - 1; i >= 0; i--) {
          const key = store.key(i);
          if (key && key.indexOf("gemeentechat.") === 0) { store.removeItem(key); }
        }
      } catch (e) { /* storage blocked */ }
    });
    [sessionStore, prefStore].forEach((store) => [KEY_SESSION, KEY_OPEN, KEY_PREFS].forEach((k) => store.removeItem(k)));
    document.cookie.split(";").forEach((cookie) => {
      const key = cookie.split("=")[0].trim();
      if (key.indexOf("gemeentechat") === 0) {
        document.cookie = key + "=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/; SameSite=Lax";
      }
    });
    state.session = null;
    state.resumed = false;
    state.ready = false;
    state.queue = [];
    state.needGreeting = true;
    state.identityToken = null;
    state.extraMetadata = {};
    state.prefs = { scale: DEFAULT_SCALE, contrast: false, autoRead: false };
    applyPrefs();
    clearLog();
    setBusy(false);
    setStatus("");
    if (ui) { ui.input.value = ""; ui.confirm.hidden = true; }
  }

  /** End the conversation for good: the server forgets the session, the browser everything else. */
  function endConversation() {
    const session = state.session;
    forgetConversation();
    if (!session || !session.id || !session.token) { return Promise.resolve({ closed: false }); }
    return fetch(SERVER + CLOSE_PATH, {
      method: "POST", credentials: "omit", cache: "no-store", keepalive: true,
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      body: JSON.stringify({ session_id: session.id, token: session.token }),
    }).then((r) => (r.ok ? r.json() : null))
      .then((answer) => ({ closed: !!(answer && answer.closed === true) }))
      .catch(() => ({ closed: false }));
  }

  // ------------------------------------------------------------------ open and close

  function openPanel(focusInput) {
    state.open = true;
    sessionStore.setItem(KEY_OPEN, "1");
    ui.panel.hidden = false;
    ui.launcher.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "true");
    connect();
    if (state.ready && state.needGreeting) { sendGreeting(); }
    if (focusInput) { ui.input.focus(); }
    scrollToBottom();
  }

  function closePanel() {
    if (EMBEDDED) { return; }
    state.open = false;
    sessionStore.removeItem(KEY_OPEN);
    if (speech) { speech.cancel(); }
    ui.confirm.hidden = true;
    ui.panel.hidden = true;
    ui.launcher.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.focus();
  }

  // ------------------------------------------------------------------ start

  function loadCss() {
    return new Promise((resolve) => {
      const link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = SERVER + "/webchat/static/widget.css";
      link.onload = resolve;
      link.onerror = resolve;
      document.head.appendChild(link);
      setTimeout(resolve, 5000);
    });
  }

  function loadConfig() {
    return fetch(SERVER + "/webchat/config.json", { credentials: "omit" })
      .then((r) => (r.ok ? r.json() : null))
      .then((cfg) => { if (cfg && typeof cfg === "object") { Object.assign(state.config, cfg); } })
      .catch(() => { /* keep the defaults */ });
  }

  function start() {
    Promise.all([loadCss(), loadConfig()]).then(() => {
      build();
      const wasOpen = sessionStore.getItem(KEY_OPEN) === "1";
      if (state.session || wasOpen) { connect(); }
      if (wasOpen || EMBEDDED) {
        openPanel(false);
      } else if (data.open === "true") {
        openPanel(true);
      }
      pending.splice(0).forEach((fn) => fn());
      ui.root.dataset.ready = "true";
    });
  }

  function whenBuilt(fn) {
    if (ui) { fn(); } else { pending.push(fn); }
  }

  window.GemeenteChat = {
    version: "1",
    open: () => whenBuilt(() => openPanel(true)),
    close: () => whenBuilt(() => { if (state.open) { closePanel(); } }),
    newConversation: () => whenBuilt(newConversation),
    setIdentityToken: (token) => { state.identityToken = token ? String(token) : null; },
    setMetadata: (values) => {
      Object.keys(values || {}).forEach((key) => {
        const value = values[key];
        if (value === null || value === undefined) { delete state.extraMetadata[key]; } else { state.extraMetadata[key] = value; }
      });
    },
    endConversation: () => (ui ? endConversation() : new Promise((resolve) => whenBuilt(() => endConversation().then(resolve)))),
    renderText,
  };

  if (document.body) {
    start();
  } else {
    document.addEventListener("DOMContentLoaded", start);
  }
})();
