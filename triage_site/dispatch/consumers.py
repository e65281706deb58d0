"""Websockets for the dispatcher board and for one request's page.

Both refuse anyone who is not a dispatcher (close code 4403). The origin is checked before a
consumer runs, by AllowedHostsOriginValidator in `triage_site.asgi`.
"""
import asyncio
import json
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from triage_site.live import events
from triage_site.permissions import is_dispatcher

from . import board_actions, selectors
from .hub import KEEPALIVE_INTERVAL, hub_for_loop

# A request page gets at most one snapshot per SNAPSHOT_INTERVAL on changes, and one per
# KEEPALIVE_INTERVAL (the board's too) anyway: its stored answer and timeline are never staler than that.
SNAPSHOT_INTERVAL = 0.25
UNKNOWN = {"type": "error", "message": "Unknown message; send {\"type\": \"refresh\"}."}
BOARD_UNKNOWN = {"type": "error", "message": "Unknown message; send {\"type\": \"refresh\"}, or an action: "
                                           + ", ".join(board_actions.ACTIONS) + " with a request_id."}
NOT_JSON = {"type": "error", "message": "Messages must be JSON text, e.g. {\"type\": \"refresh\"}."}
FORBIDDEN = 4403
NOT_FOUND = 4404


class JsonMessagesConsumer(AsyncJsonWebsocketConsumer):
    """Answers anything that is not a JSON text frame with a clear error instead of dying."""

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data is None:
            await self.send_json(NOT_JSON)
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):
            await self.send_json(NOT_JSON)
            return
        await self.receive_json(content, **kwargs)


async def _allowed(scope):
    user = scope.get("user")
    return user is not None and await database_sync_to_async(is_dispatcher)(user)


class DispatcherConsumer(JsonMessagesConsumer):
    """The board: every dashboard of a process shares one feed (see hub.py).

    `?delta=1` asks for `board.delta` messages after the first full `board`; without it every
    change sends the full board.
    """

    async def connect(self):
        if not await _allowed(self.scope):
            await self.close(code=FORBIDDEN)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.wants_deltas = query.get("delta", ["0"])[0] in ("1", "true")
        self.hub = hub_for_loop()
        await self.accept()
        await self.hub.join(self, self.wants_deltas)

    async def disconnect(self, code):
        hub = getattr(self, "hub", None)
        if hub is not None:
            await hub.leave(self)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "refresh":
            await self.hub.resend(self)
        elif kind in board_actions.ACTIONS:
            # Rights are checked again for each action: a dispatcher removed from the group since connecting is refused.
            result = await database_sync_to_async(board_actions.perform)(self.scope["user"], content)
            await self.send_json(result)
        else:
            await self.send_json(BOARD_UNKNOWN)


class RequestConsumer(JsonMessagesConsumer):
    """One request: its state, its timeline, and its answer as it is written."""

    async def connect(self):
        if not await _allowed(self.scope):
            await self.close(code=FORBIDDEN)
            return
        self.request_id = int(self.scope["url_route"]["kwargs"]["pk"])
        self.group = events.request_group(self.request_id)
        self._last_snapshot = 0.0
        self._pending = None
        await self.accept()
        snapshot = await self._read_snapshot()
        if snapshot is None:
            await self.send_json({"type": "error", "message": f"There is no request {self.request_id}."})
            await self.close(code=NOT_FOUND)
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self._send(snapshot)
        self._keepalive = asyncio.ensure_future(self._keep_alive())

    async def disconnect(self, code):
        for task in (getattr(self, "_keepalive", None), getattr(self, "_pending", None)):
            if task is not None:
                task.cancel()
        if hasattr(self, "_keepalive"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "refresh":
            await self.send_snapshot()
        else:
            await self.send_json(UNKNOWN)

    async def _read_snapshot(self):
        return await database_sync_to_async(selectors.request_snapshot, thread_sensitive=False)(self.request_id)

    async def _send(self, snapshot):
        self._last_snapshot = time.monotonic()
        await self.send_json({"type": "request", "request": snapshot})

    async def send_snapshot(self):
        await self._send(await self._read_snapshot())

    async def _keep_alive(self):
        while True:
            await asyncio.sleep(KEEPALIVE_INTERVAL)
            if time.monotonic() - self._last_snapshot >= KEEPALIVE_INTERVAL * 0.9:
                await self.send_snapshot()

    async def request_changed(self, event):
        """Coalesce bursts: one snapshot now, or one at the end of the interval."""
        if self._pending is not None and not self._pending.done():
            return
        delay = self._last_snapshot + SNAPSHOT_INTERVAL - time.monotonic()
        if delay <= 0:
            await self.send_snapshot()
        else:
            self._pending = asyncio.ensure_future(self._snapshot_after(delay))

    async def _snapshot_after(self, delay):
        await asyncio.sleep(delay)
        await self.send_snapshot()

    async def answer_delta(self, event):
        message = {"type": "answer.delta", "text": event["text"], "generated_tokens": event["generated_tokens"]}
        if "offset" in event:
            message["offset"] = event["offset"]
        await self.send_json(message)

    async def worker_stats(self, event):
        """Request pages are not in the dashboard group; ignore stray stats."""
