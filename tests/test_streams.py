"""Streams and the bus: overflow policies, counters, the control lane, and work-in-flight tracking."""

from __future__ import annotations

import asyncio

import pytest

from avagent.core.activity import Activity
from avagent.core.bus import Bus
from avagent.core.events import BargeIn, Overflow, SpeechStarted, Transcript
from avagent.core.streams import OverflowPolicy, Stream, StreamClosed


async def test_block_policy_makes_the_producer_wait_and_loses_nothing() -> None:
    stream: Stream[int] = Stream("s", maxsize=2)
    produced: list[int] = []

    async def produce() -> None:
        for i in range(10):
            await stream.put(i)
            produced.append(i)

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.01)
    assert produced == [0, 1], "a full BLOCK stream must hold the producer back"
    got = [await stream.get() for _ in range(10)]
    await producer
    assert got == list(range(10))
    assert stream.stats.dropped == 0
    assert stream.stats.high_water == 2


async def test_drop_oldest_counts_every_drop_and_keeps_the_newest() -> None:
    drops: list[int] = []
    stream: Stream[int] = Stream(
        "s", maxsize=3, policy=OverflowPolicy.DROP_OLDEST, on_drop=lambda s, n: drops.append(n)
    )
    for i in range(10):
        stream.put_nowait(i)
    assert stream.stats.dropped == 7
    assert sum(drops) == 7
    assert [stream.get_nowait() for _ in range(3)] == [7, 8, 9]


async def test_keep_latest_supersedes_without_calling_it_a_drop() -> None:
    stream: Stream[str] = Stream("video", maxsize=1, policy=OverflowPolicy.KEEP_LATEST)
    for frame in ("a", "b", "c"):
        stream.put_nowait(frame)
    assert await stream.get() == "c"
    assert stream.stats.superseded == 2
    assert stream.stats.dropped == 0


async def test_control_items_overtake_queued_data() -> None:
    stream: Stream[str] = Stream("s", maxsize=10)
    for item in ("d1", "d2", "d3"):
        stream.put_nowait(item)
    stream.put_control("stop")
    assert [await stream.get() for _ in range(4)] == ["stop", "d1", "d2", "d3"]


async def test_close_wakes_the_consumer_and_ends_iteration() -> None:
    stream: Stream[int] = Stream("s")
    seen: list[int] = []

    async def consume() -> None:
        async for item in stream:
            seen.append(item)

    consumer = asyncio.create_task(consume())
    stream.put_nowait(1)
    await asyncio.sleep(0)
    stream.close()
    stream.close()  # idempotent
    await asyncio.wait_for(consumer, 1.0)
    assert seen == [1]
    with pytest.raises(StreamClosed):
        await stream.get()


async def test_close_releases_a_waiting_producer() -> None:
    stream: Stream[int] = Stream("s", maxsize=1)
    stream.put_nowait(0)
    producer = asyncio.create_task(stream.put(1))
    await asyncio.sleep(0)
    stream.close()
    await asyncio.wait_for(producer, 1.0)


async def test_activity_counts_items_until_the_consumer_comes_back_for_more() -> None:
    activity = Activity()
    stream: Stream[int] = Stream("s", activity=activity)
    stream.put_nowait(1)
    stream.put_nowait(2)
    assert activity.pending == 2
    await stream.get()
    assert activity.pending == 2, "the item in hand is still being worked on"
    await stream.get()
    assert activity.pending == 1
    stream.task_done()
    assert activity.pending == 0
    await asyncio.wait_for(activity.settled(), 1.0)


async def test_activity_tracks_jobs_and_settles_only_when_chained_work_is_done() -> None:
    activity = Activity()
    stream: Stream[int] = Stream("s", activity=activity)
    done = asyncio.Event()

    async def job() -> None:
        await asyncio.sleep(0.01)
        stream.put_nowait(1)  # finishing work starts more work

    async def consume() -> None:
        await stream.get()
        stream.task_done()
        done.set()

    consumer = asyncio.create_task(consume())
    activity.track(asyncio.create_task(job()))
    await asyncio.wait_for(activity.settled(), 1.0)
    assert done.is_set()
    await consumer


async def test_bus_routes_by_type_including_subclasses() -> None:
    bus = Bus()
    speech = bus.subscribe(SpeechStarted, name="speech")
    everything = bus.subscribe(object, name="all")
    await bus.publish(SpeechStarted(t=1.0))
    await bus.publish(Transcript(t=2.0, text="stop"))
    assert len(speech) == 1
    assert len(everything) == 2


async def test_bus_control_events_take_the_priority_lane() -> None:
    bus = Bus()
    inbox = bus.subscribe(Transcript, BargeIn, name="policy")
    await bus.publish(Transcript(t=1.0, text="a"))
    await bus.publish(BargeIn(t=2.0))
    assert isinstance(await inbox.get(), BargeIn)


async def test_bus_reports_drops_as_overflow_events_to_other_subscribers() -> None:
    bus = Bus()
    slow = bus.subscribe(SpeechStarted, name="slow", maxsize=1, policy=OverflowPolicy.DROP_OLDEST)
    reports = bus.subscribe(Overflow, name="reports")
    for i in range(5):
        bus.publish_nowait(SpeechStarted(t=float(i)))
    assert slow.stats.dropped == 4
    report = reports.get_nowait()
    assert isinstance(report, Overflow)
    assert report.stream == "slow"
    assert report.dropped >= 1
    assert bus.stats()["slow"]["dropped"] == 4
