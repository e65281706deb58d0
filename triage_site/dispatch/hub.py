"""One board feed per server process, shared by every dashboard connected to it.

Without this, each of N dashboards receives each change event from the channel layer and reads
the board from the database itself: N group messages and N reads per change. The hub instead
subscribes once to the `dashboard` group, reads the board at most once per BOARD_INTERVAL (and at
least once per KEEPALIVE_INTERVAL, so that a lost event costs at most that long), encodes the
result once and hands the same text to every connection:

- `board` (full snapshot) when a dashboard connects or asks for a refresh, and on every change
  for clients that did not ask for deltas (scripts, the end-to-end test);
- `board.delta` for the browser page (`?delta=1`): only the rows that changed, `[id, position]`
  pairs for rows that only moved in the scheduler's queue and, when it changed, the order; each
  delta names the version it applies to, so a client that missed one
  asks for a full snapshot;
- `tick` when nothing changed, so that a page can tell a live connection from a dead one;
- `charts` at most once per CHARTS_INTERVAL, and `worker` with each worker heartbeat.

The hub lives on the event loop of the consumers that use it and stops with the last of them.
"""
import asyncio
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from triage_site.live import events

from . import selectors

logger = logging.getLogger(__name__)

BOARD_INTERVAL = 0.1        # at most 10 board reads a second per process
KEEPALIVE_INTERVAL = 1.0    # at least one read (and one message) a second per process
CHARTS_INTERVAL = 1.5       # chart data at most this often
GROUP_RENEW_SECONDS = 600   # re-join the group long before the channel layer's group expiry

_hubs = {}


def _read(function):
    """Board reads run off the thread that serves Django's sync views (thread_sensitive=False):
    a slow form submission must not hold up every dashboard's update."""
    return database_sync_to_async(function, thread_sensitive=False)


def hub_for_loop():
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.closed:
        hub = _hubs[loop] = BoardHub()
    return hub


def _encode(message):
    return json.dumps(message, separators=(",", ":"))


# Not compared when deciding whether a row changed: ticking fields change by themselves, and queue
# positions shift for every row behind a request that starts running. Positions travel on their own
# as [id, position] pairs: with hundreds waiting, resending whole rows for each shift made every delta
# tens of kilobytes to each of hundreds of dashboards.
# The board's lists of rows, each sent as an order of ids when it changes.
ORDERED_PARTS = ("open", "finished", "alerts")
_SENT_APART = (*selectors.TICKING_FIELDS, "queue_position")


def _comparable(row):
    return {k: v for k, v in row.items() if k not in _SENT_APART}


