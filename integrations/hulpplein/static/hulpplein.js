/*
 * The Digitaal Hulpplein page: a volunteer helps a visitor with the municipal chat
 * on a shared public computer.
 *
 * Screens: start ("Nieuwe bezoeker") -> consent ("Mag de vrijwilliger u helpen met
 * invullen?") -> workspace (the website chat full-screen with large text, the
 * volunteer's tip panel beside it). The chat is widget.js with data-channel="hulpplein"
 * and data-mount="#hp-chat"; the consent goes along with every message as metadata.
 *
 * The bot sends the volunteer's tips and the print summary as custom payloads; the
 * widget dispatches them as "gemeentechat:custom" events and they never show in the chat.
 *
 * Wipe ("Gesprek afsluiten" or idle time): the widget ends the conversation (the server
 * revokes the session and deletes it), the page clears storage and cookies, asks the
 * server for Clear-Site-Data and loads itself fresh with location.replace(), so neither
 * reload nor the back button brings anything of the visitor back.
 */
(function () {
  "use strict";

  const body = document.body;
  const $ = (id) => document.getElementById(id);
  const KEY_CONSENT = "hulpplein.toestemming";
  const WIPE_URL = "/hulpplein/wissen";
  const CLOSE_URL = "/webchat/session/close";
  const CHAT_SESSION_KEY = "gemeentechat.session";
  const IDLE = Math.max(4, parseInt(body.dataset.idleSeconds, 10) || 600);
  const WARNING = Math.max(1, Math.min(parseInt(body.dataset.warningSeconds, 10) || 60, Math.floor(IDLE / 2)));
  const ACTIVITY_EVENTS = ["pointerdown", "keydown", "input", "wheel", "touchstart"];

  const screens = { start: $("hp-start"), consent: $("hp-toestemming"), work: $("hp-werkplek") };
  let mode = "start";
  let lastActivity = Date.now();
  let openDialog = null;
  let returnFocus = null;
  let wiping = false;
  let chatLoaded = false;

  // ------------------------------------------------------------------ helpers

  function storageGet(key) {
    try { return window.sessionStorage.getItem(key); } catch (e) { return null; }
  }

  function storageSet(key, value) {
    try { window.sessionStorage.setItem(key, value); } catch (e) { /* blocked: the page still works */ }
  }

  function announce(text) {
    const live = $("hp-live");
    live.textContent = "";
    setTimeout(() => { live.textContent = text; }, 50);
  }

  function withTimeout(promise, ms) {
    return Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(null), ms))]);
  }

  function clearCookies() {
    const paths = ["/", location.pathname];
    document.cookie.split(";").forEach((cookie) => {
      const name = cookie.split("=")[0].trim();
      if (!name) { return; }
      paths.forEach((path) => {
        document.cookie = name + "=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=" + path;
      });
    });
  }

  // ------------------------------------------------------------------ screens

  function show(name) {
    mode = name;
    Object.keys(screens).forEach((key) => { screens[key].hidden = key !== name; });
    $("hp-actions").hidden = name !== "work";
    body.dataset.mode = name;
    lastActivity = Date.now();
  }

  /** A chat session left in this tab (another page of the site, a crash) is closed first:
   *  a new visitor always starts a clean conversation. */
  function closeLeftoverChat() {
    let leftover = null;
    try { leftover = JSON.parse(storageGet(CHAT_SESSION_KEY) || "null"); } catch (e) { leftover = null; }
    if (leftover && leftover.id && leftover.token) {
      fetch(CLOSE_URL, {
        method: "POST", credentials: "omit", cache: "no-store", keepalive: true,
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
        body: JSON.stringify({ session_id: leftover.id, token: leftover.token }),
      }).catch(() => { /* the token is gone from the browser anyway */ });
    }
    ["sessionStorage", "localStorage"].forEach((kind) => {
      try {
        const store = window[kind];
        for (let i = store.length - 1; i >= 0; i--) {
          const key = store.key(i);
          if (key && key.indexOf("gemeentechat.") === 0) { store.removeItem(key); }
        }
      } catch (e) { /* blocked */ }
    });
  }

  function startVisitor() {
    closeLeftoverChat();
    show("consent");
    $("hp-toestemming-kop").focus();
  }

  function giveConsent(yes) {
    storageSet(KEY_CONSENT, yes ? "ja" : "nee");
    openWorkspace(yes, true);
  }

  function openWorkspace(yes, focusChat) {
    show("work");
    $("hp-toestemming-status").textContent = yes
      ? "De bezoeker vindt het goed dat u helpt met invullen."
      : "De bezoeker vult zelf in. Help alleen als de bezoeker erom vraagt.";
    body.dataset.consent = yes ? "ja" : "nee";
    loadChat(yes, focusChat);
  }

  function loadChat(yes, focusChat) {
    if (chatLoaded) { return; }
    chatLoaded = true;
    const script = document.createElement("script");
    script.src = body.dataset.widgetSrc;
    script.dataset.channel = "hulpplein";
    script.dataset.mount = "#hp-chat";
    script.dataset.storage = "session";
    script.dataset.textSize = body.dataset.textSize || "3";
    script.onload = () => {
      if (window.GemeenteChat && window.GemeenteChat.setMetadata) {
        window.GemeenteChat.setMetadata({ toestemming_vrijwilliger: yes });
      }
      if (focusChat) { focusWhenReady(); }
    };
    document.body.appendChild(script);
  }

  function focusWhenReady(tries) {
    const input = document.getElementById("gc-input");
    if (input && !openDialog) { input.focus(); return; }
    if ((tries || 0) < 50) { setTimeout(() => focusWhenReady((tries || 0) + 1), 100); }
  }

  // ------------------------------------------------------------------ tips and summary

  function showTip(tip) {
    const box = $("hp-staptip");
    box.dataset.stap = String(tip.stap || "");
    $("hp-staptip-vraag").textContent = tip.label ? "Vraag: " + String(tip.label) : "";
    $("hp-staptip-tekst").textContent = String(tip.tip || "");
  }

  function fillField(name, value) {
    document.querySelectorAll('#hp-print [data-field="' + name + '"]').forEach((node) => {
      node.textContent = value == null ? "" : String(value);
    });
  }

  function fillList(name, items) {
    const list = document.querySelector('#hp-print [data-field="' + name + '"]');
    list.textContent = "";
    (Array.isArray(items) ? items : []).forEach((item) => {
      const li = document.createElement("li");
      li.textContent = String(item);
      list.appendChild(li);
    });
  }

  function showSummary(summary) {
    if (typeof summary.zaaknummer !== "string") { return; }
    fillField("zaaknummer", summary.zaaknummer);
    fillField("onderwerp", summary.onderwerp);
    fillField("datum", summary.datum);
    if (summary.gemeente) { fillField("gemeente", summary.gemeente); }
    fillList("gevraagd", summary.gevraagd);
    fillList("vervolg", summary.vervolg);
    const kcc = summary.kcc || {};
    if (kcc.telefoon) { fillField("telefoon", kcc.telefoon); }
    if (kcc.openingstijden) { fillField("openingstijden", kcc.openingstijden); }
    fillField("code", summary.code || "");
    document.querySelector('#hp-print [data-field="code-regel"]').hidden = !summary.code;
    const status = document.querySelector('#hp-print [data-field="status_uitleg"]');
    status.textContent = summary.status_uitleg || "";
    status.hidden = !summary.status_uitleg;
    $("hp-klaar-nummer").textContent = summary.zaaknummer;
    $("hp-klaar").hidden = false;
    $("hp-afdrukken").hidden = false;
    body.classList.add("hp-has-summary");
    announce("De aanvraag is verstuurd. U kunt de samenvatting afdrukken.");
  }

  window.addEventListener("gemeentechat:custom", (event) => {
    const detail = event.detail || {};
    if (detail.type === "hulpplein_tip") {
      showTip(detail);
    } else if (detail.type === "hulpplein_samenvatting") {
      showSummary(detail);
    }
  });

  function printSummary() {
    window.print();
  }

  // ------------------------------------------------------------------ dialogs

  function setInert(on) {
    ["hp-main", "hp-print"].forEach((id) => { $(id).inert = on; });
    document.querySelector(".hp-header").inert = on;
    document.querySelector(".hp-skip").inert = on;
  }

  function showDialog(dialog, focusId) {
    if (openDialog && openDialog !== dialog) { hideDialog(false); }
    if (!openDialog) { returnFocus = document.activeElement; }
    openDialog = dialog;
    $("hp-dialoog-achtergrond").hidden = false;
    dialog.hidden = false;
    setInert(true);
    $(focusId).focus();
  }

  function hideDialog(restoreFocus) {
    if (!openDialog) { return; }
    openDialog.hidden = true;
    openDialog = null;
    $("hp-dialoog-achtergrond").hidden = true;
    setInert(false);
    if (restoreFocus !== false && returnFocus && document.contains(returnFocus)) { returnFocus.focus(); }
    returnFocus = null;
  }

  document.addEventListener("keydown", (event) => {
    if (!openDialog) { return; }
    if (event.key === "Escape") {
      event.preventDefault();
      stillHere();
    } else if (event.key === "Tab") {
      const buttons = Array.from(openDialog.querySelectorAll("button"));
      const index = buttons.indexOf(document.activeElement);
      event.preventDefault();
      const next = event.shiftKey ? index - 1 : index + 1;
      buttons[(next + buttons.length) % buttons.length].focus();
    }
  });

  function stillHere() {
    lastActivity = Date.now();
    hideDialog(true);
  }

  // ------------------------------------------------------------------ idle wipe

  function onActivity() {
    if (!openDialog || openDialog !== $("hp-inactief")) { lastActivity = Date.now(); }
  }
  ACTIVITY_EVENTS.forEach((type) => document.addEventListener(type, onActivity, { capture: true, passive: true }));

  function tick() {
    if (mode === "start" || wiping) { return; }
    const idle = (Date.now() - lastActivity) / 1000;
    if (idle >= IDLE) {
      wipe("inactief");
      return;
    }
    if (idle >= IDLE - WARNING) {
      $("hp-aftellen").textContent = String(Math.max(1, Math.ceil(IDLE - idle)));
      if (openDialog !== $("hp-inactief")) { showDialog($("hp-inactief"), "hp-inactief-verder"); }
    }
  }
  setInterval(tick, 500);

  // ------------------------------------------------------------------ wipe

  async function wipe(reason) {
    if (wiping) { return; }
    wiping = true;
    body.dataset.wiping = "true";
    hideDialog(false);
    screens.work.hidden = true;       // nothing of the visitor stays on screen meanwhile
    $("hp-print").textContent = "";
    if (window.GemeenteChat && window.GemeenteChat.endConversation) {
      try { await withTimeout(window.GemeenteChat.endConversation(), 5000); } catch (e) { /* wipe anyway */ }
    }
    try { window.sessionStorage.clear(); } catch (e) { /* blocked */ }
    try { window.localStorage.clear(); } catch (e) { /* blocked */ }
    clearCookies();
    try {
      await withTimeout(fetch(WIPE_URL, { method: "POST", credentials: "same-origin", cache: "no-store" }), 5000);
    } catch (e) { /* the page cleared what it can itself */ }
    const params = new URLSearchParams(location.search);
    params.set("gewist", reason);
    location.replace(location.pathname + "?" + params.toString());
  }

  // ------------------------------------------------------------------ start

  function showWipedNotice() {
    const params = new URLSearchParams(location.search);
    const reason = params.get("gewist");
    if (!reason) { return; }
    $("hp-gewist").textContent = reason === "inactief"
      ? "Het vorige gesprek is gewist, omdat er een tijd niets gebeurde."
      : "Het vorige gesprek is gewist.";
    params.delete("gewist");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
  }

  function fixedTips() {
    let tips = [];
    try { tips = JSON.parse(body.dataset.fixedTips || "[]"); } catch (e) { tips = []; }
    const list = $("hp-vaste-tips");
    tips.forEach((tip) => {
      const li = document.createElement("li");
      li.textContent = String(tip);
      list.appendChild(li);
    });
  }

  $("hp-nieuw").addEventListener("click", startVisitor);
  $("hp-toestemming-ja").addEventListener("click", () => giveConsent(true));
  $("hp-toestemming-nee").addEventListener("click", () => giveConsent(false));
  $("hp-afsluiten").addEventListener("click", () => showDialog($("hp-bevestig"), "hp-bevestig-nee"));
  $("hp-bevestig-ja").addEventListener("click", () => wipe("afgesloten"));
  $("hp-bevestig-nee").addEventListener("click", () => hideDialog(true));
  $("hp-inactief-verder").addEventListener("click", stillHere);
  $("hp-inactief-stop").addEventListener("click", () => wipe("afgesloten"));
  $("hp-afdrukken").addEventListener("click", printSummary);
  $("hp-klaar-afdrukken").addEventListener("click", printSummary);
  $("hp-bel").addEventListener("click", () => {
    const panel = $("hp-bel-paneel");
    panel.hidden = !panel.hidden;
    $("hp-bel").setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) { announce("Bel de gemeente: " + panel.querySelector(".hp-phone").textContent.trim()); }
  });

  // A page restored from the back/forward cache after a wipe must not show anything old.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && mode !== "start" && !storageGet(KEY_CONSENT)) { location.reload(); }
  });

  fixedTips();
  showWipedNotice();
  const consent = storageGet(KEY_CONSENT);
  if (consent === "ja" || consent === "nee") {
    openWorkspace(consent === "ja", false);   // a reload during the conversation continues it
  } else {
    show("start");
  }
  body.dataset.ready = "true";
})();
