/* == Queues, live feed, presence (agent/queues.py, agent/live.py, agent/presence.py) ==
 * Live: one EventSource on /agent/live per console page; each SSE event becomes DOM
 * events on document.body:
 *   "ticket"   {"id": N}  ->  hd-ticket-changed (detail: N) and hd-ticket-N-changed
 *   "presence" {"id": N}  ->  hd-presence-N-changed (detail: N)
 * Keyboard in the queue: j / k move, Enter opens, / focuses the search field.
 * Presence: the beat form's state is "replying" while the Message box has focus or text.
 */
(function () {
  "use strict";

  function fire(name, detail) {
    document.body.dispatchEvent(new CustomEvent(name, { detail: detail, bubbles: true }));
  }

  function idOf(event) {
    try {
      var data = JSON.parse(event.data);
      return typeof data.id === "number" ? data.id : 0;
    } catch (e) {
      return 0;
    }
  }

  // One action makes a burst of events (assigned, status_changed...) and htmx's throttle
  // keeps only the first: a second round after the burst makes sure the last state shows.
  var TRAILING_MS = 2500, burst = {}, trailing = 0;

  function ticketChanged(id) {
    fire("hd-ticket-changed", id);
    fire("hd-ticket-" + id + "-changed", id);
  }

  function live() {
    if (!window.EventSource || !document.body.classList.contains("agent")) { return; }
    var source = new EventSource("/agent/live");
    source.addEventListener("ticket", function (e) {
      var id = idOf(e);
      if (!id) { return; }
      ticketChanged(id);
      burst[id] = true;
      window.clearTimeout(trailing);
      trailing = window.setTimeout(function () {
        var ids = Object.keys(burst);
        burst = {};
        ids.forEach(function (one) { ticketChanged(Number(one)); });
      }, TRAILING_MS);
    });
    source.addEventListener("presence", function (e) {
      var id = idOf(e);
      if (id) { fire("hd-presence-" + id + "-changed", id); }
    });
    source.addEventListener("signed-out", function () { source.close(); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // -- keyboard in the queue ------------------------------------------------------------
  var selected = 0;  // the ticket ID of the selected row, kept across table refreshes

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-queue] tbody tr[data-ticket]"));
  }

  function select(row, focus) {
    rows().forEach(function (r) { r.classList.remove("selected"); r.removeAttribute("aria-selected"); });
    if (!row) { return; }
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    selected = Number(row.dataset.ticket);
    var link = row.querySelector("a.ticket-link");
    if (focus && link) { link.focus(); }
  }

  function typing(target) {
    if (!target || !target.tagName) { return false; }
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) { return; }
    if (e.key === "/") {
      // The queue's own filter where there is one, else the console's search.
      var search = document.querySelector("#q") || document.querySelector("#console-search");
      if (search) { e.preventDefault(); search.focus(); search.select(); }
      return;
    }
    var all = rows();
    if (!all.length) { return; }
    var at = all.findIndex(function (r) { return Number(r.dataset.ticket) === selected; });
    if (e.key === "j") {
      e.preventDefault();
      select(all[Math.min(at + 1, all.length - 1)], true);
    } else if (e.key === "k") {
      e.preventDefault();
      select(all[Math.max(at - 1, 0)], true);
    } else if (e.key === "Enter" && at >= 0 && document.activeElement === document.body) {
      var link = all[at].querySelector("a.ticket-link");
      if (link) { e.preventDefault(); link.click(); }
    }
  }

  function queue() {
    if (!document.querySelector("#queue-table")) { return; }
    document.addEventListener("keydown", onKey);
    document.body.addEventListener("focusin", function (e) {
      var row = e.target.closest && e.target.closest("[data-queue] tbody tr[data-ticket]");
      if (row) { select(row, false); }
    });
    // A refreshed table keeps the selection (and the focus, when it was in the table).
    var hadFocus = false;
    document.body.addEventListener("htmx:beforeSwap", function (e) {
      if (e.detail.target && e.detail.target.id === "queue-table") {
        hadFocus = e.detail.target.contains(document.activeElement);
      }
    });
    document.body.addEventListener("htmx:afterSettle", function () {
      if (!selected) { return; }
      var row = document.querySelector('[data-queue] tbody tr[data-ticket="' + selected + '"]');
      if (row) { select(row, hadFocus); }
      hadFocus = false;
    });
  }

  // -- presence -------------------------------------------------------------------------
  function presence() {
    var beat = document.querySelector("form[data-presence-beat]");
    if (!beat) { return; }
    var state = beat.querySelector("input[name=state]");
    var box = document.querySelector("[data-presence-message]") ||
      document.querySelector("#reply-message") ||
      document.querySelector("main textarea[name=message], main textarea[name=body]");
    function update() {
      var now = box && (document.activeElement === box || box.value.trim() !== "") ? "replying" : "viewing";
      if (state.value !== now) {
        state.value = now;
        if (window.htmx) { window.htmx.trigger(beat, "hd-presence-beat"); }
      }
    }
    if (box) {
      ["focus", "blur", "input"].forEach(function (name) { box.addEventListener(name, update); });
    }
    window.addEventListener("pagehide", function () {
      if (!navigator.sendBeacon) { return; }
      var data = new FormData(beat);
      data.set("state", "left");
      navigator.sendBeacon(beat.getAttribute("action"), data);
    });
  }

  function start() { live(); queue(); presence(); }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
/* == end of queues, live feed, presence == */

/* ---- ticket workspace: "r" focuses the reply (not while typing in a field) ---- */
(function () {
  "use strict";
  function typing(el) {
    if (!el || el === document.body) { return false; }
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }
  document.addEventListener("keydown", function (e) {
    if (e.key !== "r" || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) { return; }
    if (typing(document.activeElement)) { return; }
    var box = document.getElementById("reply-message");
    if (!box) { return; }
    e.preventDefault();
    box.focus();
    box.scrollIntoView({ block: "center" });
  });
})();
