/* Simulation run page: polls the run's status until it finishes, then draws the charts and tables.
   Data comes from {{ data|json_script:"run-data" }}; all text goes through textContent. */
(function () {
  "use strict";
  var dataNode = document.getElementById("run-data");
  if (!dataNode) { return; }
  var data = JSON.parse(dataNode.textContent);
  var CLASS_COLORS = ["#c62828", "#ef6c00", "#f9a825", "#2e7d32", "#1565c0"];
  var POLICY_COLORS = { fcfs: "#757575", sjf: "#6a1b9a", pjf: "#00838f", semantic: "#12355b" };
  var CLASS_NAMES = { "0": "urgency 0", "1": "urgency 1", "2": "urgency 2", "3": "urgency 3", "4": "urgency 4",
                      overall: "overall" };
  var PLOT_CONFIG = { displaylogo: false, responsive: true };

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (className) { node.className = className; }
    return node;
  }

  function fmt(value, digits) {
    if (value === null || value === undefined) { return "—"; }
    return Number(value).toFixed(digits === undefined ? 3 : digits);
  }

  function ratio(value) {
    return value === null || value === undefined ? "—" : "×" + Number(value).toFixed(2);
  }

  /* ---------- progress ---------- */
  function poll() {
    fetch(data.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (status) {
        var bar = document.getElementById("progress-bar");
        var label = document.getElementById("progress-label");
        if (bar) { bar.value = status.progress; }
        if (label) { label.textContent = Math.round(status.progress * 100) + "%"; }
        if (status.finished) {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }

  /* ---------- charts ---------- */
  function waitingBars(targetId, stat, title) {
    var result = data.result;
    var traces = result.policies.map(function (policy) {
      var perClass = result.per_policy[policy].per_class;
      return {
        type: "bar", name: policy,
        x: result.classes.map(function (c) { return CLASS_NAMES[c] || c; }),
        y: result.classes.map(function (c) { return perClass[c].waiting[stat]; }),
        marker: { color: POLICY_COLORS[policy] },
        hovertemplate: "%{x}: %{y:.3f} s<extra>" + policy + "</extra>"
      };
    });
    Plotly.newPlot(targetId, traces, {
      title: { text: title }, barmode: "group", height: 340, margin: { t: 48, r: 10, b: 40, l: 55 },
      yaxis: { title: { text: "seconds" }, rangemode: "tozero" }, legend: { orientation: "h", y: -0.18 }
    }, PLOT_CONFIG);
  }

  function chartBox(container, id, title) {
    var card = el("div", null, "card");
    card.appendChild(el("h3", title));
    var chart = el("div", null, "chart");
    chart.id = id;
    card.appendChild(chart);
    container.appendChild(card);
    return chart;
  }

  function timelines() {
    var result = data.result;
    var container = document.getElementById("timeline-charts");
    // All boxes first, so that the grid has its final layout when Plotly measures each chart's width.
    var boxes = result.policies.map(function (policy, index) { return chartBox(container, "timeline-" + index, policy); });
    result.policies.forEach(function (policy, index) {
      var timeline = result.per_policy[policy].timeline;
      var t = timeline.map(function (p) { return p[0]; });
      var traces = [0, 1, 2, 3, 4].map(function (u) {
        return { type: "scatter", mode: "lines", line: { shape: "hv", color: CLASS_COLORS[u] },
                 name: "waiting u" + u, x: t, y: timeline.map(function (p) { return p[1 + u]; }), stackgroup: "w" };
      });
      traces.push({ type: "scatter", mode: "lines", line: { shape: "hv", color: "#000", dash: "dot" },
                    name: "running", x: t, y: timeline.map(function (p) { return p[6]; }) });
      Plotly.newPlot(boxes[index], traces, {
        height: 300, margin: { t: 30, r: 10, b: 40, l: 45 },
        legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 10 } },
        xaxis: { title: { text: "simulated seconds" } }, yaxis: { title: { text: "requests" }, rangemode: "tozero" }
      }, PLOT_CONFIG);
    });
  }

  function gantt() {
    var result = data.result;
    var container = document.getElementById("gantt-charts");
    var boxes = result.policies.map(function (policy, index) { return chartBox(container, "gantt-" + index, policy); });
    result.policies.forEach(function (policy, index) {
      var sample = result.per_policy[policy].sample;
      var labels = sample.map(function (r) {
        var id = r.source_id === undefined || r.source_id === null ? r.request_id : r.source_id;
        return "#" + id + " u" + r.urgency;
      });
      var segments = {
        classifier: { color: "#bdbdbd", y: [], base: [], x: [] },
        waiting: { color: "#ffb74d", y: [], base: [], x: [] },
        decode: { color: "#1e88e5", y: [], base: [], x: [] },
        preempted: { color: "#d32f2f", y: [], base: [], x: [] }
      };
      function add(kind, label, start, end) {
        if (end === null || start === null || end <= start) { return; }
        segments[kind].y.push(label);
        segments[kind].base.push(start);
        segments[kind].x.push(end - start);
      }
      sample.forEach(function (r, i) {
        add("classifier", labels[i], r.arrival, r.ready);
        add("waiting", labels[i], r.ready, r.first_token);
        add("decode", labels[i], r.first_token, r.finish);
        (r.preempted_intervals || []).forEach(function (iv) { add("preempted", labels[i], iv[0], iv[1]); });
      });
      var traces = Object.keys(segments).map(function (kind) {
        var s = segments[kind];
        return { type: "bar", orientation: "h", name: kind, y: s.y, x: s.x, base: s.base,
                 marker: { color: s.color }, hovertemplate: "%{y}: %{base:.2f} s → +%{x:.2f} s<extra>" + kind + "</extra>" };
      });
      Plotly.newPlot(boxes[index], traces, {
        barmode: "overlay", height: Math.max(260, 14 * sample.length + 90), margin: { t: 30, r: 10, b: 40, l: 80 },
        legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom", font: { size: 10 } },
        xaxis: { title: { text: "simulated seconds" } },
        yaxis: { autorange: "reversed", type: "category", categoryorder: "array", categoryarray: labels,
                 tickfont: { size: 9 } }
      }, PLOT_CONFIG);
    });
  }

  /* ---------- tables ---------- */
  function headerRow(table, cells) {
    var thead = el("thead");
    var row = el("tr");
    cells.forEach(function (text) { row.appendChild(el("th", text)); });
    thead.appendChild(row);
    table.appendChild(thead);
  }

  function numbersTable() {
    var result = data.result;
    var table = document.getElementById("numbers-table");
    headerRow(table, ["policy", "class", "requests", "mean waiting (s)", "vs FCFS", "p99 waiting (s)", "vs FCFS",
                      "mean end-to-end (s)", "vs FCFS", "p99 end-to-end (s)", "vs FCFS"]);
    var body = el("tbody");
    result.policies.forEach(function (policy) {
      result.classes.forEach(function (c) {
        var m = result.per_policy[policy].per_class[c];
        var r = result.ratios[policy][c];
        var row = el("tr");
        [policy, CLASS_NAMES[c] || c, m.waiting.count, fmt(m.waiting.mean), ratio(r.waiting.mean), fmt(m.waiting.p99),
         ratio(r.waiting.p99), fmt(m.e2e.mean), ratio(r.e2e.mean), fmt(m.e2e.p99), ratio(r.e2e.p99)]
          .forEach(function (text, i) {
            var cell = el("td", text);
            if (i === 1 && c !== "overall") { cell.className = "u" + c; }
            row.appendChild(cell);
          });
        body.appendChild(row);
      });
    });
    table.appendChild(body);
  }

  function runTable() {
    var result = data.result;
    var table = document.getElementById("run-table");
    headerRow(table, ["policy", "requests", "throughput (req/s)", "throughput (tok/s)", "makespan (s)",
                      "batch occupancy", "KV mean", "KV max", "preemptions (keep/swap/recompute)"]);
    var body = el("tbody");
    result.policies.forEach(function (policy) {
      var p = result.per_policy[policy];
      var row = el("tr");
      [policy, p.num_requests, fmt(p.throughput_requests_per_s), fmt(p.throughput_tokens_per_s, 1), fmt(p.makespan_s, 2),
       fmt(p.mean_batch_occupancy * 100, 1) + "%", fmt(p.kv_utilization_mean * 100, 1) + "%",
       fmt(p.kv_utilization_max * 100, 1) + "%",
       p.preemptions.total + " (" + p.preemptions.keep + "/" + p.preemptions.swap + "/" + p.preemptions.recompute + ")"]
        .forEach(function (text) { row.appendChild(el("td", text)); });
      body.appendChild(row);
    });
    table.appendChild(body);
  }

  function draw() {
    numbersTable();
    runTable();
    if (typeof Plotly === "undefined") { return; }
    waitingBars("chart-mean-waiting", "mean", "Mean waiting per urgency class");
    waitingBars("chart-p99-waiting", "p99", "p99 waiting per urgency class");
    timelines();
    gantt();
  }

  if (data.result) {
    draw();
  } else if (!data.status.finished) {
    window.setTimeout(poll, 500);
  }
}());
