"""The policy stage: final transcripts in; tool calls, tool results and speech out.

Turns are answered one at a time, in order, each in a cancellable worker. How the user cutting in
acts on an answer (see docs/policy.md):

- At the first sound of the user's speech over the agent (``pause_speaking``) the *floor* is held:
  the answer says nothing new, starts no tool, and stops reading its model's stream. Playback is
  paused by the speech-out stage at the same moment.
- If that speech lasts (``barge_in``), the answer is cancelled: the model's stream is closed, tool
  calls not yet started are dropped (never run late), running tools are cancelled or, for tools
  with ``cancel_on_interrupt=False``, left to finish and their results reported. Queued answers
  are dropped: the user has moved on.
- If it stops short (``resume_speaking``: a backchannel, a cough), the floor is released and the
  answer carries on where it was, with nothing lost.

A ``stop`` cancels everything, tools included. A tool whose permission is ``confirm`` makes the
answer ask aloud and wait for the user's next words; that answer is theirs, not a new turn.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import numpy as np

from avagent.core.activity import Activity
from avagent.core.bus import Bus
from avagent.core.events import (
    ActiveSpeaker,
    BargeIn,
    Error,
    Event,
    Faces,
    FirstToken,
    PauseSpeaking,
    ResumeSpeaking,
    Say,
    Scene,
    SoundDirection,
    SpeakingEnded,
    SpeakingStarted,
    Stop,
    ToolCall,
    ToolResult,
    Transcript,
)
from avagent.core.worker import Worker
from avagent.policy.base import ObservingPolicy, Policy
from avagent.tools.confirm import is_yes
from avagent.tools.executor import Admitted, ToolExecutor, ToolOutcome

OBSERVABLE: tuple[type[Event], ...] = (
    SoundDirection,
    Faces,
    ActiveSpeaker,
    Scene,
    SpeakingStarted,
    SpeakingEnded,
    ToolResult,
)
"""Events handed to an ``ObservingPolicy`` (besides transcripts and interruptions)."""

INTERRUPTED = "cancelled: the user interrupted"


class Floor:
    """Whether the agent may act: held from the onset of the user's speech over it until that
    speech is known to be a barge-in or a backchannel."""

    def __init__(self, activity: Activity) -> None:
        self._clear = asyncio.Event()
        self._clear.set()
        self._activity = activity

    @property
    def held(self) -> bool:
        return not self._clear.is_set()

    def hold(self) -> None:
        self._clear.clear()

    def release(self) -> None:
        self._clear.set()

    async def wait(self) -> None:
        """Return when the floor is free (at once, usually)."""
        if self._clear.is_set():
            return
        with self._activity.waiting_for_input():
            await self._clear.wait()


class TurnActions:
    """``Actions`` for one turn: every act is published as an event tagged with the turn."""

    def __init__(self, runner: PolicyRunner, transcript: Transcript) -> None:
        self._runner = runner
        self._bus = runner.bus
        self._executor = runner.executor
        self._transcript = transcript
        self._first_token_seen = False

    async def checkpoint(self) -> None:
        await self._runner.floor.wait()

    async def first_token(self) -> None:
        if not self._first_token_seen:
            self._first_token_seen = True
            await self._bus.publish(
                FirstToken(
                    t=self._bus.media_time(), t_capture=self._transcript.t_capture, turn=self._transcript.turn
                )
            )

    async def report(self, problem: str) -> None:
        await self._bus.publish(Error(t=self._bus.media_time(), stage=self._runner.name, message=problem))

    async def say(self, text: str, audio: np.ndarray | None = None, audio_rate: int = 0) -> None:
        if text.strip():
            await self._runner.floor.wait()
            await self._bus.publish(
                Say(
                    t=self._bus.media_time(),
                    t_capture=self._transcript.t_capture,
                    text=text,
                    turn=self._transcript.turn,
                    audio=audio,
                    audio_rate=audio_rate,
                )
            )

    async def confirm(self, question: str) -> bool:
        """Ask ``question`` aloud and wait for the user's answer; only a yes confirms."""
        await self.say(question)
        answer = await self._runner.next_user_words()
        return answer is not None and is_yes(answer.text)

    async def call_tool(self, name: str, args: dict[str, Any], call_id: str | None = None) -> ToolOutcome:
        await self._runner.floor.wait()
        call_id = call_id or f"call_{next(self._runner.call_ids)}"
        admitted = await self._executor.admit(name, args, self.confirm)
        checked = admitted.args if isinstance(admitted, Admitted) else self._executor.checked_args(name, args)
        await self._bus.publish(
            ToolCall(
                t=self._bus.media_time(),
                t_capture=self._transcript.t_capture,
                name=name,
                args=checked if checked is not None else args,
                turn=self._transcript.turn,
                call_id=call_id,
            )
        )
        if isinstance(admitted, ToolOutcome):
            outcome = admitted
        else:
            running = asyncio.create_task(self._executor.run(admitted), name=f"tool.{name}")
            try:
                outcome = await asyncio.shield(running)
            except asyncio.CancelledError:
                self._runner.interrupted_during(running, admitted, call_id, self._transcript)
                raise
        await self._bus.publish(self._runner.result_event(name, outcome, call_id, self._transcript))
        return outcome


