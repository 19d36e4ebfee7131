"""The built-in tools: turn, look_at, stop, what_time and say.

The actuator tools carry rate limits of their own, so that a model (or anything else) cannot drive
the body in a loop; ``tools.rate_limits`` in the config replaces them by name. The actuator layer
behind the body has its own rules (docs/robot.md): a command it limits runs and the result says how,
one it refuses fails with the reason. ``stop`` is the emergency stop.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import Field

from avagent.io.actuators import ActuatorRefused, Body, Limited
from avagent.tools.phrases import Spoken
from avagent.tools.registry import RateLimit, Tool, ToolError, tool

TURN_RATE_LIMIT = RateLimit(calls=5, per_s=10.0)
"""Five turns of up to a full circle in ten seconds: enough for any request, too few to spin."""
LOOK_AT_RATE_LIMIT = RateLimit(calls=10, per_s=10.0)

SAY_EXAMPLES = ["hello", "good morning", "good night", "thank you", "goodbye", "nice to meet you"]


def builtin_tools(body: Body, now: Callable[[], datetime.datetime] = datetime.datetime.now) -> list[Tool]:
    """The built-in tools, acting on ``body``."""

    @tool(
        phrases=["turn {direction}", "turn {direction} {degrees} degrees"],
        cancel_on_interrupt=False,
        rate_limit=TURN_RATE_LIMIT,
    )
    async def turn(
        direction: Literal["left", "right"],
        degrees: Annotated[
            int, Field(ge=1, le=360, description="How far to turn, in degrees."), Spoken(step=5)
        ] = 90,
    ) -> str:
        """Turn the robot in place, to the left or to the right."""
        try:
            done = await body.turn(degrees if direction == "left" else -degrees)
        except ActuatorRefused as exc:
            raise ToolError(f"turn was refused: {exc}") from None
        if isinstance(done, Limited):
            return f"Turning {direction} {abs(done.value):.0f} degrees ({done.why})."
        return f"Turning {direction} {degrees} degrees."

    @tool(phrases=["look at {azimuth_deg} degrees"], rate_limit=LOOK_AT_RATE_LIMIT)
    async def look_at(
        azimuth_deg: Annotated[
            int,
            Field(ge=0, le=359, description="Direction, counter-clockwise from straight ahead, in degrees."),
            Spoken(step=5),
        ],
    ) -> str:
        """Point the robot's head in a direction."""
        try:
            done = await body.look_at(float(azimuth_deg))
        except ActuatorRefused as exc:
            raise ToolError(f"look_at was refused: {exc}") from None
        if isinstance(done, Limited):
            return f"Looking at {done.value:.0f} degrees ({done.why})."
        return f"Looking at {azimuth_deg} degrees."

    @tool(phrases=["stop", "stop moving"], urgent=True)
    async def stop() -> str:
        """Stop every motion at once (the emergency stop: moving again needs it cleared)."""
        await body.stop()
        return "Stopping."

    @tool(phrases=["what time is it", "what is the time"])
    async def what_time() -> str:
        """Tell the current local time."""
        return now().strftime("It is %-I:%M %p.")

    @tool(phrases=["say {text}"])
    async def say(text: Annotated[str, Field(description="What to say.", examples=SAY_EXAMPLES)]) -> str:
        """Say something aloud."""
        return text[:1].upper() + text[1:] + "."

    return [turn, look_at, stop, what_time, say]
