"""In-process event bus: one publisher side, many subscribers, each with a bounded queue.

A subscriber that cannot keep up is not allowed to slow anyone: its queue is cleared and it
receives one `{"type": "overflow"}` event, after which it should resynchronize from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

Event = dict[str, Any]
Matcher = Callable[[Event], bool]


class Subscription:
    def __init__(self, bus: EventBus, match: Matcher | None, maxsize: int) -> None:
        self._bus = bus
        self.match = match
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.loop = asyncio.get_running_loop()
        self.overflowed = 0

    def offer(self, event: Event) -> None:
        if self.match is not None and not self.match(event):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed += 1
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait({"type": "overflow", "dropped": True})

    async def get(self, timeout: float | None = None) -> Event:
        if timeout is None:
            return await self.queue.get()
        return await asyncio.wait_for(self.queue.get(), timeout)

    def close(self) -> None:
        self._bus._remove(self)

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Publish from any thread; delivery happens on each subscriber's own loop."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self.published = 0

    def subscribe(self, match: Matcher | None = None, maxsize: int = 1000) -> Subscription:
        sub = Subscription(self, match, maxsize)
        with self._lock:
            self._subs.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._subs.remove(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def publish(self, event: Event) -> None:
        self.publish_many([event])

    def publish_many(self, events: list[Event]) -> None:
        with self._lock:
            subs = list(self._subs)
        if not subs or not events:
            return
        self.published += len(events)
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for sub in subs:
            if sub.loop is current:
                for event in events:
                    sub.offer(event)
            elif not sub.loop.is_closed():
                for event in events:
                    sub.loop.call_soon_threadsafe(sub.offer, event)