class PolicyRunner:
    """Runs a ``Policy`` on each final transcript."""

    name = "policy"
    consumes = (Transcript, BargeIn, Stop, PauseSpeaking, ResumeSpeaking, *OBSERVABLE)
    produces = (FirstToken, Say, ToolCall, ToolResult, Error)

    def __init__(
        self, bus: Bus, policy: Policy, executor: ToolExecutor, *, confirm_timeout_s: float = 10.0
    ) -> None:
        self.bus = bus
        self.policy = policy
        self.executor = executor
        self.confirm_timeout_s = confirm_timeout_s
        self.floor = Floor(bus.activity)
        self.call_ids = itertools.count(1)
        """Numbers the calls of this agent's turns (the same in a replay as in its recording)."""
        self._inbox = bus.subscribe(
            Transcript,
            BargeIn,
            Stop,
            PauseSpeaking,
            ResumeSpeaking,
            *OBSERVABLE,
            name="policy.in",
            maxsize=256,
        )
        self._worker: Worker[Transcript] = Worker("policy.answers", self._answer, bus.activity)
        bus.activity.hold_while(lambda: self.busy)
        self._answer_waiter: asyncio.Future[Transcript] | None = None
        self._stopping_all = False
        self._survivors: set[asyncio.Task[ToolOutcome]] = set()

    @property
    def busy(self) -> bool:
        """An answer is being worked out, or a tool it started is still running."""
        return self._worker.busy or bool(self._survivors)

    @property
    def thinking(self) -> bool:
        """An answer is being worked out and is not waiting for the user (a confirmation)."""
        return self._worker.busy and self._answer_waiter is None

    async def run(self) -> None:
        self._worker.start()
        try:
            async for item in self._inbox:
                await self._dispatch(item)
        finally:
            await self._worker.stop()
            for task in list(self._survivors):
                task.cancel()
            # The threads of plain tools go with the stage (the stuck ones are not waited for).
            self.executor.close()

    async def _dispatch(self, item: Event) -> None:
        if isinstance(item, Transcript):
            waiter = self._answer_waiter
            if item.final and waiter is not None and not waiter.done():
                waiter.set_result(item)
            elif item.final:
                await self._worker.put(item)
        elif isinstance(item, PauseSpeaking):
            self.floor.hold()
        elif isinstance(item, ResumeSpeaking):
            self.floor.release()
        elif isinstance(item, BargeIn):
            self.floor.release()
            # While a confirmation is asked, speech is the user's answer, not an interruption.
            if self._answer_waiter is None:
                await self._worker.cancel()
        elif isinstance(item, Stop):
            self.floor.release()
            self._stopping_all = True
            try:
                await self._worker.cancel()
            finally:
                self._stopping_all = False
            for task in list(self._survivors):
                task.cancel()
        policy = self.policy
        if isinstance(policy, ObservingPolicy) and isinstance(item, policy.observes):
            policy.observe(item)

    async def next_user_words(self) -> Transcript | None:
        """The user's next final transcript, or None when none comes within ``confirm_timeout_s`` of
        media time (the wall clock bounds it too, should the input stop)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Transcript] = loop.create_future()
        self._answer_waiter = waiter
        media_deadline = self.bus.media_time() + self.confirm_timeout_s
        wall_deadline = loop.time() + 3 * self.confirm_timeout_s
        try:
            with self.bus.activity.waiting_for_input():
                while not waiter.done():
                    await asyncio.wait({waiter}, timeout=0.05)
                    if not waiter.done() and (
                        self.bus.media_time() >= media_deadline or loop.time() >= wall_deadline
                    ):
                        return None
            return waiter.result()
        finally:
            self._answer_waiter = None
            if not waiter.done():
                waiter.cancel()

    def result_event(
        self, name: str, outcome: ToolOutcome, call_id: str, transcript: Transcript
    ) -> ToolResult:
        return ToolResult(
            t=self.bus.media_time(),
            t_capture=transcript.t_capture,
            name=name,
            ok=outcome.ok,
            result=outcome.result,
            turn=transcript.turn,
            call_id=call_id,
        )

    def interrupted_during(
        self, running: asyncio.Task[ToolOutcome], admitted: Admitted, call_id: str, transcript: Transcript
    ) -> None:
        """The answer was cancelled while ``running`` ran: cancel it, or let it finish (per the tool's
        ``cancel_on_interrupt``; a stop cancels every tool); its result is published either way."""
        name = admitted.tool.name
        if admitted.tool.cancel_on_interrupt or self._stopping_all:
            running.cancel()
        self._survivors.add(running)
        self.bus.activity.track(running)

        def finished(task: asyncio.Task[ToolOutcome]) -> None:
            self._survivors.discard(task)
            if task.cancelled():
                outcome = ToolOutcome(False, INTERRUPTED)
            elif task.exception() is not None:
                outcome = ToolOutcome(False, f"{name} failed: {task.exception()}")
            else:
                outcome = task.result()
            self.bus.publish_nowait(self.result_event(name, outcome, call_id, transcript))

        running.add_done_callback(finished)

    async def _answer(self, transcript: Transcript) -> None:
        self.floor.release()
        try:
            await self.policy.respond(transcript, TurnActions(self, transcript))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self.bus.publish(
                Error(t=self.bus.media_time(), stage=self.name, message=f"{type(exc).__name__}: {exc}")
            )
