"""Invalidation over Redis pub/sub: every process hears every invalidation."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import orjson
import redis

logger = logging.getLogger("salescast.cache")

MessageHandler = Callable[[dict[str, Any]], None]

# Subscribers started in this process; a forked child marks them deaf (it
# has their state but not their threads).
_started: weakref.WeakSet[InvalidationSubscriber] = weakref.WeakSet()
_fork_hook_lock = threading.Lock()
_fork_hook_installed = False


class SubscriptionState(StrEnum):
    """``connecting`` until the first SUBSCRIBE is confirmed; ``lost`` while reconnecting."""

    CONNECTING = "connecting"
    SUBSCRIBED = "subscribed"
    LOST = "lost"
    STOPPED = "stopped"


def encode_message(message: dict[str, Any]) -> bytes:
    """The wire form of one invalidation message (JSON)."""
    return orjson.dumps(message)


class InvalidationSubscriber:
    """A daemon thread subscribed to ``channel`` that calls ``on_message`` per message.

    When the subscription is (re)established, ``on_resubscribe`` runs before
    any message is delivered: a process that was not listening may have missed
    invalidations, so the tiered cache empties its L1 there. Loss is noticed
    by the connection failing or, for a frozen server, by a PING left
    unanswered for ``3 * ping_interval``; that silence is reported to
    ``on_silence`` (the tiered cache opens its circuit breaker there) before
    the subscription is declared lost, so nobody who stops trusting it
    then asks the silent server. Reconnects back off from 0.1 s to 2 s. The
    first loss and the recovery are each logged once.
    """

    def __init__(
        self,
        client: redis.Redis,
        channel: str,
        *,
        on_message: MessageHandler,
        on_resubscribe: Callable[[], None],
        ping_interval: float = 1.0,
        max_backoff: float = 2.0,
        on_silence: Callable[[str], None] | None = None,
    ) -> None:
        self._client = client
        self._on_silence = on_silence
        self._channel = channel
        self._on_message = on_message
        self._on_resubscribe = on_resubscribe
        self._ping_interval = ping_interval
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self.state = SubscriptionState.CONNECTING
        # True exactly while the thread of this process holds a confirmed
        # subscription; read on every tagged cache lookup, so a plain flag
        # (read it, never set it, from outside).
        self.live = False
        self.resubscriptions = 0
        self.messages = 0
        self._thread = threading.Thread(
            target=self._run, name=f"salescast-cache-invalidation[{channel}]", daemon=True
        )

    def start(self) -> None:
        """Start listening in the background."""
        _install_fork_hook()
        _started.add(self)
        self._thread.start()

    def listening(self) -> bool:
        """``True`` while subscribed in this very process.

        After a fork the child has the state but not the thread; it must not
        trust its L1 or generations as if it heard every invalidation. The
        flag drops when the subscription is lost, when the thread ends for
        any reason, and in a forked child.
        """
        return self.live

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until the subscription is live; ``False`` on timeout."""
        return self._subscribed.wait(timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and release its connection."""
        self._stop.set()
        self.live = False
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.state = SubscriptionState.STOPPED

    def _run(self) -> None:
        try:
            self._run_until_stopped()
        finally:
            self.live = False

    def _run_until_stopped(self) -> None:
        backoff = 0.1
        lost_at: float | None = None
        while not self._stop.is_set():
            pubsub = None
            try:
                pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
                self._subscribe(pubsub)
                if lost_at is not None:
                    logger.warning(
                        "invalidation channel %s: subscribed again after %.1f s; "
                        "L1 emptied (messages may have been missed)",
                        self._channel,
                        time.monotonic() - lost_at,
                    )
                lost_at = None
                backoff = 0.1
                self._listen(pubsub)
            except (redis.RedisError, OSError) as exc:
                self.live = False
                self._subscribed.clear()
                if lost_at is None and not self._stop.is_set():
                    lost_at = time.monotonic()
                    self.state = SubscriptionState.LOST
                    logger.warning(
                        "invalidation channel %s: subscription lost (%s: %s); reconnecting",
                        self._channel,
                        type(exc).__name__,
                        exc,
                    )
            finally:
                if pubsub is not None:
                    _close_quietly(pubsub)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    def _subscribe(self, pubsub: Any) -> None:
        pubsub.subscribe(self._channel)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] == "subscribe":
                break
        else:
            raise redis.TimeoutError("no SUBSCRIBE confirmation")
        # Empty L1 before declaring the subscription live, so nothing cached
        # while we were deaf survives into the listening period.
        self.resubscriptions += 1
        self._on_resubscribe()
        self.state = SubscriptionState.SUBSCRIBED
        self.live = True
        self._subscribed.set()

    def _listen(self, pubsub: Any) -> None:
        last_pong = last_ping = time.monotonic()
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=min(0.2, self._ping_interval))
            now = time.monotonic()
            if message is not None:
                if message["type"] == "pong":
                    last_pong = now
                elif message["type"] == "message":
                    self._deliver(message["data"])
            if now - last_pong > 3 * self._ping_interval:
                reason = f"no PONG for {now - last_pong:.1f} s (server frozen or unreachable)"
                if self._on_silence is not None:
                    # Still live here: whoever stops trusting the subscription
                    # once it is lost must find the breaker already open.
                    self._on_silence(f"invalidation subscription: {reason}")
                raise redis.TimeoutError(reason)
            if now - last_ping >= self._ping_interval:
                pubsub.ping()
                last_ping = now

    def _deliver(self, data: bytes) -> None:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            logger.debug("ignoring a malformed invalidation message")
            message = None
        if isinstance(message, dict):
            try:
                self._on_message(message)
            except Exception:
                # One bad message must not end the subscription for good.
                logger.exception("invalidation message handler failed")
        # Counted once handled, so a reader of ``messages`` sees its effect.
        self.messages += 1


def _install_fork_hook() -> None:
    global _fork_hook_installed
    with _fork_hook_lock:
        if not _fork_hook_installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_deafen_after_fork)
            _fork_hook_installed = True


def _deafen_after_fork() -> None:
    for subscriber in list(_started):
        subscriber.live = False


def _close_quietly(pubsub: Any) -> None:
    try:
        pubsub.close()
    except (redis.RedisError, OSError):
        logger.debug("closing the pub/sub connection failed", exc_info=True)