class BoardHub:
    def __init__(self):
        self.layer = get_channel_layer()
        self.consumers = {}          # consumer -> wants deltas
        self.lock = asyncio.Lock()
        self.dirty = asyncio.Event()
        self.closed = False
        self.version = 0
        self.board = None
        self.rows = {}
        self.order = tuple([] for _ in ORDERED_PARTS)
        self.board_at = 0.0
        self.full_text = None
        self.charts_text = None
        self.charts_at = 0.0
        self.charts_dirty = True
        self.channel = None
        self.tasks = []
        self.reads = 0

    # --- membership ------------------------------------------------------------------------------
    async def join(self, consumer, deltas):
        async with self.lock:
            if not self.tasks:
                self.channel = await self.layer.new_channel()
                await self.layer.group_add(events.DASHBOARD_GROUP, self.channel)
                self.tasks = [asyncio.ensure_future(self._listen()), asyncio.ensure_future(self._flush_loop())]
            if self.board is None or self.dirty.is_set() or time.monotonic() - self.board_at > KEEPALIVE_INTERVAL:
                await self._refresh_board()
            if self.charts_text is None or time.monotonic() - self.charts_at > CHARTS_INTERVAL:
                await self._refresh_charts(broadcast=False)
            self.consumers[consumer] = deltas
            await self._send(consumer, self._full_text())
            await self._send(consumer, self.charts_text)

    async def leave(self, consumer):
        self.consumers.pop(consumer, None)
        if not self.consumers and self.tasks:
            self.closed = True
            for task in self.tasks:
                task.cancel()
            self.tasks = []
            try:
                await self.layer.group_discard(events.DASHBOARD_GROUP, self.channel)
            except Exception:
                logger.debug("could not leave the dashboard group", exc_info=True)
            if _hubs.get(asyncio.get_running_loop()) is self:
                del _hubs[asyncio.get_running_loop()]

    async def resend(self, consumer):
        """A client asked for the whole board (it missed a delta, or reconnected)."""
        async with self.lock:
            if self.dirty.is_set() or time.monotonic() - self.board_at > KEEPALIVE_INTERVAL:
                await self._refresh_board()
            await self._send(consumer, self._full_text())
            await self._send(consumer, self.charts_text)

    # --- background tasks --------------------------------------------------------------------------
    async def _listen(self):
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("dashboard feed lost the channel layer; retrying", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            kind = message.get("type")
            if kind == "request.changed":
                self.charts_dirty = True
                self.dirty.set()
            elif kind == "worker.stats":
                self.charts_dirty = True
                self.dirty.set()
                text = _encode({"type": "worker", "stats": message.get("stats", {})})
                await self._broadcast(text, lambda deltas: True)

    async def _flush_loop(self):
        renewed = time.monotonic()
        while True:
            try:
                await asyncio.wait_for(self.dirty.wait(), timeout=KEEPALIVE_INTERVAL)
            except asyncio.TimeoutError:
                pass
            wait = self.board_at + BOARD_INTERVAL - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                async with self.lock:
                    await self._refresh_board()
                if self.charts_dirty and time.monotonic() - self.charts_at >= CHARTS_INTERVAL:
                    async with self.lock:
                        await self._refresh_charts(broadcast=True)
                if time.monotonic() - renewed > GROUP_RENEW_SECONDS:
                    await self.layer.group_add(events.DASHBOARD_GROUP, self.channel)
                    renewed = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("dashboard refresh failed; retrying")
                await asyncio.sleep(1.0)

    # --- snapshots (call with the lock held) --------------------------------------------------------
    async def _refresh_board(self):
        self.dirty.clear()  # a change that lands while we read sets it again
        board = await _read(selectors.board_snapshot)()
        self.reads += 1
        self.board_at = time.monotonic()
        rows = {row["id"]: row for row in board["open"] + board["finished"] + board["alerts"]}
        order = tuple([row["id"] for row in board[part]] for part in ORDERED_PARTS)
        upsert = [row for row_id, row in rows.items()
                  if row_id not in self.rows or _comparable(self.rows[row_id]) != _comparable(row)]
        upserted = {row["id"] for row in upsert}
        moved = [[row_id, row["queue_position"]] for row_id, row in rows.items()
                 if row_id not in upserted and self.rows[row_id]["queue_position"] != row["queue_position"]]
        first = self.board is None
        previous_order, previous_worker = self.order, (self.board or {}).get("worker")
        previous_workers = (self.board or {}).get("workers")
        changed = (bool(upsert) or bool(moved) or order != previous_order or board["worker"] != previous_worker
                   or board["workers"] != previous_workers)
        previous_version = self.version
        self.board, self.rows, self.order = board, rows, order
        if first or changed:
            self.version += 1
            self.full_text = None
        if first:
            return
        if changed:
            delta = {"type": "board.delta", "base": previous_version, "version": self.version,
                     "generated_ts": board["generated_ts"], "upsert": upsert}
            if moved:
                delta["positions"] = moved
            if order != previous_order:
                delta.update(zip(ORDERED_PARTS, order))
            if board["worker"] != previous_worker:
                delta["worker"] = board["worker"]
            if board["workers"] != previous_workers:
                delta["workers"] = board["workers"]
            await self._broadcast(_encode(delta), lambda deltas: deltas)
            if any(not deltas for deltas in self.consumers.values()):
                await self._broadcast(self._full_text(), lambda deltas: not deltas)
        else:
            tick = _encode({"type": "tick", "version": self.version, "generated_ts": board["generated_ts"]})
            await self._broadcast(tick, lambda deltas: deltas)

    def _full_text(self):
        if self.full_text is None:
            self.full_text = _encode({"type": "board", "version": self.version, "board": self.board})
        return self.full_text

    async def _refresh_charts(self, broadcast):
        self.charts_dirty = False
        charts = await _read(selectors.charts_snapshot)()
        self.charts_at = time.monotonic()
        self.charts_text = _encode({"type": "charts", "charts": charts})
        if broadcast:
            await self._broadcast(self.charts_text, lambda deltas: True)

    # --- sending ----------------------------------------------------------------------------------
    async def _broadcast(self, text, wanted):
        for consumer, deltas in list(self.consumers.items()):
            # one that left while this broadcast awaited (signed out, lost its rights) gets nothing more
            if consumer in self.consumers and wanted(deltas):
                await self._send(consumer, text)

    async def _send(self, consumer, text):
        try:
            await consumer.send(text_data=text)
        except Exception:
            logger.debug("dropping a dashboard that cannot be written to", exc_info=True)
            self.consumers.pop(consumer, None)
