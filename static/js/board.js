// The dispatcher board: rows from `board` / `board.delta` messages, charts from `charts`.
// Every piece of request data goes into the page through textContent (never innerHTML).
"use strict";
(() => {
  const openBody = document.getElementById("open-requests");
  const finishedBody = document.getElementById("finished-requests");
  const openCount = document.getElementById("open-count");
  const workerState = document.getElementById("worker-state");
  const announcements = document.getElementById("announcements");
  const soundToggle = document.getElementById("sound-toggle");
  const filtersForm = document.getElementById("filters");
  const mostUrgent = URGENCY_SCALE[0];  // announced in a banner, with a sound

  const rows = new Map();          // id -> row data
  const openElements = new Map();  // id -> <tr>
  const finishedElements = new Map();
  let openOrder = [];
  let finishedOrder = [];
  let version = null;
  let serverOffset = 0;            // server clock - browser clock, seconds
  let loaded = false;
  const announced = new Set();
  let lastRefreshAsk = 0;

  // --- sound (Web Audio, only after the dispatcher turned it on: browsers need a gesture) ----------
  let audio = null;
  let soundOn = false;
  soundToggle.addEventListener("click", () => {
    soundOn = !soundOn;
    if (soundOn) {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      audio.resume();
    }
    soundToggle.textContent = soundOn ? "Sound on" : "Sound off";
    soundToggle.setAttribute("aria-pressed", String(soundOn));
  });
  function beep() {
    if (!soundOn || !audio) return;
    const start = audio.currentTime;
    [0, 0.3, 0.6].forEach((offset) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, start + offset);
      gain.gain.setValueAtTime(0, start + offset + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(start + offset);
      osc.stop(start + offset + 0.2);
    });
  }

  // --- filters ---------------------------------------------------------------------------------
  const FILTER_KEY = "triage.board.filters";
  function loadFilters() {
    try {
      const saved = JSON.parse(localStorage.getItem(FILTER_KEY) || "null");
      if (!saved) return;
      filtersForm.querySelectorAll("input[type=checkbox]").forEach((box) => {
        const list = saved[box.name];
        if (Array.isArray(list)) box.checked = list.includes(box.value);
      });
    } catch (error) { /* ignore a broken saved value */ }
  }
  function checked(name) {
    return new Set([...filtersForm.querySelectorAll(`input[name=${name}]:checked`)].map((box) => box.value));
  }
  let wantedUrgencies = new Set();
  let wantedStatuses = new Set();
  function readFilters() {
    wantedUrgencies = checked("urgency");
    wantedStatuses = checked("status");
    localStorage.setItem(FILTER_KEY, JSON.stringify({ urgency: [...wantedUrgencies], status: [...wantedStatuses] }));
  }
  function visible(r) {
    const urgency = r.urgency === null || r.urgency === undefined ? "none" : String(r.urgency);
    if (!wantedUrgencies.has(urgency)) return false;
    return wantedStatuses.has(r.status) || (r.needs_review && wantedStatuses.has("needs_review"));
  }
  filtersForm.addEventListener("change", () => { readFilters(); applyFilters(); });

  // --- rows ------------------------------------------------------------------------------------
  const now = () => Date.now() / 1000 + serverOffset;

  function linkCell(tr, id) {
    const td = document.createElement("td");
    const a = document.createElement("a");
    a.href = `/requests/${encodeURIComponent(id)}/`;
    a.textContent = String(id);
    td.appendChild(a);
    tr.appendChild(td);
  }

  function requestCell(tr, r) {
    const td = cell(tr, r.text, "text");
    if (r.location) {
      const where = document.createElement("div");
      where.className = "muted";
      where.textContent = r.location;
      td.appendChild(where);
    }
    if (r.card_titles && r.card_titles.length) {
      const cards = document.createElement("div");
      cards.className = "card-titles";
      cards.textContent = `Card: ${r.card_titles.join(" · ")}`;
      td.appendChild(cards);
    }
  }

  function buildOpenRow(r) {
    const tr = document.createElement("tr");
    tr.dataset.id = r.id;
    tr.dataset.status = r.status;
    tr.dataset.urgency = r.urgency === null ? "" : r.urgency;
    if (r.needs_review) tr.classList.add("needs-review");
    linkCell(tr, r.id);
    requestCell(tr, r);
    cell(tr, r.urgency_label || "unclassified", r.urgency === null ? "unclassified" : `u${r.urgency}`);
    const status = cell(tr, r.status_label, `status status-${r.status}`);
    if (r.needs_review) status.append(" ", reviewBadge(r));
    cell(tr, r.queue_position, "position");
    const age = cell(tr, formatDuration(now() - r.created_ts), "age");
    age.dataset.created = r.created_ts;
    cell(tr, `${r.generated_tokens} / ${r.predicted_output_tokens ?? "—"}`, "tokens");
    cell(tr, r.rule_reason || "", "rule");
    tr.hidden = !visible(r);
    return tr;
  }

  function buildFinishedRow(r) {
    const tr = document.createElement("tr");
    tr.dataset.id = r.id;
    tr.dataset.status = r.status;
    tr.dataset.urgency = r.urgency === null ? "" : r.urgency;
    linkCell(tr, r.id);
    requestCell(tr, r);
    cell(tr, r.urgency_label || "unclassified", r.urgency === null ? "unclassified" : `u${r.urgency}`);
    cell(tr, statusText(r), `status status-${r.status}`);
    cell(tr, r.first_token_ts ? formatDuration(r.first_token_ts - r.created_ts) : "—");
    cell(tr, `${r.generated_tokens} / ${r.predicted_output_tokens ?? "—"}`, "tokens");
    cell(tr, r.rule_reason || "", "rule");
    tr.hidden = !visible(r);
    return tr;
  }

  function sync(body, elements, order, build, changed) {
    // Rows the server rendered with the page, before the live board took over, are replaced, never kept.
    const managed = new Set(elements.values());
    for (const tr of [...body.children]) if (!managed.has(tr)) tr.remove();
    const wanted = new Set(order);
    for (const [id, tr] of elements) {
      if (!wanted.has(id)) { tr.remove(); elements.delete(id); }
    }
    order.forEach((id, index) => {
      let tr = elements.get(id);
      if (!tr || changed.has(id)) {
        const fresh = build(rows.get(id));
        if (tr) tr.replaceWith(fresh);
        tr = fresh;
        elements.set(id, tr);
      }
      if (body.children[index] !== tr) body.insertBefore(tr, body.children[index] || null);
    });
  }

  function applyFilters() {
    for (const [id, tr] of openElements) tr.hidden = !visible(rows.get(id));
    for (const [id, tr] of finishedElements) tr.hidden = !visible(rows.get(id));
  }

  function render(changed) {
    sync(openBody, openElements, openOrder, buildOpenRow, changed);
    sync(finishedBody, finishedElements, finishedOrder, buildFinishedRow, changed);
    openCount.textContent = String(openOrder.length);
    announceNew();
  }

  function announceNew() {
    for (const id of openOrder) {
      const r = rows.get(id);
      if (!r || r.urgency !== mostUrgent.level || announced.has(id)) continue;
      announced.add(id);
      if (loaded) announce(r);
    }
    loaded = true;
  }

  function announce(r) {
    const box = document.createElement("div");
    box.className = `announcement u${mostUrgent.level}`;
    box.dataset.id = r.id;
    const title = document.createElement("strong");
    title.textContent = `Urgency ${mostUrgent.label}: request ${r.id}`;
    const text = document.createElement("a");
    text.href = `/requests/${encodeURIComponent(r.id)}/`;
    text.textContent = r.text;
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "Dismiss";
    close.addEventListener("click", () => box.remove());
    box.append(title, " ", text, " ", close);
    announcements.prepend(box);
    while (announcements.children.length > 5) announcements.lastElementChild.remove();
    beep();
  }

  function showWorker(worker) {
    if (!worker) return;
    const stats = worker.stats || {};
    if (!worker.alive) { workerState.textContent = "Inference worker not seen in the last 10 s."; return; }
    workerState.textContent = `Inference worker running: ${stats.tokens_per_second ?? 0} tokens/s, ` +
      `${stats.active_requests ?? 0} generating, ${stats.waiting ?? 0} waiting.`;
  }

  function setClock(ts) {
    if (typeof ts === "number") serverOffset = ts - Date.now() / 1000;
  }

  function askRefresh() {
    if (Date.now() - lastRefreshAsk < 500) return;
    lastRefreshAsk = Date.now();
    live.send({ type: "refresh" });
  }

  function onFull(board, newVersion) {
    setClock(board.generated_ts);
    rows.clear();
    for (const r of board.open.concat(board.finished)) rows.set(r.id, r);
    openOrder = board.open.map((r) => r.id);
    finishedOrder = board.finished.map((r) => r.id);
    version = newVersion;
    render(new Set(rows.keys()));
    showWorker(board.worker);
  }

  // A row that only moved in the scheduler's queue: update its position cell, not the whole row.
  function movedInQueue(id, position) {
    const r = rows.get(id);
    if (!r) return;
    r.queue_position = position;
    const cell = openElements.get(id)?.querySelector("td.position");
    if (cell) cell.textContent = position === null || position === undefined ? "—" : String(position);
  }

  function onDelta(delta) {
    if (version === null || delta.base !== version) {
      if (version === null || delta.version > version) askRefresh();
      return;
    }
    setClock(delta.generated_ts);
    const changed = new Set();
    for (const r of delta.upsert) { rows.set(r.id, r); changed.add(r.id); }
    for (const [id, position] of delta.positions || []) movedInQueue(id, position);
    if (delta.open) openOrder = delta.open;
    if (delta.finished) finishedOrder = delta.finished;
    const keep = new Set(openOrder.concat(finishedOrder));
    for (const id of [...rows.keys()]) if (!keep.has(id)) rows.delete(id);
    version = delta.version;
    render(changed);
    if (delta.worker) showWorker(delta.worker);
  }

  // Time since arrival ticks locally between messages.
  setInterval(() => {
    const t = now();
    for (const tr of openElements.values()) {
      const age = tr.querySelector(".age");
      if (age) age.textContent = formatDuration(t - Number(age.dataset.created));
    }
  }, 1000);

  // --- charts (Plotly, served from our own static files) ---------------------------------------
  const chartIds = { waiting: "chart-waiting", ttft: "chart-ttft", queue: "chart-queue", tokens: "chart-tokens" };
  const plotConfig = { displayModeBar: false, responsive: true };
  function layout(id, yTitle) {
    const element = document.getElementById(id);
    return {
      title: { text: element.dataset.title, font: { size: 14 } },
      margin: { l: 50, r: 10, t: 40, b: 40 }, height: 260,
      xaxis: { type: "date" }, yaxis: { title: { text: yTitle }, rangemode: "tozero" },
      legend: { orientation: "h" }, uirevision: id,
    };
  }
  const toDates = (xs) => xs.map((x) => new Date(x * 1000));
  function classTraces(perClass, mode) {
    return URGENCY_SCALE.map(({ level, colour }) => {
      const s = perClass[String(level)] || { x: [], y: [] };
      return { name: `urgency ${level}`, x: toDates(s.x), y: s.y, mode, type: "scatter",
               line: { color: colour, shape: mode === "lines" ? "hv" : "linear" }, marker: { color: colour } };
    });
  }
  let tokensDrawn = false;
  function renderCharts(charts) {
    if (!window.Plotly) return;
    Plotly.react(chartIds.waiting, classTraces(charts.waiting, "lines+markers"), layout(chartIds.waiting, "seconds"), plotConfig);
    Plotly.react(chartIds.ttft, classTraces(charts.ttft, "lines+markers"), layout(chartIds.ttft, "seconds"), plotConfig);
    const queue = {};
    for (const level of Object.keys(charts.queue.by_class)) queue[level] = { x: charts.queue.x, y: charts.queue.by_class[level] };
    Plotly.react(chartIds.queue, classTraces(queue, "lines"), layout(chartIds.queue, "requests"), plotConfig);
    Plotly.react(chartIds.tokens, [{ name: "tokens/s", x: toDates(charts.tokens.x), y: charts.tokens.y, type: "scatter",
      mode: "lines", line: { color: "#12355b" } }], layout(chartIds.tokens, "tokens/s"), plotConfig);
    tokensDrawn = true;
    document.body.dataset.chartsAt = String(charts.generated_ts);
  }
  function extendTokens(stats) {
    if (!tokensDrawn || !window.Plotly || typeof stats.at !== "number") return;
    Plotly.extendTraces(chartIds.tokens, { x: [[new Date(stats.at * 1000)]], y: [[stats.tokens_per_second || 0]] }, [0]);
  }

  // --- the socket ------------------------------------------------------------------------------
  loadFilters();
  readFilters();
  const live = openLiveSocket("/ws/board/?delta=1", (message) => {
    switch (message.type) {
      case "board": onFull(message.board, message.version); break;
      case "board.delta": onDelta(message); break;
      case "tick":
        setClock(message.generated_ts);
        if (version !== null && message.version !== version) askRefresh();
        break;
      case "charts": renderCharts(message.charts); break;
      case "worker": extendTokens(message.stats || {}); break;
      default: break;
    }
  }, showConnection(document.getElementById("connection")));
})();
