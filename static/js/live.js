// A websocket that reconnects by itself; the server sends a full snapshot each time it opens.
// The server writes at least once a second; a socket silent for `staleAfter` ms is treated as
// dead and replaced, and the page is marked stale (body.stale) after 2 s without news.
"use strict";
function openLiveSocket(path, onMessage, onState, options) {
  const staleAfter = options?.staleAfter || 3500;
  let socket = null;
  let delay = 250;
  let lastMessage = Date.now();
  let reconnectTimer = null;
  let state = "";
  const setState = (next) => {
    if (next === state) return;
    state = next;
    document.body.dataset.connection = next;
    if (onState) onState(next);
  };

  function scheduleReconnect() {
    if (reconnectTimer) return;
    setState("reconnecting");
    reconnectTimer = setTimeout(() => { reconnectTimer = null; connect(); }, delay);
    delay = Math.min(delay * 2, 4000);
  }

  function drop(current) {
    current.onopen = current.onmessage = current.onclose = current.onerror = null;
    try { current.close(); } catch (error) { /* already closed */ }
    if (socket === current) socket = null;
    scheduleReconnect();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const current = new WebSocket(`${scheme}://${location.host}${path}`);
    socket = current;
    current.onopen = () => { delay = 250; lastMessage = Date.now(); setState("live"); };
    current.onmessage = (event) => {
      lastMessage = Date.now();
      if (state !== "live") setState("live");
      document.body.classList.remove("stale");
      onMessage(JSON.parse(event.data));
    };
    current.onclose = (event) => {
      if (event.code === 4403) setState("refused");
      drop(current);
    };
  }

  setInterval(() => {
    const silent = Date.now() - lastMessage;
    document.body.classList.toggle("stale", silent > 2000);
    if (socket && socket.readyState === WebSocket.OPEN && silent > staleAfter) drop(socket);
  }, 250);

  connect();
  return {
    send(message) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    },
    get state() { return state; },
  };
}

const CONNECTION_LABELS = { live: "live", reconnecting: "reconnecting…", refused: "not allowed – sign in again" };

function showConnection(element) {
  return (state) => {
    element.textContent = CONNECTION_LABELS[state] || state;
    element.dataset.state = state;
  };
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "—" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function statusText(request) {
  return `${request.status_label}${request.needs_review ? " (needs review)" : ""}`;
}

// An open request the classifier was unsure of: a text badge (not colour alone) to the confirm-urgency prompt.
function reviewBadge(request) {
  const a = document.createElement("a");
  a.className = "badge review-badge";
  a.href = `/requests/${encodeURIComponent(request.id)}/#confirm-urgency`;
  a.textContent = "Confirm urgency";
  return a;
}

// Like formatDuration, with tenths below 10 s: a first token after 0.4 s is not "0 s".
function formatShortDuration(seconds) {
  if (typeof seconds === "number" && seconds >= 0 && seconds < 10) return `${seconds.toFixed(1)} s`;
  return formatDuration(seconds);
}

function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}
