"""Push events to dashboards over the channel layer.

Publishing never raises: a dashboard missing an event catches up from the
database on reconnect, so a channel-layer outage must not break intake or the worker.
"""
import asyncio
import hashlib
import logging
import threading

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)

DASHBOARD_GROUP = "dashboard"
_server_loop = None


def request_group(request_id):
    return f"request.{request_id}"


def session_group(session_key):
    """The sockets opened with one sign-in session. Named by a hash: session keys are credentials, and group
    names end up as Redis keys."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:48]


def bind_server_loop(loop):
    """In embedded mode the worker thread must publish on the web server's own event loop,
    where the in-memory channel layer's queues live."""
    global _server_loop
    _server_loop = loop


_publisher_loop = None
_publisher_lock = threading.Lock()


def publisher_loop():
    """One long-lived event loop thread per process for publishing to Redis. async_to_sync would
    start a loop per call, and channels_redis keeps its connections per loop: from Celery and the
    inference worker every event would open (and leak until collected) a new Redis connection."""
    global _publisher_loop
    with _publisher_lock:
        if _publisher_loop is None or _publisher_loop.is_closed():
            _publisher_loop = asyncio.new_event_loop()
            threading.Thread(target=_publisher_loop.run_forever, name="event-publisher", daemon=True).start()
        return _publisher_loop


def _send(group, message):
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        loop = _server_loop
        if loop is not None and loop.is_running() and threading.current_thread() is not threading.main_thread():
            asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(timeout=5)
        elif isinstance(layer, InMemoryChannelLayer):  # its queues belong to the caller's loop
            async_to_sync(layer.group_send)(group, message)
        else:
            asyncio.run_coroutine_threadsafe(layer.group_send(group, message), publisher_loop()).result(timeout=5)
    except Exception:
        logger.warning("could not publish %s to %s", message.get("type"), group, exc_info=True)


def publish_request_changed(request_id):
    """Tell dashboards a request changed; consumers read its current state from the database."""
    message = {"type": "request.changed", "request_id": request_id}
    _send(DASHBOARD_GROUP, message)
    _send(request_group(request_id), message)


def publish_answer_delta(request_id, *, text, generated_tokens, offset):
    """New answer text at character `offset` of the answer (the worker counts what it streamed, from the saved
    text it resumed after, and from 0 again when a generation restarts), so that a page that mixed a stored
    snapshot with live deltas places every piece exactly once."""
    _send(request_group(request_id), {
        "type": "answer.delta", "request_id": request_id, "text": text, "generated_tokens": generated_tokens,
        "offset": offset,
    })


def publish_worker_stats(stats):
    _send(DASHBOARD_GROUP, {"type": "worker.stats", "stats": stats})


def publish_session_ended(session_key):
    """Close the sockets of a session that signed out now, not at their next check of rights."""
    _send(session_group(session_key), {"type": "session.ended"})
