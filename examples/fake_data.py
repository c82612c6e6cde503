"""A small, deterministic fake data source so the examples run anywhere."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    id: int
    name: str
    has_quiz_data: bool


def make_users(count: int, seed: int = 7) -> list[User]:
    rng = random.Random(seed)
    return [User(i + 1, f"user-{i + 1}", rng.random() > 0.03) for i in range(count)]


async def fetch_users(count: int) -> list[User]:
    await asyncio.sleep(0)
    return make_users(count)


class ExternalService:
    """Fails for a fixed set of user ids, like a flaky partner API would."""

    def __init__(self, failing: frozenset[int] = frozenset({13, 42})) -> None:
        self.failing = failing

    async def sync(self, user: User, pause: float = 0.0) -> None:
        if pause:
            await asyncio.sleep(pause)
        if user.id in self.failing:
            raise ConnectionError(f"timeout talking to the directory for user {user.id}")


def compute_scores(user: User, candidates: int = 50) -> list[float]:
    if not user.has_quiz_data:
        return []
    rng = random.Random(user.id)
    return [round(rng.random(), 3) for _ in range(candidates - (user.id % 7))]
