// One request: state, timeline, classifier reasoning, and the answer streamed as it is written.
// Deltas carry their character offset in the answer, so a stored snapshot (saved once a second)
// and live deltas merge without losing or repeating text, also after a reconnect.
"use strict";
(() => {
  const root = document.getElementById("request");
  const id = root.dataset.requestId;
  const answerElement = document.getElementById("answer");
  const show = (elementId, value) => {
    const element = document.getElementById(elementId);
    if (element) element.textContent = value === null || value === undefined || value === "" ? "—" : String(value);
  };

  let answer = answerElement.textContent;
  let finished = false;
  const pending = new Map(); // offset -> text of deltas that arrived before the text in front of them

  function place(offset, text) {
    if (offset > answer.length) { pending.set(offset, text); return false; }
    if (offset + text.length > answer.length) answer = answer.slice(0, offset) + text;
    return true;
  }
  function drainPending() {
    let progress = true;
    while (progress && pending.size) {
      progress = false;
      for (const [offset, text] of [...pending.entries()].sort((a, b) => a[0] - b[0])) {
        if (offset <= answer.length) { pending.delete(offset); place(offset, text); progress = true; }
      }
    }
  }
  function showAnswer() {
    if (answerElement.textContent !== answer) answerElement.textContent = answer;
    answerElement.dataset.length = String(answer.length);
  }

  function timeText(ts) {
    return ts ? new Date(ts * 1000).toLocaleTimeString() : "—";
  }

  function renderTimeline(items, createdTs) {
    const list = document.getElementById("timeline");
    list.replaceChildren(...items.map((item) => {
      const li = document.createElement("li");
      li.dataset.key = item.key;
      li.classList.toggle("reached", Boolean(item.ts));
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = `${item.label}: `;
      const time = document.createElement("time");
      time.textContent = timeText(item.ts);
      if (item.at) time.dateTime = item.at;
      li.append(label, time);
      if (item.ts && item.key !== "received") {
        const after = document.createElement("span");
        after.className = "muted";
        after.textContent = ` (+${(item.ts - createdTs).toFixed(1)} s)`;
        li.appendChild(after);
      }
      return li;
    }));
  }

  function renderClassifier(r) {
    show("classifier-name", r.classifier_name || "not yet classified");
    const info = r.classifier || { reasoning: "", probabilities: [], facts: [] };
    document.getElementById("reasoning").textContent = info.reasoning || "";
    const body = document.querySelector("#probabilities tbody");
    body.replaceChildren(...info.probabilities.map((p) => {
      const tr = document.createElement("tr");
      cell(tr, p.label, `u${p.level}`);
      const bar = document.createElement("td");
      const meter = document.createElement("meter");
      meter.min = 0; meter.max = 1; meter.value = p.probability;
      bar.append(meter, ` ${(p.probability * 100).toFixed(1)} %`);
      tr.appendChild(bar);
      return tr;
    }));
    const facts = document.getElementById("classifier-facts");
    facts.replaceChildren(...info.facts.flatMap((f) => {
      const dt = document.createElement("dt");
      dt.textContent = f.key;
      const dd = document.createElement("dd");
      dd.textContent = f.value;
      return [dt, dd];
    }));
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderCard(card) {
    const article = element("article", "protocol-card");
    article.dataset.cardId = card.id;
    article.dataset.version = String(card.version);
    const title = element("h2", "", card.title);
    if (card.send_now) title.append(" ", element("span", "badge send-now", "Send help now"));
    const steps = element("ol", "steps");
    steps.append(...card.steps.map((step) => element("li", "", step)));
    article.append(title, steps);
    if (card.call_back_if.length) {
      const lines = element("ul", "call-back");
      lines.append(...card.call_back_if.map((line) => element("li", "", line)));
      article.append(element("p", "call-back-heading", "Call back straight away if:"), lines);
    }
    article.append(element("p", "muted guidelines",
      `Card ${card.id} v${card.version}; follows ${card.guidelines.join("; ")}.`));
    return article;
  }

  // Cards are chosen with the classification: shown the moment a snapshot carries them, before any token.
  function renderCards(cards) {
    const section = document.getElementById("protocol-cards");
    const shown = [...section.querySelectorAll(".protocol-card")].map((a) => `${a.dataset.cardId}@${a.dataset.version}`);
    const wanted = (cards || []).map((card) => `${card.id}@${card.version}`);
    if (!wanted.length || shown.join() === wanted.join()) return;
    section.replaceChildren(...cards.map(renderCard));
  }

  function renderWithdrawn(reason) {
    const notice = document.getElementById("withdrawn");
    notice.hidden = !reason;
    notice.textContent = reason ? `${reason}. Read the protocol card above.` : "";
    answerElement.hidden = Boolean(reason);
  }

  // The alert box: who acknowledged it and when, or how long it has waited against its target.
  function renderAlert(alert) {
    const box = document.getElementById("alert");
    box.hidden = !alert;
    if (!alert) return;
    const state = document.getElementById("alert-state");
    document.getElementById("acknowledge-form").hidden = Boolean(alert.acknowledged_ts);
    box.dataset.acknowledged = alert.acknowledged_ts ? "1" : "";
    state.textContent = alert.acknowledged_ts
      ? `Acknowledged by ${alert.acknowledged_by} at ${timeText(alert.acknowledged_ts)}, ` +
        `${Math.round(alert.seconds_to_acknowledge)} s after the alert.`
      : `Raised at ${timeText(alert.raised_ts)}; not yet acknowledged (target ${Math.round(alert.target_s)} s).`;
  }

  function onSnapshot(r) {
    // Running after queued: a generation starts, perhaps again (new cards after an override, another worker
    // resuming). Deltas of an earlier one still held back would otherwise land in the new answer.
    if (r.status === "running" && root.dataset.status === "queued") pending.clear();
    renderCards(r.cards);
    renderAlert(r.alert);
    renderWithdrawn(r.answer_withdrawn);
    show("status", statusText(r));
    show("urgency", r.urgency_label || "not yet classified");
    document.getElementById("urgency").className = r.urgency === null ? "" : `u${r.urgency}`;
    show("rule-reason", r.rule_reason);
    show("position", r.queue_position);
    show("tokens", r.generated_tokens);
    show("predicted", r.predicted_output_tokens);
    document.getElementById("error").textContent = r.error || "";
    root.dataset.status = r.status;
    finished = r.status === "done" || r.status === "failed";
    if (finished || r.status === "queued" || r.answer.length > answer.length) {
      // Finished: the stored answer is final. Queued: a restarted generation starts again.
      answer = r.answer;
      pending.clear();
    }
    drainPending();
    showAnswer();
    renderTimeline(r.timeline, r.created_ts);
    renderClassifier(r);
    if (pending.size && !finished) setTimeout(() => live.send({ type: "refresh" }), 300);
  }

  function onDelta(message) {
    if (finished) return;
    if (typeof message.offset === "number") place(message.offset, message.text);
    else answer += message.text;
    drainPending();
    showAnswer();
    show("tokens", message.generated_tokens);
  }

  const live = openLiveSocket(`/ws/requests/${encodeURIComponent(id)}/`, (message) => {
    if (message.type === "request" && message.request) onSnapshot(message.request);
    else if (message.type === "answer.delta") onDelta(message);
  }, showConnection(document.getElementById("connection")));
})();
