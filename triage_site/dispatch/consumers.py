"""Websockets for the dispatcher board and for one request's page."""
import asyncio
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import events, selectors
from .permissions import is_dispatcher

# At most one board snapshot per this many seconds per connection: a burst of
# changes costs one database read, and nothing is staler than this.
SNAPSHOT_INTERVAL = 0.25


class DispatcherConsumer(AsyncJsonWebsocketConsumer):
    group = events.DASHBOARD_GROUP

    async def connect(self):
        if not await database_sync_to_async(is_dispatcher)(self.scope["user"]):
            await self.close(code=4403)
            return
        self._snapshot_pending = False
        self._last_snapshot = 0.0
        await self.channel_layer.group_add(self.group_name(), self.channel_name)
        await self.accept()
        await self.send_snapshot()

    def group_name(self):
        return self.group

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group_name(), self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "refresh":
            await self.send_snapshot()
        else:
            await self.send_json({"type": "error", "message": "Unknown message; send {\"type\": \"refresh\"}."})

    async def send_snapshot(self):
        self._last_snapshot = time.monotonic()
        self._snapshot_pending = False
        snapshot = await database_sync_to_async(selectors.board_snapshot)()
        await self.send_json({"type": "board", "board": snapshot})

    async def request_changed(self, event):
        """Coalesce bursts: one snapshot now, or one scheduled for the end of the interval."""
        if self._snapshot_pending:
            return
        delay = self._last_snapshot + SNAPSHOT_INTERVAL - time.monotonic()
        if delay <= 0:
            await self.send_snapshot()
            return
        self._snapshot_pending = True
        self._delayed = asyncio.ensure_future(self._snapshot_after(delay))

    async def _snapshot_after(self, delay):
        await asyncio.sleep(delay)
        await self.send_snapshot()

    async def worker_stats(self, event):
        await self.send_json({"type": "worker", "stats": event["stats"]})

    async def answer_delta(self, event):
        """Only request pages subscribe to answer streams."""


class RequestConsumer(DispatcherConsumer):
    """One request: its state and its answer as it is written."""

    def group_name(self):
        return events.request_group(self.scope["url_route"]["kwargs"]["pk"])

    async def send_snapshot(self):
        self._last_snapshot = time.monotonic()
        self._snapshot_pending = False
        request_id = self.scope["url_route"]["kwargs"]["pk"]
        snapshot = await database_sync_to_async(selectors.request_snapshot)(request_id)
        await self.send_json({"type": "request", "request": snapshot})

    async def answer_delta(self, event):
        await self.send_json({
            "type": "answer.delta", "text": event["text"], "generated_tokens": event["generated_tokens"],
        })
