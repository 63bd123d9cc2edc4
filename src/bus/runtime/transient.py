"""Which failures are the infrastructure's (retry until it comes back) and which are the event's.

A broker that does not acknowledge (`DeliveryFailed`) counts as infrastructure too.
"""

from __future__ import annotations

import asyncpg

from bus.errors import DeliveryFailed

_TRANSIENT_SQLSTATE_PREFIXES = ("08", "53", "57P", "40")  # connection, resources, shutdown, rollback (deadlock)


def is_transient(exc: BaseException) -> bool:
    """True when `exc` says the database or network is unavailable, not that the event is bad.

    Such failures never send an event to dead-letter: the actor pauses and retries until the
    infrastructure is back.
    """
    if isinstance(exc, (ConnectionError, OSError, TimeoutError, asyncpg.InterfaceError, DeliveryFailed)):
        return True
    if isinstance(exc, asyncpg.InternalClientError):
        # a pooled connection the server closed while it sat idle ("cannot switch to state ..;
        # another operation (2) is in progress") fails so on its next use, not as a connection error
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        return state.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
    return False
