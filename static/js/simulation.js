// Simulation run page: polls the run's status until it finishes, then draws the charts and tables.
// Data comes from {{ data|json_script:"run-data" }}; all text goes through textContent.
"use strict";
(() => {
  const dataNode = document.getElementById("run-data");
  if (!dataNode) return;
  const data = JSON.parse(dataNode.textContent);
  const POLICY_COLORS = { fcfs: "#757575", sjf: "#6a1b9a", pjf: "#00838f", semantic: "#12355b" };
  const CLASS_NAMES = Object.fromEntries([...URGENCY_SCALE.map(({ level }) => [String(level), `urgency ${level}`]),
                                          ["overall", "overall"]]);
  const PLOT_CONFIG = { displaylogo: false, responsive: true };

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function fmt(value, digits = 3) {
    if (value === null || value === undefined) return "—";
    return Number(value).toFixed(digits);
  }

  function ratio(value) {
    return value === null || value === undefined ? "—" : `×${Number(value).toFixed(2)}`;
  }

  // --- progress --------------------------------------------------------------------------------
  function poll() {
    fetch(data.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => {
        if (!response.ok) throw new Error(`status ${response.status}`);
        return response.json();
      })
      .then((status) => {
        const bar = document.getElementById("progress-bar");
        const label = document.getElementById("progress-label");
        if (bar) bar.value = status.progress;
        if (label) label.textContent = `${Math.round(status.progress * 100)}%`;
        if (status.finished) {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(() => { window.setTimeout(poll, 3000); });
  }

  // --- charts ----------------------------------------------------------------------------------
  // One bar per policy and class; value(perClass[c]) gives the bar's height.
  function policyBars(targetId, title, value, yaxis, hover) {
    const result = data.result;
    const traces = result.policies.map((policy) => {
      const perClass = result.per_policy[policy].per_class;
      return {
        type: "bar", name: policy,
        x: result.classes.map((c) => CLASS_NAMES[c] || c),
        y: result.classes.map((c) => value(perClass[c])),
        marker: { color: POLICY_COLORS[policy] },
        hovertemplate: `%{x}: ${hover}<extra>${policy}</extra>`,
      };
    });
    Plotly.newPlot(targetId, traces, {
      title: { text: title }, barmode: "group", height: 340, margin: { t: 48, r: 10, b: 40, l: 55 },
      yaxis, legend: { orientation: "h", y: -0.18 },
    }, PLOT_CONFIG);
  }

  function waitingBars(targetId, stat, title) {
    policyBars(targetId, title, (m) => m.waiting[stat], { title: { text: "seconds" }, rangemode: "tozero" },
               "%{y:.3f} s");
  }

  // Share of each class's first tokens within its target (TRIAGE_FIRST_TOKEN_TARGETS_S), per policy.
  function attainmentBars(targetId) {
    policyBars(targetId, "First token within its class's target",
               (m) => (m.attainment && m.attainment.share !== null ? m.attainment.share * 100 : null),
               { title: { text: "% of requests" }, range: [0, 100] }, "%{y:.1f}% within target");
  }

  function chartBox(container, id, title) {
    const card = el("div", null, "card");
    card.appendChild(el("h3", title));
    const chart = el("div", null, "chart");
    chart.id = id;
    card.appendChild(chart);
    container.appendChild(card);
    return chart;
  }

  // One chart per policy in #`kind`-charts, drawn by draw(chart, the policy's results).
  function chartPerPolicy(kind, draw) {
    const result = data.result;
    const container = document.getElementById(`${kind}-charts`);
    // All boxes first, so that the grid has its final layout when Plotly measures each chart's width.
    const charts = result.policies.map((policy, index) => chartBox(container, `${kind}-${index}`, policy));
    result.policies.forEach((policy, index) => draw(charts[index], result.per_policy[policy]));
  }

  // Each timeline point is [time, waiting requests per urgency level…, running requests].
  function drawTimeline(chart, { timeline }) {
    const t = timeline.map((p) => p[0]);
    const traces = URGENCY_SCALE.map(({ level, colour }) => (
      { type: "scatter", mode: "lines", line: { shape: "hv", color: colour },
        name: `waiting u${level}`, x: t, y: timeline.map((p) => p[1 + level]), stackgroup: "w" }));
    traces.push({ type: "scatter", mode: "lines", line: { shape: "hv", color: "#000", dash: "dot" },
                  name: "running", x: t, y: timeline.map((p) => p.at(-1)) });
    Plotly.newPlot(chart, traces, {
      height: 300, margin: { t: 30, r: 10, b: 40, l: 45 },
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 10 } },
      xaxis: { title: { text: "simulated seconds" } }, yaxis: { title: { text: "requests" }, rangemode: "tozero" },
    }, PLOT_CONFIG);
  }

  function drawGantt(chart, { sample }) {
    const labels = sample.map((r) => {
      const id = r.source_id === undefined || r.source_id === null ? r.request_id : r.source_id;
      return `#${id} u${r.urgency}`;
    });
    const segments = {
      classifier: { color: "#bdbdbd", y: [], base: [], x: [] },
      waiting: { color: "#ffb74d", y: [], base: [], x: [] },
      decode: { color: "#1e88e5", y: [], base: [], x: [] },
      preempted: { color: "#d32f2f", y: [], base: [], x: [] },
    };
    const add = (kind, label, start, end) => {
      if (end === null || start === null || end <= start) return;
      segments[kind].y.push(label);
      segments[kind].base.push(start);
      segments[kind].x.push(end - start);
    };
    sample.forEach((r, i) => {
      add("classifier", labels[i], r.arrival, r.ready);
      add("waiting", labels[i], r.ready, r.first_token);
      add("decode", labels[i], r.first_token, r.finish);
      (r.preempted_intervals || []).forEach(([start, end]) => add("preempted", labels[i], start, end));
    });
    const traces = Object.entries(segments).map(([kind, s]) => (
      { type: "bar", orientation: "h", name: kind, y: s.y, x: s.x, base: s.base,
        marker: { color: s.color }, hovertemplate: `%{y}: %{base:.2f} s → +%{x:.2f} s<extra>${kind}</extra>` }));
    Plotly.newPlot(chart, traces, {
      barmode: "overlay", height: Math.max(260, 14 * sample.length + 90), margin: { t: 30, r: 10, b: 40, l: 80 },
      legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom", font: { size: 10 } },
      xaxis: { title: { text: "simulated seconds" } },
      yaxis: { autorange: "reversed", type: "category", categoryorder: "array", categoryarray: labels,
               tickfont: { size: 9 } },
    }, PLOT_CONFIG);
  }

  // --- tables ----------------------------------------------------------------------------------
  function headerRow(table, cells) {
    const thead = el("thead");
    const row = el("tr");
    cells.forEach((text) => row.appendChild(el("th", text)));
    thead.appendChild(row);
    table.appendChild(thead);
  }

  function numbersTable() {
    const result = data.result;
    const table = document.getElementById("numbers-table");
    headerRow(table, ["policy", "class", "requests", "mean waiting (s)", "vs FCFS", "p99 waiting (s)", "vs FCFS",
                      "mean end-to-end (s)", "vs FCFS", "p99 end-to-end (s)", "vs FCFS", "first token within target"]);
    const body = el("tbody");
    result.policies.forEach((policy) => {
      result.classes.forEach((c) => {
        const m = result.per_policy[policy].per_class[c];
        const r = result.ratios[policy][c];
        const row = el("tr");
        [policy, CLASS_NAMES[c] || c, m.waiting.count, fmt(m.waiting.mean), ratio(r.waiting.mean), fmt(m.waiting.p99),
         ratio(r.waiting.p99), fmt(m.e2e.mean), ratio(r.e2e.mean), fmt(m.e2e.p99), ratio(r.e2e.p99),
         m.attainment && m.attainment.share !== null ? `${fmt(m.attainment.share * 100, 1)}%` : "—"]
          .forEach((text, i) => {
            const cell = el("td", text);
            if (i === 1 && c !== "overall") cell.className = `u${c}`;
            row.appendChild(cell);
          });
        body.appendChild(row);
      });
    });
    table.appendChild(body);
  }

  function runTable() {
    const result = data.result;
    const table = document.getElementById("run-table");
    headerRow(table, ["policy", "requests", "throughput (req/s)", "throughput (tok/s)", "makespan (s)",
                      "batch occupancy", "KV mean", "KV max", "preemptions (keep/swap/recompute)"]);
    const body = el("tbody");
    result.policies.forEach((policy) => {
      const p = result.per_policy[policy];
      const { total, keep, swap, recompute } = p.preemptions;
      const row = el("tr");
      [policy, p.num_requests, fmt(p.throughput_requests_per_s), fmt(p.throughput_tokens_per_s, 1), fmt(p.makespan_s, 2),
       `${fmt(p.mean_batch_occupancy * 100, 1)}%`, `${fmt(p.kv_utilization_mean * 100, 1)}%`,
       `${fmt(p.kv_utilization_max * 100, 1)}%`, `${total} (${keep}/${swap}/${recompute})`]
        .forEach((text) => row.appendChild(el("td", text)));
      body.appendChild(row);
    });
    table.appendChild(body);
  }

  function draw() {
    numbersTable();
    runTable();
    if (typeof Plotly === "undefined") return;
    waitingBars("chart-mean-waiting", "mean", "Mean waiting per urgency class");
    waitingBars("chart-p99-waiting", "p99", "p99 waiting per urgency class");
    attainmentBars("chart-attainment");
    chartPerPolicy("timeline", drawTimeline);
    chartPerPolicy("gantt", drawGantt);
  }

  if (data.result) {
    draw();
  } else if (!data.status.finished) {
    window.setTimeout(poll, 500);
  }
})();
