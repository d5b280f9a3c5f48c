/* Readable charts as inline SVG: a time-series chart (time axis, share axis, one labelled line
   per series, its latest value) and a funnel of labelled bars with their counts. They draw
   whatever series they are given, so new fields of the rate view show up without changes here.
   Sizes and colours are SVG attributes: the page's CSP refuses inline style attributes. */
"use strict";
(function () {
  var COLOURS = ["#ff7a59", "#0091ae", "#6a78d1", "#00bda5", "#f2547d", "#516f90", "#f5c26b"];

  function esc(v) {
    return String(v === null || v === undefined ? "" : v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function two(n) { return String(n).padStart(2, "0"); }
  /* Ticks of a short span (the first minutes after start) need seconds to differ. */
  function clock(t, seconds) {
    var d = new Date(t * 1000);
    return two(d.getHours()) + ":" + two(d.getMinutes()) + (seconds ? ":" + two(d.getSeconds()) : "");
  }
  function pct(v) { return Math.round(v * 100) + "%"; }

  /* series: [{name, points: [[t, value 0..1+], ...]}]; opts.label names the chart. */
  /* opts: label; format (a value as text: shares as % by default, or e.g. counts). */
  function timeChart(series, opts) {
    opts = opts || {};
    var format = opts.format || pct;
    var w = 640, h = 200, left = 42, right = 12, top = 10, bottom = 28;
    var all = [];
    series.forEach(function (s) { s.points.forEach(function (p) { all.push(p); }); });
    if (!all.length) {
      return '<p class="muted chart-empty">' + esc(opts.label || "chart") +
        ": no samples yet (one is taken every few seconds)</p>";
    }
    var t0 = Math.min.apply(null, all.map(function (p) { return p[0]; }));
    var t1 = Math.max.apply(null, all.map(function (p) { return p[0]; }));
    var span = Math.max(1, t1 - t0);
    var ymax = Math.max(1, Math.max.apply(null, all.map(function (p) { return p[1]; })));
    var x = function (t) { return left + ((t - t0) / span) * (w - left - right); };
    var y = function (v) { return top + (1 - v / ymax) * (h - top - bottom); };
    var out = ['<svg class="chart" viewBox="0 0 ' + w + " " + h + '" role="img" aria-label="' +
      esc(opts.label || "chart") + '">'];
    [0, 0.5, 1].forEach(function (f) {
      var v = f * ymax;
      out.push('<line class="grid" x1="' + left + '" x2="' + (w - right) + '" y1="' + y(v) +
        '" y2="' + y(v) + '"/><text class="axis" x="' + (left - 4) + '" y="' + (y(v) + 4) +
        '" text-anchor="end">' + format(v) + "</text>");
    });
    for (var i = 0; i <= 4; i++) {
      var t = t0 + (span * i) / 4;
      out.push('<text class="axis tick" x="' + x(t) + '" y="' + (h - 8) + '" text-anchor="' +
        (i === 0 ? "start" : i === 4 ? "end" : "middle") + '">' + clock(t, span < 600) +
        "</text>");
    }
    series.forEach(function (s, n) {
      if (!s.points.length) return;
      var colour = COLOURS[n % COLOURS.length];
      var pts = s.points.map(function (p) { return x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1); });
      out.push('<polyline class="series" data-series="' + esc(s.name) + '" fill="none" stroke="' +
        colour + '" stroke-width="2" points="' + pts.join(" ") + '"/>');
    });
    out.push("</svg>");
    out.push('<ul class="legend">' + series.map(function (s, n) {
      var last = s.points.length ? s.points[s.points.length - 1][1] : null;
      return '<li><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect width="10" ' +
        'height="10" rx="2" fill="' + COLOURS[n % COLOURS.length] + '"/></svg>' + esc(s.name) + (last === null ? "" : " <b>" + format(last) + "</b>") + "</li>";
    }).join("") + "</ul>");
    return '<figure class="chart-box">' + (opts.label ? "<figcaption>" + esc(opts.label) +
      "</figcaption>" : "") + out.join("") + "</figure>";
  }

  /* steps: [{label, value, kind}]: one bar each, its width relative to the largest. */
  function funnel(steps, label) {
    var max = Math.max.apply(null, [1].concat(steps.map(function (s) { return s.value; })));
    return '<figure class="funnel-chart" aria-label="' + esc(label || "funnel") + '">' +
      (label ? "<figcaption>" + esc(label) + "</figcaption>" : "") + steps.map(function (s) {
        var width = s.value ? Math.max(1, Math.round((s.value / max) * 100)) : 0;
        return '<div class="bar-row"><span class="bar-label">' + esc(s.label) + "</span>" +
          '<svg class="bar-track" viewBox="0 0 100 10" preserveAspectRatio="none" ' +
          'aria-hidden="true"><rect class="bar ' + esc(s.kind || "") + '" width="' + width +
          '" height="10"/></svg><span class="bar-value">' + s.value + "</span></div>";
      }).join("") + "</figure>";
  }

  window.ForwarderCharts = { timeChart: timeChart, funnel: funnel, pct: pct };
})();
