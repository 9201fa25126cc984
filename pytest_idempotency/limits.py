"""The named limits of the wire: how much a request may send, and how slowly.

Every limit has an answer (see ``docs/reference.md``, "Limits"): a head over its limits gets
``431`` (``414`` for the request line), a body over the variant's ``max_body_bytes`` gets the
variant's ``413``, a head that does not arrive in time gets ``408``, a connection past the cap gets
``503``; each of them closes the connection.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = [
    "DEFAULT_JOURNAL_LIMIT",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_OBJECTS",
    "DEFAULT_MAX_RECORDS",
    "MAX_ADMIN_BODY",
    "Limits",
]

#: Exchanges the standalone server keeps in its journal by default (older ones are dropped
#: and counted). The pytest fixture's journal is per test and unbounded.
DEFAULT_JOURNAL_LIMIT = 10_000
#: Idempotency records the standalone server keeps at most; a new key past it gets ``507``
#: (records whose TTL passed make room first). The pytest fixture's store is per test and
#: unbounded.
DEFAULT_MAX_RECORDS = 100_000
#: Resources (created objects) the standalone server keeps at most; past it the oldest are
#: forgotten and counted.
DEFAULT_MAX_OBJECTS = 100_000
#: Bytes the standalone server's records (request and response bodies) and, separately, its
#: resources (estimated from their text) keep at most: past it, as past the counts above.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: Largest admin request body, in bytes: past it, ``413``.
MAX_ADMIN_BODY = 1_048_576


@dataclass(frozen=True)
class Limits:
    """Limits of one server; ``Limits(max_connections=64)`` changes one, keeps the rest."""

    #: Longest request line (method, target, version), bytes: past it, ``414``.
    max_request_line: int = 8192
    #: Longest header line, bytes: past it, ``431``.
    max_header_line: int = 8192
    #: Most header lines in one request: past it, ``431``.
    max_header_count: int = 100
    #: Largest request head (request line and headers), bytes: past it, ``431``.
    max_head_bytes: int = 65536
    #: Longest chunk-size line (size and extensions), bytes: past it, ``400``.
    max_chunk_line: int = 4096
    #: Largest trailer section of a chunked body, bytes: past it, ``431``.
    max_trailer_bytes: int = 16384
    #: Seconds a client has to send a whole request head once it started: past it, ``408``.
    header_timeout: float = 10.0
    #: Seconds an idle keep-alive connection stays open between requests.
    idle_timeout: float = 30.0
    #: Longest silence while a body is being sent, seconds: past it, ``408``.
    body_timeout: float = 30.0
    #: Slowest average rate a body may arrive at once ``body_timeout`` seconds have passed,
    #: bytes a second: slower, ``408`` (chosen: a trickle of bytes must not hold a connection
    #: forever; Kestrel's minimum body rate is 240 bytes/s).
    min_body_rate: float = 1024.0
    #: Most connections served at once: the next one gets ``503`` and is closed.
    max_connections: int = 256
    #: After a refusal, at most this many bytes of the rest of the request are read and thrown
    #: away (so a client still sending reads the answer instead of a reset).
    drain_bytes: int = 64 * 1024 * 1024
    #: ... and for at most this many seconds of silence.
    drain_timeout: float = 2.0

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"Limits.{item.name} must be a number > 0 (got {value!r})")
