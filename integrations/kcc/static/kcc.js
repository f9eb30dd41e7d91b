/* KCC console: queue, live chat and call-back requests.
 *
 * Plain JS, no libraries. Every text from citizens, the assistant or
 * colleagues is put in the page with textContent, never as HTML.
 * Real time: a long poll on /kcc/api/poll (the server answers as soon as
 * something changed, else after 20 s); every POST carries the CSRF token.
 */
(function () {
  "use strict";

  const CSRF = document.querySelector('meta[name="csrf-token"]').content;
  const state = {
    etag: "",
    conversation: null,          // id of the conversation shown
    data: null,                  // last snapshot
    receivedAt: Date.now(),
    poller: null,                // AbortController of the running poll
    quickReplies: [],
    statuses: {},
  };
  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text != null) { node.textContent = String(text); }
    return node;
  }

  async function api(path, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    opts.headers = Object.assign({ "X-Requested-With": "fetch", "Accept": "application/json" }, opts.headers);
    if (opts.method && opts.method !== "GET") {
      opts.headers["X-CSRF-Token"] = CSRF;
      if (opts.body !== undefined) {
        opts.headers["Content-Type"] = "application/json";
        opts.body = JSON.stringify(opts.body);
      }
    }
    const res = await fetch(path, opts);
    if (res.status === 401) {
      location.href = "/staff/login?next=" + encodeURIComponent(location.pathname);
      throw new Error("login");
    }
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    return { status: res.status, body: body || {} };
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const m = Math.floor(seconds / 60);
    const s = seconds % 60;
    return m + ":" + String(s).padStart(2, "0");
  }

  function timeOf(iso) {
    if (!iso) { return ""; }
    const m = /T(\d\d:\d\d)/.exec(iso);
    return m ? m[1] : "";
  }

  function stateLabel(item) {
    if (item.state === "active") { return item.mine ? "In gesprek met u" : "In gesprek met " + (item.employee || "een collega"); }
    if (item.citizen_left) { return "Inwoner is weg"; }
    if (item.callback_offered) { return "Wacht (terugbellen aangeboden)"; }
    return "Wacht";
  }

  // ------------------------------------------------------------------ queue

  function renderQueue() {
    const items = (state.data && state.data.queue) || [];
    const body = $("queue").querySelector("tbody");
    body.textContent = "";
    $("queue-count").textContent = String(items.filter((i) => i.state === "waiting").length);
    $("queue-empty").hidden = items.length > 0;
    $("queue").hidden = items.length === 0;
    items.forEach((item) => {
      const row = el("tr");
      row.dataset.id = String(item.id);
      if (item.id === state.conversation) { row.className = "selected"; }
      const wait = el("td", "wait");
      wait.dataset.seconds = String(item.waiting_seconds);
      wait.dataset.counting = item.state === "waiting" ? "1" : "0";
      wait.textContent = duration(item.waiting_seconds);
      row.append(wait, el("td", null, item.topic || "Algemene vraag"), el("td", null, item.channel_label),
                 el("td", null, stateLabel(item)));
      const cell = el("td");
      const open = el("button", "small", item.id === state.conversation ? "Geopend" : "Bekijken");
      open.type = "button";
      open.setAttribute("aria-label", "Bekijk gesprek over " + (item.topic || "een vraag"));
      open.addEventListener("click", () => openConversation(item.id));
      cell.appendChild(open);
      row.appendChild(cell);
      body.appendChild(row);
    });
  }

  function tickWaits() {
    const passed = (Date.now() - state.receivedAt) / 1000;
    document.querySelectorAll("td.wait").forEach((cell) => {
      const base = Number(cell.dataset.seconds || 0);
      cell.textContent = duration(cell.dataset.counting === "1" ? base + passed : base);
    });
  }

  // ------------------------------------------------------------------ conversation

  const WHO = { inwoner: "Inwoner", assistent: "Assistent", medewerker: "Medewerker" };

  function renderTranscript(list, lines) {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.textContent = "";
    (lines || []).forEach((line) => {
      const item = el("li", "line line--" + line.van);
      const head = el("p", "line-head");
      let who = WHO[line.van] || line.van;
      if (line.van === "medewerker" && line.medewerker) { who += " (" + line.medewerker + ")"; }
      head.append(el("span", "who", who), el("span", "when", timeOf(line.tijd)));
      item.appendChild(head);
      item.appendChild(el("p", "text", line.tekst));
      if (line.knoppen && line.knoppen.length) {
        item.appendChild(el("p", "buttons", "Knoppen: " + line.knoppen.join(" | ")));
      }
      list.appendChild(item);
    });
    if (atBottom || list.dataset.count !== String((lines || []).length)) { list.scrollTop = list.scrollHeight; }
    list.dataset.count = String((lines || []).length);
  }

  function renderAnswers(dl, answers, empty) {
    dl.textContent = "";
    (answers || []).forEach((a) => {
      dl.append(el("dt", null, a.vraag + (a.flow ? " (" + a.flow + ")" : "")), el("dd", null, a.antwoord));
    });
    if (empty) { empty.hidden = (answers || []).length > 0; }
  }

  function renderConversation() {
    const conv = state.data && state.data.conversation;
    const section = $("conversation");
    if (!state.conversation || !conv) { section.hidden = true; return; }
    section.hidden = false;
    $("conv-title").textContent = "Gesprek: " + (conv.topic || "Algemene vraag");
    $("conv-meta").textContent = "Kanaal: " + conv.channel_label + " · " + stateLabel(conv);
    renderTranscript($("transcript"), conv.transcript);
    renderAnswers($("answers"), conv.answers, $("answers-empty"));
    $("accept").hidden = !conv.can_accept;
    const replying = !!conv.can_reply;
    if ($("reply").hidden === replying) {
      $("reply").hidden = !replying;
      if (replying) { $("reply-text").focus(); }
    }
    let notice = "";
    if (conv.state === "closed" || conv.state === "expired" || conv.state === "callback" || conv.state === "cancelled") {
      notice = conv.state === "expired" ? "De inwoner heeft de chat verlaten. Het gesprek is gesloten."
        : conv.state === "callback" ? "De inwoner koos voor terugbellen." : "Dit gesprek is afgesloten.";
    } else if (conv.state === "active" && !conv.mine) {
      notice = "Een collega voert dit gesprek.";
    } else if (conv.citizen_left) {
      notice = "De inwoner heeft de chat gesloten. Misschien komt hij of zij terug.";
    }
    $("conv-notice").textContent = notice;
  }

  function openConversation(id) {
    state.conversation = id;
    $("conv-notice").textContent = "";
    restartPoll();
  }

  // ------------------------------------------------------------------ polling

  function apply(body) {
    state.data = body;
    state.etag = body.etag || "";
    state.receivedAt = Date.now();
    renderQueue();
    renderConversation();
  }

  function restartPoll() {
    if (state.poller) { state.poller.abort(); }
    state.etag = "";
    pollLoop();
  }

  async function pollLoop() {
    const controller = new AbortController();
    state.poller = controller;
    let failures = 0;
    while (state.poller === controller) {
      const params = new URLSearchParams({ etag: state.etag });
      if (state.conversation) { params.set("conversation", String(state.conversation)); }
      try {
        const res = await api("/kcc/api/poll?" + params.toString(), { signal: controller.signal });
        if (state.poller !== controller) { return; }
        if (res.status === 200) {
          failures = 0;
          $("connection").textContent = "";
          apply(res.body);
        } else {
          throw new Error("status " + res.status);
        }
      } catch (err) {
        if (controller.signal.aborted || err.message === "login") { return; }
        failures += 1;
        $("connection").textContent = "Geen verbinding met de server. Ik probeer het opnieuw.";
        await new Promise((r) => setTimeout(r, Math.min(1000 * failures, 5000)));
      }
    }
  }

  // ------------------------------------------------------------------ actions

  async function accept() {
    const id = state.conversation;
    const res = await api("/kcc/api/conversations/" + id + "/accept", { method: "POST" });
    if (res.status === 409) {
      $("conv-notice").textContent = res.body.message || "Een collega heeft dit gesprek al aangenomen.";
    }
    restartPoll();
  }

  async function send(event) {
    event.preventDefault();
    const box = $("reply-text");
    const text = box.value.trim();
    if (!text) { return; }
    $("send").disabled = true;
    try {
      const res = await api("/kcc/api/conversations/" + state.conversation + "/messages",
                            { method: "POST", body: { text } });
      if (res.status === 200) {
        box.value = "";
      } else {
        $("conv-notice").textContent = "Het bericht is niet verstuurd (" + (res.body.error || res.status) + ").";
      }
    } finally {
      $("send").disabled = false;
      box.focus();
    }
  }

  async function handBack() {
    const res = await api("/kcc/api/conversations/" + state.conversation + "/handback", { method: "POST" });
    if (res.status !== 200) {
      $("conv-notice").textContent = "Teruggeven lukte niet (" + (res.body.error || res.status) + ").";
    }
    restartPoll();
  }

  function renderQuickReplies() {
    const box = $("quick");
    box.textContent = "";
    state.quickReplies.forEach((text) => {
      const b = el("button", "small", text);
      b.type = "button";
      b.addEventListener("click", () => {
        const area = $("reply-text");
        area.value = area.value ? area.value + " " + text : text;
        area.focus();
      });
      box.appendChild(b);
    });
  }

  // ------------------------------------------------------------------ call-backs

  async function loadCallbacks() {
    const res = await api("/kcc/api/callbacks");
    const items = (res.body && res.body.callbacks) || [];
    const body = $("callbacks").querySelector("tbody");
    body.textContent = "";
    $("callbacks-empty").hidden = items.length > 0;
    $("callbacks").hidden = items.length === 0;
    items.forEach((item) => {
      const row = el("tr");
      row.append(el("td", null, item.zaaknummer), el("td", null, (item.created_at || "").slice(0, 16).replace("T", " ")),
                 el("td", null, item.naam), el("td", null, item.telefoon), el("td", null, item.vraag),
                 el("td", null, item.dagdeel));
      const statusCell = el("td");
      const select = el("select");
      select.setAttribute("aria-label", "Status van " + item.zaaknummer);
      Object.keys(state.statuses).forEach((key) => {
        const option = el("option", null, state.statuses[key]);
        option.value = key;
        if (key === item.status) { option.selected = true; }
        select.appendChild(option);
      });
      select.addEventListener("change", async () => {
        await api("/kcc/api/callbacks/" + encodeURIComponent(item.zaaknummer) + "/status",
                  { method: "POST", body: { status: select.value } });
        loadCallbacks();
      });
      statusCell.appendChild(select);
      const action = el("td");
      const open = el("button", "small", "Gesprek");
      open.type = "button";
      open.addEventListener("click", () => showCallback(item.zaaknummer));
      action.appendChild(open);
      row.append(statusCell, action);
      body.appendChild(row);
    });
  }

  async function showCallback(number) {
    const res = await api("/kcc/api/callbacks/" + encodeURIComponent(number));
    if (res.status !== 200) { return; }
    $("callback-detail").hidden = false;
    $("cbd-number").textContent = number;
    renderAnswers($("cbd-answers"), res.body.answers, null);
    renderTranscript($("cbd-transcript"), res.body.transcript);
  }

  function showTab(name) {
    const queue = name === "queue";
    $("tab-queue").hidden = !queue;
    $("tab-callbacks").hidden = queue;
    $("tab-btn-queue").setAttribute("aria-pressed", String(queue));
    $("tab-btn-callbacks").setAttribute("aria-pressed", String(!queue));
    if (!queue) { loadCallbacks(); }
  }

  // ------------------------------------------------------------------ start

  async function start() {
    $("accept").addEventListener("click", accept);
    $("reply").addEventListener("submit", send);
    $("handback").addEventListener("click", handBack);
    $("reply-text").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("reply").requestSubmit(); }
    });
    $("tab-btn-queue").addEventListener("click", () => showTab("queue"));
    $("tab-btn-callbacks").addEventListener("click", () => showTab("callbacks"));
    const res = await api("/kcc/api/config");
    state.quickReplies = res.body.quick_replies || [];
    state.statuses = res.body.callback_statuses || {};
    renderQuickReplies();
    setInterval(tickWaits, 1000);
    pollLoop();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
