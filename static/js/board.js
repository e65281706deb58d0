// The dispatcher board: rows from `board` / `board.delta` messages, charts from `charts`.
// Every piece of request data goes into the page through textContent (never innerHTML).
"use strict";
(() => {
  const openBody = document.getElementById("open-requests");
  const finishedBody = document.getElementById("finished-requests");
  const openCount = document.getElementById("open-count");
  const workerState = document.getElementById("worker-state");
  const workerList = document.getElementById("workers");
  let severalWorkers = false;  // more than one inference worker reports: rows name theirs
  const announcements = document.getElementById("announcements");
  const announcer = document.getElementById("announcer");
  const actionResult = document.getElementById("action-result");
  const attainmentLine = document.getElementById("attainment");
  const soundToggle = document.getElementById("sound-toggle");
  const filtersForm = document.getElementById("filters");
  filtersForm.addEventListener("submit", (event) => event.preventDefault());  // the filters apply as they change
  const isSupervisor = document.body.dataset.supervisor === "1";
  const labelOf = (level) => URGENCY_SCALE.find((u) => u.level === level)?.label || String(level);

  const rows = new Map();          // id -> row data
  const openElements = new Map();  // id -> <tr>
  const finishedElements = new Map();
  let openOrder = [];
  let finishedOrder = [];
  let alertOrder = [];             // unacknowledged alerts, most urgent then oldest first (the server's order)
  let targets = { first_token_s: [], acknowledge_s: [], near_share: 0.75 };
  let selectedId = null;           // the row the keyboard works on; kept across live reorders
  let version = null;
  let serverOffset = 0;            // server clock - browser clock, seconds
  let loaded = false;
  const announced = new Set();
  let lastRefreshAsk = 0;

  // --- sound (Web Audio, only after the dispatcher turned it on: browsers need a gesture) ----------
  let audio = null;
  let soundOn = false;
  soundToggle.addEventListener("click", toggleSound);
  function toggleSound() {
    soundOn = !soundOn;
    if (soundOn) {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      audio.resume();
    }
    soundToggle.textContent = soundOn ? "Sound on" : "Sound off";
    soundToggle.setAttribute("aria-pressed", String(soundOn));
  }
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

  // --- time against target: colour, icon and words (never colour alone) -----------------------------
  const STATE_SIGNS = { within: "✓", near: "◔", over: "⚠" };
  function targetState(elapsed, target) {
    if (target === null || target === undefined || elapsed === null) return null;
    if (elapsed > target) return "over";
    return elapsed > targets.near_share * target ? "near" : "within";
  }
  function waited(r) {
    return r.first_token_ts ? r.first_token_ts - r.created_ts : now() - r.created_ts;
  }
  function showTarget(td, r) {
    const elapsed = waited(r);
    const target = r.first_token_target_s;
    const state = targetState(elapsed, target);
    td.className = `age target-${state || "none"}`;
    td.dataset.state = state || "";
    td.textContent = target ? `${STATE_SIGNS[state]} ${formatShortDuration(elapsed)} / ${formatDuration(target)} — ${state}`
                            : formatDuration(elapsed);
  }

  function alertState(alert) {
    if (!alert) return null;
    if (alert.acknowledged_ts) return "acknowledged";
    return alert.target_s !== null && now() - alert.raised_ts > alert.target_s ? "overdue" : "waiting";
  }
  function showAlertCell(td, r) {
    const state = alertState(r.alert);
    td.className = `alert-cell alert-${state || "none"}`;
    td.dataset.state = state || "";
    if (!state) { td.textContent = ""; return; }
    if (state === "acknowledged") {
      td.textContent = `✓ acknowledged by ${r.alert.acknowledged_by} in ${formatShortDuration(r.alert.seconds_to_acknowledge)}`;
    } else {
      td.textContent = state === "overdue" ? "⚠ overdue – not acknowledged" : "not acknowledged";
    }
  }

  // The row's alert: its state, and while it waits an Acknowledge button (finished requests' alerts too).
  function alertCell(tr, r) {
    const td = cell(tr, "", "alert-cell");
    showAlertCell(td, r);
    const state = alertState(r.alert);
    if (state === "waiting" || state === "overdue") {
      td.append(" ", actionButton("Acknowledge", "acknowledge", () => acknowledge(r.id)));
    }
  }

  function actionButton(label, className, handler) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = className;
    button.textContent = label;
    button.addEventListener("click", handler);
    return button;
  }

  function buildOpenRow(r) {
    const tr = document.createElement("tr");
    tr.tabIndex = -1;
    tr.dataset.id = r.id;
    tr.dataset.status = r.status;
    tr.dataset.urgency = r.urgency === null ? "" : r.urgency;
    if (r.needs_review) tr.classList.add("needs-review");
    linkCell(tr, r.id);
    requestCell(tr, r);
    cell(tr, r.urgency_label || "unclassified", r.urgency === null ? "unclassified" : `u${r.urgency}`);
    const status = cell(tr, r.status_label, `status status-${r.status}`);
    if (r.worker && severalWorkers && (r.status === "queued" || r.status === "running")) {
      const on = document.createElement("span");
      on.className = "worker-name muted";
      on.textContent = ` on ${r.worker}`;
      status.append(on);
    }
    if (r.needs_review) {
      status.append(" ", reviewBadge(r));
      if (isSupervisor) {
        status.append(" ", actionButton(`Confirm ${r.urgency}`, "confirm-button", () => confirmUrgency(r.id)),
                      " ", actionButton("Change…", "change-button", () => openChange(r.id)));
      }
    }
    cell(tr, r.queue_position, "position");
    showTarget(cell(tr, "", "age"), r);
    alertCell(tr, r);
    cell(tr, `${r.generated_tokens} / ${r.predicted_output_tokens ?? "—"}`, "tokens");
    cell(tr, r.rule_reason || "", "rule");
    tr.hidden = !visible(r);
    return tr;
  }

  function buildFinishedRow(r) {
    const tr = document.createElement("tr");
    tr.tabIndex = -1;
    tr.dataset.id = r.id;
    tr.dataset.status = r.status;
    tr.dataset.urgency = r.urgency === null ? "" : r.urgency;
    linkCell(tr, r.id);
    requestCell(tr, r);
    cell(tr, r.urgency_label || "unclassified", r.urgency === null ? "unclassified" : `u${r.urgency}`);
    cell(tr, statusText(r), `status status-${r.status}`);
    if (r.first_token_ts) showTarget(cell(tr, "", "age"), r); else cell(tr, "—");
    alertCell(tr, r);
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
    const hadFocus = focusedRowId();
    sync(openBody, openElements, openOrder, buildOpenRow, changed);
    sync(finishedBody, finishedElements, finishedOrder, buildFinishedRow, changed);
    openCount.textContent = String(openOrder.length);
    renderAlerts();
    markSelected();
    // A live reorder or rebuild replaced the focused row: focus follows the request, not the position.
    if (hadFocus !== null && focusedRowId() !== hadFocus) rowElement(hadFocus)?.focus({ preventScroll: true });
  }

  // --- alerts: queued until acknowledged; overdue ones repeat their sound -------------------------
  const alertBoxes = new Map();    // id -> element in #announcements
  const lastBeep = new Map();      // id -> when its sound last played (ms)
  const REPEAT_OVERDUE_MS = 10000;

  function renderAlerts() {
    const wanted = new Set(alertOrder);
    for (const [id, box] of alertBoxes) if (!wanted.has(id)) { box.remove(); alertBoxes.delete(id); }
    alertOrder.forEach((id, index) => {
      const r = rows.get(id);
      if (!r) return;
      let box = alertBoxes.get(id);
      if (!box) {
        box = buildAlert(r);
        alertBoxes.set(id, box);
        if (loaded && !announced.has(id)) announceArrival(r);
      }
      announced.add(id);
      if (announcements.children[index] !== box) announcements.insertBefore(box, announcements.children[index] || null);
    });
    loaded = true;
    tick();
  }

  function buildAlert(r) {
    const box = document.createElement("div");
    box.className = `announcement u${r.urgency}`;
    box.dataset.id = r.id;
    const title = document.createElement("strong");
    title.textContent = `Urgency ${labelOf(r.urgency)}: request ${r.id}`;
    const text = document.createElement("a");
    text.href = `/requests/${encodeURIComponent(r.id)}/`;
    text.textContent = r.text;
    const state = document.createElement("span");
    state.className = "alert-state";
    box.append(title, " ", text, " ", state, " ", actionButton("Acknowledge", "acknowledge", () => acknowledge(r.id)));
    return box;
  }

  function announceArrival(r) {
    // Screen readers hear each new alert once; the visual queue is not a live region.
    announcer.textContent = `New alert, urgency ${labelOf(r.urgency)}: request ${r.id}. ${r.text}`;
    beep();
    lastBeep.set(r.id, Date.now());
  }

  function tickAlerts() {
    for (const [id, box] of alertBoxes) {
      const r = rows.get(id);
      if (!r || !r.alert) continue;
      const waitedFor = now() - r.alert.raised_ts;
      const overdue = r.alert.target_s !== null && waitedFor > r.alert.target_s;
      box.classList.toggle("overdue", overdue);
      box.dataset.state = overdue ? "overdue" : "waiting";
      box.querySelector(".alert-state").textContent = overdue
        ? `⚠ OVERDUE: not acknowledged for ${formatDuration(waitedFor)} (target ${formatDuration(r.alert.target_s)})`
        : `waiting ${formatDuration(waitedFor)} of ${formatDuration(r.alert.target_s)}`;
      // Escalation: the tone sounds as the alert turns overdue, then every REPEAT_OVERDUE_MS until acknowledged.
      const escalating = overdue && box.dataset.escalated !== "1";
      if (escalating) {
        box.dataset.escalated = "1";
        announcer.textContent = `Alert overdue: request ${id} not acknowledged.`;
      }
      if (escalating || (overdue && Date.now() - (lastBeep.get(id) || 0) >= REPEAT_OVERDUE_MS)) {
        beep();
        lastBeep.set(id, Date.now());
      }
    }
  }

  // --- actions over the socket (acknowledge, confirm, change); the server answers with `result` ----
  function acknowledge(id) {
    live.send({ type: "acknowledge", request_id: id });
  }
  function confirmUrgency(id) {
    live.send({ type: "confirm_urgency", request_id: id });
  }
  const changeDialog = document.getElementById("change-urgency");
  const changeForm = document.getElementById("change-urgency-form");
  function openChange(id) {
    const r = rows.get(id);
    if (!r) return;
    changeDialog.dataset.id = String(id);
    document.getElementById("change-urgency-id").textContent = String(id);
    document.getElementById("change-urgency-level").value = String(r.urgency ?? 2);
    document.getElementById("change-urgency-reason").value = "";
    changeDialog.showModal();
  }
  changeForm.addEventListener("submit", (event) => {
    event.preventDefault();
    live.send({ type: "change_urgency", request_id: Number(changeDialog.dataset.id),
                urgency: Number(document.getElementById("change-urgency-level").value),
                reason: document.getElementById("change-urgency-reason").value });
    changeDialog.close();
    rowElement(Number(changeDialog.dataset.id))?.focus();
  });
  document.getElementById("change-urgency-cancel").addEventListener("click", () => changeDialog.close());
  function onResult(result) {
    actionResult.textContent = result.message || "";
    actionResult.className = result.ok ? "message success" : "message error";
    actionResult.dataset.action = result.action || "";
    actionResult.dataset.ok = result.ok ? "1" : "0";
  }

  // --- keyboard ----------------------------------------------------------------------------------
  function rowElement(id) { return openElements.get(id) || finishedElements.get(id) || null; }
  function focusedRowId() {
    const tr = document.activeElement?.closest?.("tr[data-id]");
    return tr && (openBody.contains(tr) || finishedBody.contains(tr)) ? Number(tr.dataset.id) : null;
  }
  function visibleRows() {
    return [...openBody.children, ...finishedBody.children].filter((tr) => !tr.hidden);
  }
  function markSelected() {
    for (const tr of visibleRows()) tr.classList.toggle("selected", Number(tr.dataset.id) === selectedId);
  }
  function select(tr) {
    if (!tr) return;
    selectedId = Number(tr.dataset.id);
    markSelected();
    tr.focus();
  }
  function move(step) {
    const list = visibleRows();
    if (!list.length) return;
    const index = list.findIndex((tr) => Number(tr.dataset.id) === selectedId);
    select(list[index < 0 ? 0 : Math.min(Math.max(index + step, 0), list.length - 1)]);
  }
  function focusMostUrgentAlert() {
    const id = alertOrder[0];
    if (id === undefined) { onResult({ ok: true, message: "No alert is waiting for acknowledgement." }); return; }
    const tr = rowElement(id);
    if (tr && !tr.hidden) select(tr);
    else alertBoxes.get(id)?.querySelector("button.acknowledge")?.focus();
  }
  const shortcuts = document.getElementById("shortcuts");
  document.getElementById("shortcuts-button").addEventListener("click", () => shortcuts.showModal());
  shortcuts.addEventListener("close", () => {
    // back to the selected request, not to a button of a dialog that is no longer shown
    if (!shortcuts.contains(document.activeElement)) return;
    const tr = selectedId !== null ? rowElement(selectedId) : null;
    if (tr && !tr.hidden) tr.focus(); else document.activeElement.blur();
  });
  const KEYS = {
    j: () => move(1), ArrowDown: () => move(1), k: () => move(-1), ArrowUp: () => move(-1),
    o: () => openSelected(), Enter: () => openSelected(),
    a: () => {
      const target = selectedId !== null && alertOrder.includes(selectedId) ? selectedId : alertOrder[0];
      if (target === undefined) onResult({ ok: false, message: "No alert is waiting for acknowledgement." });
      else acknowledge(target);
    },
    f: focusMostUrgentAlert,
    c: () => { if (selectedId !== null) confirmUrgency(selectedId); },
    u: () => { if (selectedId !== null) openChange(selectedId); },
    s: toggleSound,
    "?": () => shortcuts.showModal(),
  };
  function openSelected() {
    if (selectedId !== null && document.activeElement?.closest?.("tr[data-id]")) {
      location.href = `/requests/${encodeURIComponent(selectedId)}/`;
    }
  }
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    const target = event.target;
    // a closed dialog may keep the focus on its Close button (Chromium): only an open one keeps the keys
    if (target.closest && target.closest("input, select, textarea, dialog[open], [contenteditable]")) return;
    if (event.key === "Enter" && target.closest && target.closest("a, button")) return;  // their own action
    const action = KEYS[event.key];
    if (!action) return;
    event.preventDefault();
    action();
  });
  document.addEventListener("focusin", (event) => {
    const tr = event.target.closest?.("tr[data-id]");
    if (tr && tr === event.target) { selectedId = Number(tr.dataset.id); markSelected(); }
  });

  function showWorkers(workers) {
    // One worker: the line above says it all. Several: one line each, silent ones flagged, and every row names
    // its worker (rows are rebuilt when that starts or stops). Returns whether the rows must be rebuilt.
    const several = Array.isArray(workers) && workers.length > 1;
    const flipped = several !== severalWorkers;
    severalWorkers = several;
    workerList.hidden = !several;
    if (!several) return flipped;
    workerList.replaceChildren(...workers.map((w) => {
      const item = document.createElement("li");
      item.dataset.state = w.state;
      item.textContent = w.alive
        ? `${w.name}: ${w.state === "busy" ? "busy" : "alive"}, ${w.tokens_per_second ?? 0} tokens/s, ` +
          `${w.running} running, ${w.waiting} waiting, room for ${w.room ?? "—"}`
        : `${w.name}: silent for ${formatDuration(now() - w.last_seen_ts)}; its requests go back to the queue`;
      return item;
    }));
    return flipped;
  }

  function showWorker(worker) {
    if (!worker) return;
    const stats = worker.stats || {};
    workerState.dataset.state = worker.state || (worker.alive ? "alive" : "silent");
    if (worker.state === "busy") {
      workerState.textContent = `Inference worker busy: step running for ${Math.round(stats.step_running_s || 0)} s, ` +
        `${stats.active_requests ?? 0} generating, ${stats.waiting ?? 0} waiting.`;
      return;
    }
    if (!worker.alive) {
      workerState.textContent = worker.last_seen_ts === null || worker.last_seen_ts === undefined
        ? "No inference worker has reported yet: is it started (manage.py serve or python -m inference_worker)?"
        : `Inference worker silent for ${formatDuration(now() - worker.last_seen_ts)}: check that it is running.`;
      return;
    }
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
    for (const r of board.open.concat(board.finished, board.alerts || [])) rows.set(r.id, r);
    openOrder = board.open.map((r) => r.id);
    finishedOrder = board.finished.map((r) => r.id);
    alertOrder = (board.alerts || []).map((r) => r.id);
    if (board.targets) targets = board.targets;
    version = newVersion;
    showWorkers(board.workers);
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
    if (delta.alerts) alertOrder = delta.alerts;
    const keep = new Set(openOrder.concat(finishedOrder, alertOrder));
    for (const id of [...rows.keys()]) if (!keep.has(id)) rows.delete(id);
    version = delta.version;
    render(changed);
    if (delta.worker) showWorker(delta.worker);
    if (delta.workers && showWorkers(delta.workers)) render(new Set(rows.keys()));
  }

  // Waits, target states and alert states tick locally between messages (and after every render, so that a
  // row and its alert in the queue always show the same state).
  function tick() {
    for (const [id, tr] of [...openElements, ...finishedElements]) {
      const r = rows.get(id);
      if (!r) continue;
      const age = tr.querySelector("td.age");
      if (age && !r.first_token_ts) showTarget(age, r);
      const alert = tr.querySelector("td.alert-cell");
      if (alert && r.alert && !r.alert.acknowledged_ts) {
        const button = alert.querySelector("button");
        showAlertCell(alert, r);
        if (button) alert.append(" ", button);
      }
    }
    tickAlerts();
  }
  setInterval(tick, 1000);

  // --- charts (Plotly, served from our own static files) ---------------------------------------
  // Every chart spans the same hour, so one point draws a readable axis, and an empty chart says so.
  const chartIds = { waiting: "chart-waiting", ttft: "chart-ttft", acknowledge: "chart-acknowledge",
                     queue: "chart-queue", tokens: "chart-tokens" };
  const plotConfig = { displayModeBar: false, responsive: true };
  const NO_DATA = "No data in the last hour";
  function layout(id, yTitle, charts, empty) {
    const element = document.getElementById(id);
    element.dataset.empty = empty ? "1" : "0";
    return {
      title: { text: element.dataset.title, font: { size: 14 } },
      margin: { l: 50, r: 10, t: 40, b: 40 }, height: 260,
      xaxis: { type: "date", range: [new Date(charts.window_start_ts * 1000), new Date(charts.generated_ts * 1000)],
               tickformat: "%H:%M" },
      yaxis: { title: { text: yTitle }, rangemode: "tozero", ...(empty ? { range: [0, 1], showticklabels: false } : {}) },
      legend: { orientation: "h" }, uirevision: id,
      annotations: empty ? [{ text: NO_DATA, xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
                              font: { size: 16, color: "#444" } }] : [],
    };
  }
  const toDates = (xs) => xs.map((x) => new Date(x * 1000));
  function classTraces(perClass, mode, levels) {
    return URGENCY_SCALE.filter(({ level }) => !levels || levels.includes(level)).map(({ level, colour }) => {
      const s = perClass[String(level)] || { x: [], y: [] };
      return { name: `urgency ${level}`, x: toDates(s.x), y: s.y, mode, type: "scatter",
               line: { color: colour, shape: mode === "lines" ? "hv" : "linear" }, marker: { color: colour } };
    });
  }
  const hasPoints = (perClass) => Object.values(perClass).some((s) => s.y && s.y.some((v) => v !== null));
  const alertLevels = () => targets.acknowledge_s.map((t, level) => (t === null ? null : level)).filter((l) => l !== null);
  let tokensDrawn = false;
  function renderCharts(charts) {
    if (charts.targets) targets = charts.targets;
    showAttainment(charts.attainment);
    if (!window.Plotly) return;
    Plotly.react(chartIds.waiting, classTraces(charts.waiting, "lines+markers"),
      layout(chartIds.waiting, "seconds", charts, !hasPoints(charts.waiting)), plotConfig);
    Plotly.react(chartIds.ttft, classTraces(charts.ttft, "lines+markers"),
      layout(chartIds.ttft, "seconds", charts, !hasPoints(charts.ttft)), plotConfig);
    Plotly.react(chartIds.acknowledge, classTraces(charts.acknowledge, "lines+markers", alertLevels()),
      layout(chartIds.acknowledge, "seconds", charts, !hasPoints(charts.acknowledge)), plotConfig);
    const queue = {};
    for (const level of Object.keys(charts.queue.by_class)) queue[level] = { x: charts.queue.x, y: charts.queue.by_class[level] };
    const queueEmpty = !Object.values(charts.queue.by_class).some((ys) => ys.some((v) => v > 0));
    Plotly.react(chartIds.queue, queueEmpty ? [] : classTraces(queue, "lines"),
      layout(chartIds.queue, "requests", charts, queueEmpty), plotConfig);
    Plotly.react(chartIds.tokens, [{ name: "tokens/s", x: toDates(charts.tokens.x), y: charts.tokens.y, type: "scatter",
      mode: "lines", line: { color: "#12355b" } }], layout(chartIds.tokens, "tokens/s", charts, !charts.tokens.x.length), plotConfig);
    tokensDrawn = charts.tokens.x.length > 0;
    document.body.dataset.chartsAt = String(charts.generated_ts);
  }
  function showAttainment(attainment) {
    if (!attainment) return;
    const parts = attainment.map((a, level) => {
      const target = formatDuration(targets.first_token_s[level]);
      return a.total ? `${level} (${target}): ${Math.round(a.share * 100)}% of ${a.total}` : `${level} (${target}): no requests`;
    });
    attainmentLine.textContent = `First guidance within target, last hour: ${parts.join(" · ")}`;
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
      case "result": onResult(message); break;
      default: break;
    }
  }, showConnection(document.getElementById("connection")));
})();
