"""Wake-ups for the inference worker: 'a request was queued', 'an urgency changed'.

The database is the source of truth and the worker also reconciles with it
periodically, so a lost wake-up costs latency, never a request. With Redis the
wake-ups travel over pub/sub to the worker process; embedded, over an in-process queue.
"""
import json
import logging
import queue
import time

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

_local_inbox = queue.Queue()


def channel_name():
    return f"{settings.REDIS_PREFIX}:inference-worker"


def notify_worker(event):
    if not settings.REDIS_URL:
        _local_inbox.put(event)
        return
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        with client:
            client.publish(channel_name(), json.dumps(event))
    except redis.RedisError:
        logger.warning("could not wake the inference worker (%s); it will find the change by polling", event)


class WorkerInbox:
    """What the worker reads wake-ups from."""

    def __init__(self):
        self._pubsub = None
        if settings.REDIS_URL:
            self._client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=5)

    def _subscribe(self):
        if self._pubsub is None:
            self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(channel_name())

    def receive(self, timeout):
        """Wait up to `timeout` seconds; return every pending event (maybe none)."""
        if not settings.REDIS_URL:
            return self._drain_local(timeout)
        try:
            self._subscribe()
            events, wait = [], timeout
            while (message := self._pubsub.get_message(timeout=wait)) is not None:
                events.append(json.loads(message["data"]))
                wait = 0
            return events
        except (redis.RedisError, ValueError):
            logger.warning("worker inbox unavailable; relying on database polling", exc_info=True)
            self.close()
            time.sleep(timeout)
            return []

    @staticmethod
    def _drain_local(timeout):
        try:
            events = [_local_inbox.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                events.append(_local_inbox.get_nowait())
            except queue.Empty:
                return events

    def close(self):
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except redis.RedisError:
                pass
            self._pubsub = None
