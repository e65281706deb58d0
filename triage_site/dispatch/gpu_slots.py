"""Which GPU of a machine each inference worker on it runs on, so that scaled replicas do not share one.

Docker Compose gives every replica of a service the same GPU reservation and does not spread them over a
machine's GPUs. Each worker therefore takes the first GPU of its machine that no other live worker holds, by a
PostgreSQL session advisory lock on (pool, GPU index) held on a connection of its own for its whole life: the
lock goes when the worker's process or connection dies, so a replacement can take the GPU at once. `pool`
names the machine (TRIAGE_GPU_POOL); workers on different machines must use different pools. On SQLite there
is only ever one worker (claims.refuse_second_worker), so the first GPU is free by definition."""
import zlib

from django.db import connections


class GpuHold:
    """A held GPU: `index`, and the connection whose session holds its lock (None on SQLite)."""

    def __init__(self, index, connection=None):
        self.index = index
        self._connection = connection

    def release(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def pool_key(pool):
    """The advisory lock's first key: a signed 32-bit number naming the pool."""
    value = zlib.crc32(f"triage-gpu:{pool}".encode())
    return value - (1 << 32) if value >= (1 << 31) else value


def hold_free_gpu(pool, gpu_count):
    """A GpuHold on the first of `gpu_count` GPUs that no other worker of `pool` holds, or None when all are held."""
    database = connections["default"]
    if database.vendor != "postgresql":
        return GpuHold(0) if gpu_count > 0 else None
    # A connection of its own, never the pool's: a pooled connection would keep the lock after release.
    connection = database.Database.connect(**database.get_connection_params())
    connection.autocommit = True
    key = pool_key(pool)
    for index in range(gpu_count):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [key, index])
            if cursor.fetchone()[0]:
                return GpuHold(index, connection)
    connection.close()
    return None
