"""The one retry policy: what it retries, when it gives up, how it stops."""

from __future__ import annotations

import asyncio

import pytest

from ingest.retry import RetryPolicy


class Flaky:
    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


async def test_transient_errors_are_retried_until_it_succeeds() -> None:
    flaky = Flaky(3, ConnectionRefusedError("refused"))
    seen: list[float] = []
    policy = RetryPolicy(transient=(OSError,), base_s=0.001, cap_s=0.01)
    result = await policy.call(flaky, resource="test", on_retry=lambda error, delay: seen.append(delay))
    assert (result, flaky.calls, len(seen)) == ("done", 4, 3)
    assert all(0 <= delay <= 0.01 for delay in seen)


async def test_other_and_permanent_errors_are_not_retried() -> None:
    policy = RetryPolicy(transient=(OSError,), permanent=(FileNotFoundError,), base_s=0.001)
    for error in (ValueError("bad"), FileNotFoundError("gone")):
        flaky = Flaky(1, error)
        with pytest.raises(type(error)):
            await policy.call(flaky, resource="test")
        assert flaky.calls == 1


async def test_it_gives_up_with_the_last_error() -> None:
    flaky = Flaky(10**6, TimeoutError("slow"))
    policy = RetryPolicy(transient=(TimeoutError,), base_s=0.01, cap_s=0.02, give_up_s=0.2)
    with pytest.raises(TimeoutError, match="slow"):
        await policy.call(flaky, resource="test")
    assert 2 <= flaky.calls < 200


async def test_a_stop_cuts_the_wait_short() -> None:
    stop = asyncio.Event()
    flaky = Flaky(10**6, OSError("down"))
    policy = RetryPolicy(transient=(OSError,), base_s=30.0, cap_s=30.0)  # waits of up to 30 s
    asyncio.get_running_loop().call_later(0.3, stop.set)
    with pytest.raises(OSError, match="down"):
        await asyncio.wait_for(policy.call(flaky, resource="test", stop=stop), 10)
    assert stop.is_set()
