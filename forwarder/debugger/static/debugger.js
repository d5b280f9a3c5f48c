/* The debugger page: plain JS over /admin/api (session cookie), no build step. */
"use strict";
(function () {
  var API = "/admin/api";
  var $ = function (sel) { return document.querySelector(sel); };
  var live = null;
  var rows = {};
  var oldest = null;
  var current = "live";
  var Charts = window.ForwarderCharts;

  function esc(v) {
    return String(v === null || v === undefined ? "" : v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function when(t) { return t ? new Date(t * 1000).toLocaleString() : ""; }
  function badge(s) { return '<span class="badge s-' + esc(s) + '">' + esc(s) + "</span>"; }
  function api(path, options) {
    return fetch(API + path, Object.assign({ credentials: "same-origin" }, options || {}))
      .then(function (r) {
        if (r.status === 401) { location.href = "/debugger/login"; throw new Error("login"); }
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body.error || body.detail || r.statusText);
          return body;
        });
      });
  }
  function post(path, body) {
    return api(path, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
  }

  function show(view) {
    document.querySelectorAll(".view").forEach(function (v) { v.hidden = v.id !== "view-" + view; });
    document.querySelectorAll("#tabs button").forEach(function (b) {
      b.classList.toggle("active", b.dataset.view === view);
    });
    current = view;
    if (view === "overview") loadOverview();
    if (view === "rates") loadRates();
    if (view === "quality") loadQuality();
  }
  function loadQuality() {
    return window.ForwarderQuality.load(api, $("#quality"), $("#quality-form").window.value);
  }
  /* Views with figures redraw themselves while shown (the live list has its own stream). */
  function refreshView() {
    if (document.hidden) return;
    if (current === "overview") loadOverview();
    if (current === "rates") loadRates();
    if (current === "quality") loadQuality();
  }

  /* -- live events ------------------------------------------------------------------- */
  function filterQuery() {
    var form = new FormData($("#filters"));
    var q = new URLSearchParams();
    form.forEach(function (v, k) { if (v) q.set(k, v); });
    return q;
  }
  function rowHtml(e) {
    return '<div class="top"><span class="name">' + esc(e.name || e.type) + "</span>" +
      badge(e.status) + (e.test ? ' <span class="badge">test</span>' : "") + "</div>" +
      '<div class="muted">#' + e.seq + " · " + esc(e.type) + " · " + esc(e.source) + " → " +
      esc(e.portal) + " · " + esc(e.identity || "no identity") + " · " + when(e.receivedAt) +
      "</div>";
  }
  function addRow(e, atTop) {
    var li = rows[e.seq];
    if (!li) {
      li = document.createElement("li");
      li.dataset.seq = e.seq;
      li.className = "event";
      li.addEventListener("click", function () { openEvent(e.seq); });
      rows[e.seq] = li;
      var list = $("#events");
      if (atTop) list.insertBefore(li, list.firstChild); else list.appendChild(li);
    }
    li.innerHTML = rowHtml(e);
  }
  function loadEvents(before) {
    var q = filterQuery();
    if (before) q.set("before", before);
    return api("/events?" + q).then(function (body) {
      body.events.forEach(function (e) { addRow(e, false); });
      oldest = body.before;
      $("#older").hidden = !oldest;
    });
  }
  function connect() {
    if (live) live.close();
    var q = filterQuery();
    var top = Object.keys(rows).map(Number).reduce(function (a, b) { return Math.max(a, b); }, 0);
    if (top) q.set("after", top);
    live = new EventSource(API + "/events/stream?" + q);
    live.addEventListener("open", function () { $("#live-state").textContent = "live"; });
    live.addEventListener("error", function () {
      $("#live-state").textContent = "reconnecting…";
    });
    live.addEventListener("event", function (m) { addRow(JSON.parse(m.data), true); });
  }
  function refreshStatuses() {
    if (document.hidden || $("#view-live").hidden) return;
    var q = filterQuery();
    q.set("limit", "100");
    api("/events?" + q).then(function (body) {
      body.events.forEach(function (e) { if (rows[e.seq]) rows[e.seq].innerHTML = rowHtml(e); });
    }).catch(function () {});
  }
  function restart() {
    rows = {};
    $("#events").innerHTML = "";
    loadEvents().then(connect);
  }

  /* -- event detail ------------------------------------------------------------------ */
  function openEvent(seq) {
    api("/events/" + seq).then(function (d) {
      var html = '<div class="card"><h2>' + esc(d.event.name || d.event.type) + " " +
        badge(d.finalState) + "</h2>" + '<p class="muted">#' + d.event.seq + " · messageId " +
        esc(d.event.messageId) + " · " + when(d.event.receivedAt) + "</p>" +
        "<p>" + esc(d.validation) + "</p><p>" + esc(d.dedup) + "</p></div>";
      if (d.identity) {
        html += '<div class="card"><h3>Identity</h3><p>' +
          (d.identity.kind ? esc(d.identity.kind) + " " + esc(d.identity.value || "")
            : "none yet") + (d.identity.recorded ? "" : ' <span class="muted">(as it would be ' +
          "chosen now)</span>") + "</p><ul>" + d.identity.notes.map(function (n) {
          return "<li>" + esc(n) + "</li>"; }).join("") + "</ul></div>";
      }
      html += attributionHtml(d.attribution);
      d.items.forEach(function (it) {
        html += '<div class="card item"><h3>' + esc(it.destination) + " " + badge(it.state) +
          "</h3><p>" + esc(it.explanation) + "</p>" +
          (it.history.length ? "<table><tr><th>when</th><th>route</th><th>status</th>" +
            "<th>correlationId</th><th>ms</th><th>error</th></tr>" +
            it.history.map(function (a) {
              return '<tr class="attempt"><td>' + when(a.at) + "</td><td>" + esc(a.route) +
                "</td><td>" + a.status + "</td><td>" + esc(a.correlationId) + "</td><td>" +
                Math.round(a.durationMs) + "</td><td>" + esc(a.error) + "</td></tr>";
            }).join("") + "</table>" : '<p class="muted">no delivery attempt yet</p>') +
          (it.state === "dead" ? '<button data-replay="' + it.id + '">Replay</button>' : "") +
          "</div>";
      });
      (d.sent || []).forEach(function (s) {
        html += '<div class="card sent"><h3>Sent to HubSpot: ' + esc(s.destination) +
          ' <span class="muted">' + esc(s.route) + "</span></h3><p class=\"muted\">" +
          esc(s.note) + "</p><pre>" + esc(JSON.stringify(s.input, null, 2)) + "</pre></div>";
      });
      html += '<div class="card"><h3>Payload as received</h3><pre>' +
        esc(JSON.stringify(d.payload, null, 2)) + "</pre></div>";
      var person = d.payload.userId ? ["userId", d.payload.userId]
        : d.payload.anonymousId ? ["anonymousId", d.payload.anonymousId] : null;
      if (person) {
        html += '<button id="to-journey" data-kind="' + esc(person[0]) + '" data-value="' +
          esc(person[1]) + '">Contact journey</button>';
      }
      $("#detail").innerHTML = html;
      show("detail");
    }).catch(function (e) { $("#detail").textContent = e.message; show("detail"); });
  }

  /* -- journey ----------------------------------------------------------------------- */
  function touchOrigin(t) {
    if (!t.messageId) return "";
    return '<br><span class="muted">from ' + esc(t.eventType) + " event " + esc(t.messageId) +
      (t.device ? " on device " + esc(t.device) : "") + (t.sender ? " (source " +
      esc(t.sender) + ")" : "") + (t.timestamp ? " at " + esc(t.timestamp) : "") + "</span>";
  }
  function touchHtml(label, t) {
    if (!t) return "<p>" + label + ": none seen</p>";
    var clicks = Object.keys(t.clickIds || {}).map(function (k) {
      return k + "=" + t.clickIds[k]; }).join(", ");
    return "<p><b>" + label + ":</b> " + esc([t.source, t.medium, t.name].filter(Boolean)
      .join(" / ") || "(no campaign)") + (clicks ? " · " + esc(clicks) : "") +
      (t.landingPage ? '<br><span class="muted">' + esc(t.landingPage) + "</span>" : "") +
      touchOrigin(t) + "</p>";
  }
  function attributionHtml(a) {
    if (!a) return "";
    return '<div class="card attribution"><h3>Attribution</h3>' +
      ["first", "last"].map(function (w) {
        var u = a[w];
        var label = w === "first" ? "First touch" : "Last touch";
        return u ? touchHtml(label, u.touch) + '<p class="muted">' + esc(u.why) + "</p>"
          : "<p>" + label + ": none</p>";
      }).join("") + "<ul>" + a.notes.map(function (n) {
        return "<li>" + esc(n) + "</li>"; }).join("") + "</ul></div>";
  }
  function loadJourney(kind, value) {
    var q = new URLSearchParams();
    q.set(kind, value);
    $("#journey").innerHTML = '<p class="muted">searching…</p>';
    api("/journey?" + q).then(function (j) {
      var html = '<div class="card"><h2>Person</h2><p>' + j.identifiers.map(function (i) {
        return esc(i.kind) + ": " + esc(i.value); }).join("<br>") + "</p>" +
        touchHtml("First touch", j.firstTouch) + touchHtml("Last touch", j.lastTouch) +
        (j.complete ? "" : '<p class="muted">only the newest ' + j.scanned +
          " events were searched</p>") + "</div>";
      html += '<ul class="rows">' + j.steps.map(function (s) {
        var verdict = s.conversion ? '<span class="badge ' + (s.attributed ? "yes" : "no") +
          '">' + (s.attributed ? "attributed" : "not attributed") + "</span>" : "";
        return '<li class="step" data-seq="' + s.seq + '"><div class="top"><span class="name">' +
          esc(s.name || s.type) + "</span>" + verdict + "</div>" +
          '<div class="muted">' + esc(s.timestamp || when(s.receivedAt)) + " · " + esc(s.type) +
          " · " + esc(s.status) + "</div>" + (s.reason ? "<div>" + esc(s.reason) + "</div>" : "") +
          "</li>";
      }).join("") + "</ul>";
      if (!j.steps.length) html += "<p>No events of this person were found.</p>";
      $("#journey").innerHTML = html;
    }).catch(function (e) { $("#journey").textContent = e.message; });
  }

  /* -- delivery overview ------------------------------------------------------------- */
  function loadOverview() {
    api("/overview").then(function (o) {
      var c = o.conservation;
      var html = '<div class="card"><h2>Ingest</h2>' + Charts.funnel([
        { label: "received", value: o.ingest.received },
        { label: "rejected", value: o.ingest.rejected, kind: "bad" },
        { label: "duplicates", value: o.ingest.duplicates, kind: "muted" },
        { label: "accepted", value: o.ingest.accepted, kind: "good" }
      ], "Ingest since start") + '<p class="' + (c.ok ? "" : "drift-bad") +
        '">Conservation: accepted ' + c.accepted + " = final " + c.final + " + open " + c.open +
        (c.ok ? " ✓" : " — drift " + c.drift) + "</p>" + (o.deliveryProcesses ?
        '<p class="muted">Delivery runs in ' + o.deliveryProcesses + " process" +
        (o.deliveryProcesses > 1 ? "es" : "") + " of its own: paused queues show in their " +
        "logs, not here.</p>" : "") + "</div>";
      o.portals.forEach(function (p) {
        html += '<div class="card"><h2>' + esc(p.portal) + '</h2><p class="muted">received ' +
          p.received + "</p>" + p.queues.map(function (q) {
            return "<h3>" + esc(q.destination) + (q.paused ? ' <span class="badge no">paused: ' +
              esc(q.paused) + "</span>" : "") + "</h3>" + Charts.funnel([
                { label: "accepted", value: q.accepted },
                { label: "pending", value: q.pending, kind: "warn" },
                { label: "delivered", value: q.delivered, kind: "good" },
                { label: "dead", value: q.dead, kind: "bad" },
                { label: "dropped", value: q.dropped, kind: "muted" },
                { label: "expired", value: q.expired, kind: "muted" }
              ], p.portal + " / " + q.destination) +
              (q.drift ? '<p class="drift-bad">drift ' + q.drift + "</p>" : "");
          }).join("") + "</div>";
      });
      html += '<div class="card"><h2>Dead letters</h2>' + (o.deadLetters.length ?
        '<ul class="rows">' + o.deadLetters.map(function (d) {
          return '<li class="dead"><div class="top"><span class="name">' + esc(d.name ||
            d.destination) + '</span><button data-replay="' + d.id + '">Replay</button></div>' +
            "<div>" + esc(d.reason) + '</div><div class="muted">' + esc(d.portal) + " · " +
            esc(d.destination) + (d.correlationId ? " · correlationId " +
            esc(d.correlationId) : "") + "</div></li>";
        }).join("") + "</ul>" : "<p>None.</p>") + "</div>";
      $("#overview").innerHTML = html;
    }).catch(function (e) { $("#overview").textContent = e.message; });
  }

  /* -- rate envelopes ---------------------------------------------------------------- */
  /* One series per share the samples carry (whatever the rate view adds later). */
  function rateSeries(samples) {
    var names = {};
    samples.forEach(function (s) { Object.keys(s.shares).forEach(function (k) { names[k] = 1; }); });
    return Object.keys(names).map(function (name) {
      return { name: name, points: samples.filter(function (s) { return name in s.shares; })
        .map(function (s) { return [s.at, s.shares[name]]; }) };
    });
  }
  function historySeries(history) {
    return ["ok", "throttled", "errors"].map(function (name) {
      return { name: name === "throttled" ? "429" : name,
        points: history.map(function (m) { return [m.at, m[name]]; }) };
    });
  }
  function loadRates() {
    api("/envelopes").then(function (r) {
      var throttled = Object.keys(r.tooManyRequests).map(function (k) {
        return esc(k) + ": " + r.tooManyRequests[k]; }).join(", ") || "none";
      var policies = Object.keys(r.tooManyRequestsByPolicy || {}).map(function (k) {
        return esc(k) + ": " + r.tooManyRequestsByPolicy[k]; }).join(", ") || "none";
      var html = '<div class="card"><p>429s from HubSpot since start: ' + throttled +
        "</p><p>by policy: " + policies + "</p></div>";
      r.portals.forEach(function (p) {
        var breakers = Object.keys(p.breakers || {}).map(function (d) {
          return esc(d) + ": " + esc(p.breakers[d]); }).join(", ");
        html += '<div class="card rates-card"><h2>' + esc(p.portal) + "</h2>" +
          '<p class="breakers">breakers: ' + (breakers || "none") + "</p>" +
          Charts.timeChart(rateSeries(p.samples), { label: p.portal +
            ": share of each envelope in use, last hour" }) +
          Charts.timeChart(historySeries(p.history || []), { label: p.portal +
            ": HubSpot requests per minute, last 24 h (every replica)",
            format: function (v) { return String(Math.round(v)); } }) +
          '<table class="usage"><tr><th>envelope</th><th>used</th><th>our limit</th>' +
          "<th>window</th><th>pace</th><th>HubSpot's</th></tr>" + p.now.map(function (u) {
            var limit = u.allowance != null && u.allowance < u.limit ?
              u.allowance + " (cut from " + u.limit + " after 429s)" : String(u.limit);
            var declared = u.declaredMax != null ?
              u.declaredMax + " per " + u.declaredWindowS + " s, " + u.declaredRemaining + " left" :
              (u.hubspotLimit || "–");
            return "<tr><td>" + esc(u.envelope) + "</td><td>" + u.used + "</td><td>" +
              esc(limit) + "</td><td>" + (u.windowS != null ? u.windowS + " s" : "–") +
              "</td><td>" + (u.ratePerS != null ? u.ratePerS + "/s" : "–") + "</td><td>" +
              esc(String(declared)) + "</td></tr>";
          }).join("") + "</table></div>";
      });
      $("#rates").innerHTML = html;
    }).catch(function (e) { $("#rates").textContent = e.message; });
  }

  /* -- wiring ------------------------------------------------------------------------ */
  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (!(t instanceof HTMLElement)) return;
    if (t.dataset.view) { show(t.dataset.view); return; }
    if (t.dataset.replay) {
      ev.stopPropagation();
      post("/dead-letters/replay", { ids: [Number(t.dataset.replay)] }).then(function (r) {
        t.textContent = r.moved ? "Replayed" : "Not a dead letter";
        t.disabled = true;
      });
      return;
    }
    if (t.id === "to-journey") {
      $("#journey-form").kind.value = t.dataset.kind;
      $("#journey-form").value.value = t.dataset.value;
      show("journey");
      loadJourney(t.dataset.kind, t.dataset.value);
      return;
    }
    var step = t.closest("li.step");
    if (step) openEvent(step.dataset.seq);
  });
  $("#filters").addEventListener("submit", function (ev) { ev.preventDefault(); restart(); });
  $("#journey-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    loadJourney(this.kind.value, this.value.value.trim());
  });
  $("#older").addEventListener("click", function () { if (oldest) loadEvents(oldest); });
  $("#quality-form").addEventListener("change", loadQuality);
  setInterval(refreshStatuses, 4000);
  setInterval(refreshView, 5000);
  restart();
})();
