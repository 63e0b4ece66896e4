/* modelyard web UI: charts from JSON islands, and small conveniences. No inline scripts
   (the Content-Security-Policy forbids them): pages carry data in
   <script type="application/json"> elements, read here with JSON.parse. */
(function () {
  "use strict";
  var PALETTE = ["#2f5bea", "#12b76a", "#f79009", "#d92d20", "#7a5af8", "#0ba5ec",
                 "#ee46bc", "#667085", "#a15c07", "#067647"];

  function drawChart(el) {
    if (el.dataset.drawn || typeof uPlot === "undefined") return;
    var island = document.getElementById(el.dataset.chart);
    if (!island) return;
    var spec = JSON.parse(island.textContent);
    // spec: {title, x_label, series: [{label, x: [...], y: [...]}]} -> one aligned table.
    var xs = [];
    var seen = {};
    spec.series.forEach(function (s) { s.x.forEach(function (x) { if (!seen[x]) { seen[x] = 1; xs.push(x); } }); });
    xs.sort(function (a, b) { return a - b; });
    var index = {};
    xs.forEach(function (x, i) { index[x] = i; });
    var data = [xs];
    var series = [{ label: spec.x_label || "step" }];
    spec.series.forEach(function (s, k) {
      var ys = new Array(xs.length).fill(null);
      s.x.forEach(function (x, i) { ys[index[x]] = s.y[i]; });
      data.push(ys);
      series.push({ label: s.label, stroke: PALETTE[k % PALETTE.length], width: 1.5,
                    spanGaps: true, points: { show: xs.length < 60 } });
    });
    var width = Math.min(parseInt(el.dataset.width || "520", 10), window.innerWidth - 60);
    el.dataset.drawn = "1";
    new uPlot({ title: spec.title, width: width, height: parseInt(el.dataset.height || "240", 10),
                series: series, scales: { x: { time: !!spec.time } } }, data, el);
  }

  function drawAll(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(drawChart);
  }

  function syncCompare(root) {
    var form = (root || document).querySelector("form.compare");
    if (!form) return;
    var boxes = form.querySelectorAll("input[name=run]");
    var button = form.querySelector("button[type=submit]");
    function update() {
      var n = 0;
      boxes.forEach(function (b) { if (b.checked) n++; });
      if (button) { button.disabled = n < 2 || n > 10; button.textContent = "Compare " + n + " runs"; }
    }
    boxes.forEach(function (b) { b.addEventListener("change", update); });
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawAll(document);
    syncCompare(document);
    document.querySelectorAll("form.switch select").forEach(function (s) {
      s.addEventListener("change", function () { s.form.submit(); });
    });
  });
  document.addEventListener("htmx:afterSwap", function (e) { drawAll(e.target); });
  document.addEventListener("htmx:load", function (e) { drawAll(e.target); });
})();
