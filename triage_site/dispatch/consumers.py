"""Websockets for the dispatcher board and for one request's page.

Both refuse anyone who is not a dispatcher (close code 4403), and close with the same code once a
dispatcher no longer is one or signs out (DispatcherOnlyConsumer). The origin is checked before a
consumer runs, by AllowedHostsOriginValidator in `triage_site.asgi`.
"""
import asyncio
import json
import logging
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from triage_site.live import events
from triage_site.permissions import is_still_dispatcher

from . import board_actions, selectors
from .hub import KEEPALIVE_INTERVAL, hub_for_loop

logger = logging.getLogger(__name__)

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


def _session_key(scope):
    """The sign-in session's key: "" for a session that signs no one in, None where the scope has none."""
    session = scope.get("session")
    return None if session is None else (session.session_key or "")


def _cancel(*tasks):
    """Cancel background tasks, except the one running this (it ends by itself)."""
    current = asyncio.current_task()
    for task in tasks:
        if task is not None and task is not current:
            task.cancel()


class DispatcherOnlyConsumer(JsonMessagesConsumer):
    """A socket for dispatchers only, for as long as they are: rights and session are read afresh at
    connection, on every frame from the client and every TRIAGE_SOCKET_RECHECK_S, and a sign-out ends the
    session's sockets at once (dispatch/apps.py). When they are gone the socket stops streaming (subclasses'
    `stop_streaming`), sends nothing more and closes with 4403."""

    revoked = False
    _watcher = None
    _session_group = None

    async def admit(self):
        """Refuse (4403) and return False unless the user is a dispatcher; the subclass then accepts. A sign-out
        from now on reaches this socket once `connect` has returned."""
        if not await self._entitled():
            await self.close(code=FORBIDDEN)
            return False
        session_key = _session_key(self.scope)
        if session_key:
            self._session_group = events.session_group(session_key)
            await self.channel_layer.group_add(self._session_group, self.channel_name)
        return True

    async def watch_rights(self):
        """Start the periodic check; call once streaming."""
        self._watcher = asyncio.ensure_future(self._recheck_periodically())

    async def still_entitled(self):
        if self.revoked:
            return False
        if await self._entitled():
            return True
        await self.revoke()
        return False

    async def revoke(self):
        if self.revoked:
            return
        self.revoked = True
        await self._stop_all()
        await self.close(code=FORBIDDEN)

    async def session_ended(self, event):
        await self.revoke()

    async def stop_streaming(self):
        """Subclasses stop their feeds here."""

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if await self.still_entitled():
            await super().receive(text_data=text_data, bytes_data=bytes_data, **kwargs)

    async def send(self, text_data=None, bytes_data=None, close=False):
        if not self.revoked:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def disconnect(self, code):
        await self._stop_all()

    async def _stop_all(self):
        _cancel(self._watcher)
        await self.stop_streaming()
        group, self._session_group = self._session_group, None
        if group is not None:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _recheck_periodically(self):
        while True:
            await asyncio.sleep(settings.TRIAGE_SOCKET_RECHECK_S)
            try:
                if not await self.still_entitled():
                    return
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away: the board's reads fail too; check again next time
                logger.warning("could not re-check a socket's rights; retrying", exc_info=True)

    async def _entitled(self):
        user_id = getattr(self.scope.get("user"), "pk", None)
        check = database_sync_to_async(is_still_dispatcher, thread_sensitive=False)
        return await check(user_id, _session_key(self.scope))


class DispatcherConsumer(DispatcherOnlyConsumer):
    """The board: every dashboard of a process shares one feed (see hub.py).

    `?delta=1` asks for `board.delta` messages after the first full `board`; without it every
    change sends the full board.
    """

    async def connect(self):
        if not await self.admit():
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.wants_deltas = query.get("delta", ["0"])[0] in ("1", "true")
        self.hub = hub_for_loop()
        await self.accept()
        await self.hub.join(self, self.wants_deltas)
        await self.watch_rights()

    async def stop_streaming(self):
        hub = getattr(self, "hub", None)
        if hub is not None:
            await hub.leave(self)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "refresh":
            await self.hub.resend(self)
        elif kind in board_actions.ACTIONS:
            # Rights were read afresh for this frame (DispatcherOnlyConsumer.receive); a supervisor's are checked
            # again by the action itself.
            result = await database_sync_to_async(board_actions.perform)(self.scope["user"], content)
            await self.send_json(result)
        else:
            await self.send_json(BOARD_UNKNOWN)


class RequestConsumer(DispatcherOnlyConsumer):
    """One request: its state, its timeline, and its answer as it is written."""

    async def connect(self):
        if not await self.admit():
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
        await self.watch_rights()

    async def stop_streaming(self):
        _cancel(getattr(self, "_keepalive", None), getattr(self, "_pending", None))
        if getattr(self, "_keepalive", None) is not None:
            self._keepalive = None
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
        if self.revoked or (self._pending is not None and not self._pending.done()):
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
