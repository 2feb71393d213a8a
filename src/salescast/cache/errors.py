"""Exceptions of the cache package; callers of TieredCache never see them."""


class CacheError(Exception):
    """Base class of every error raised inside salescast.cache."""


class BackendUnavailableError(CacheError):
    """A backend could not complete an operation (connection, timeout, server error).

    Backends raise it instead of their client's own exceptions so the tiered
    cache can count the failure, feed the circuit breaker and fall through.
    """


class BackendTimeoutError(BackendUnavailableError):
    """The backend did not answer within the socket or connect timeout.

    The circuit breaker opens on the first one and probes at once (see
    ``CircuitBreaker.record_timeout``): a frozen Redis then costs one
    timeout, and a healthy one that was slow once answers the probe.
    """


class PoolExhaustedError(BackendUnavailableError):
    """No pooled connection became free in time: we are busy, Redis may be fine.

    Counted as an error of the call, but not as a Redis failure by the
    circuit breaker (except for a probe, which must resolve either way).
    """


class DecodeError(CacheError):
    """Stored bytes could not be turned back into a value (corrupt, foreign,
    unsigned, signed with another secret, written for another key, unknown codec).

    The tiered cache treats it as a miss and counts an error.
    """


class KeyArgumentError(CacheError, TypeError):
    """A function argument cannot be turned into a stable cache key."""
