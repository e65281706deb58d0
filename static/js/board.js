"use strict";
(function () {
  const openBody = document.getElementById("open-requests");
  const finishedBody = document.getElementById("finished-requests");
  const connection = document.getElementById("connection");
  const workerState = document.getElementById("worker-state");

  function linkCell(row, id) {
    const td = document.createElement("td");
    const a = document.createElement("a");
    a.href = `/requests/${id}/`;
    a.textContent = String(id);
    td.appendChild(a);
    row.appendChild(td);
  }

  function renderOpen(rows) {
    openBody.replaceChildren(...rows.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.id = r.id;
      tr.dataset.status = r.status;
      linkCell(tr, r.id);
      cell(tr, r.text);
      cell(tr, r.urgency_label || "unclassified", `u${r.urgency}`);
      cell(tr, r.status_label + (r.needs_review ? " (needs review)" : ""), "status");
      cell(tr, r.queue_position, "position");
      cell(tr, `${r.waiting_seconds} s`);
      cell(tr, r.generated_tokens);
      cell(tr, r.rule_reason || "");
      return tr;
    }));
  }

  function renderFinished(rows) {
    finishedBody.replaceChildren(...rows.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.id = r.id;
      tr.dataset.status = r.status;
      linkCell(tr, r.id);
      cell(tr, r.text);
      cell(tr, r.urgency_label, `u${r.urgency}`);
      cell(tr, r.status_label, "status");
      cell(tr, `${r.waiting_seconds} s`);
      cell(tr, r.generated_tokens);
      return tr;
    }));
  }

  openLiveSocket("/ws/board/", (message) => {
    if (message.type === "board") {
      renderOpen(message.board.open);
      renderFinished(message.board.finished);
      workerState.textContent = message.board.worker.alive ? "Inference worker running." : "Inference worker not seen in the last 10 s.";
    }
  }, (state) => { connection.textContent = state; });
})();
