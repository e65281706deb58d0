"use strict";
(function () {
  const root = document.getElementById("request");
  const id = root.dataset.requestId;
  const answer = document.getElementById("answer");
  const show = (elementId, value) => { document.getElementById(elementId).textContent = value === null || value === undefined || value === "" ? "—" : String(value); };

  openLiveSocket(`/ws/requests/${id}/`, (message) => {
    if (message.type === "request" && message.request) {
      const r = message.request;
      show("status", r.status_label);
      show("urgency", r.urgency_label);
      show("rule-reason", r.rule_reason);
      show("position", r.queue_position);
      show("tokens", r.generated_tokens);
      answer.textContent = r.answer;
      root.dataset.status = r.status;
    } else if (message.type === "answer.delta") {
      answer.textContent += message.text;
      show("tokens", message.generated_tokens);
    }
  }, () => {});
})();
