/* The quality view: per event type its 0-10 score, what lowers it, and its figures. */
"use strict";
(function () {
  var C = window.ForwarderCharts;

  function esc(v) {
    return String(v === null || v === undefined ? "" : v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function share(v) { return v === null || v === undefined ? "–" : C.pct(v); }
  function ms(v) {
    if (v === null || v === undefined) return "–";
    return v >= 60000 ? "≤ " + v / 60000 + " min" : v >= 1000 ? "≤ " + v / 1000 + " s" : "≤ " + v + " ms";
  }
  function grade(score) { return score >= 8 ? "good" : score >= 5 ? "fair" : "poor"; }
  function reasons(title, list) {
    if (!list.length) return "";
    return "<p><b>" + title + ":</b> " + list.map(function (r) {
      return esc(r.reason) + " (" + r.count + ")"; }).join("; ") + "</p>";
  }
  function figures(f) {
    var steps = [
      { label: "received", value: f.received },
      { label: "rejected", value: f.rejected, kind: "bad" },
      { label: "duplicates", value: f.duplicates, kind: "muted" },
      { label: "accepted", value: f.accepted },
      { label: "held", value: f.held, kind: "warn" },
      { label: "released", value: f.released },
      { label: "expired unidentified", value: f.expiredUnidentified, kind: "bad" },
      { label: "sent", value: f.sent, kind: "good" },
      { label: "dead", value: f.dead, kind: "bad" },
      { label: "dropped", value: f.dropped, kind: "muted" }
    ];
    var ids = Object.keys(f.sentWith).map(function (k) {
      return { label: "sent with " + k, value: Math.round((f.sentWith[k] || 0) * 100), kind: "id" };
    });
    return C.funnel(steps, "Events") +
      '<dl class="facts"><div><dt>resolved to a contact</dt><dd>' + share(f.resolved) +
      "</dd></div><div><dt>campaign coverage</dt><dd>" + share(f.campaignCoverage) +
      "</dd></div><div><dt>latency p50</dt><dd>" + ms(f.latencyP50Ms) +
      "</dd></div><div><dt>latency p95</dt><dd>" + ms(f.latencyP95Ms) + "</dd></div></dl>" +
      C.funnel(ids, "Identifier sent (% of sent)") +
      reasons("Rejected because", f.topRejections) + reasons("Failed because", f.topFailures);
  }
  function card(q) {
    var sources = q.sources.length > 1 ? '<details><summary>Per source</summary>' +
      q.sources.map(function (s) {
        return "<h4>" + esc(s.source) + "</h4>" + figures(s.figures);
      }).join("") + "</details>" : '<p class="muted">source: ' +
      esc(q.sources.map(function (s) { return s.source; }).join(", ")) + "</p>";
    return '<div class="card quality" data-event-type="' + esc(q.eventType) + '">' +
      '<div class="q-head"><h2>' + esc(q.eventType) + '</h2><span class="score ' +
      grade(q.score) + '" title="quality score">' + q.score.toFixed(1) +
      '<small>/10</small></span></div>' +
      (q.loweredBy.length ? '<ul class="lowered">' + q.loweredBy.map(function (why) {
        return "<li>" + esc(why) + "</li>"; }).join("") + "</ul>"
        : '<p class="muted">Nothing lowers this score.</p>') + figures(q.figures) + sources +
      "</div>";
  }
  function load(api, el, windowName) {
    return api("/quality?window=" + encodeURIComponent(windowName)).then(function (r) {
      var head = '<p class="muted">Last ' + esc(r.window) + " (since " +
        new Date(r.since * 1000).toLocaleString() + "), worst score first · updated " +
        new Date(r.generatedAt * 1000).toLocaleTimeString() + "</p>";
      el.innerHTML = head + (r.eventTypes.length ? r.eventTypes.map(card).join("")
        : '<div class="card"><p>No events in this window yet.</p></div>');
    }).catch(function (e) { el.textContent = e.message; });
  }
  window.ForwarderQuality = { load: load };
})();
