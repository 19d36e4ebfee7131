"""Which policy runs, and under which tool rules, from the configuration.

No model configured: the offline command policy. A model configured: the language-model policy,
checked at start (``check_model``); if it cannot be built or does not answer, the agent says why,
falls back to the offline command policy, and says so aloud once, rather than die.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from avagent.agent.config import AgentConfig
from avagent.policy.base import Policy
from avagent.policy.commands import CommandPolicy
from avagent.tools.executor import RateLimit, ToolExecutor
from avagent.tools.phrases import CommandPhrases
from avagent.tools.registry import ToolRegistry

log = logging.getLogger("avagent.policy")


@dataclass
class PolicyChoice:
    policy: Policy
    fallback_reason: str | None = None
    """Set when a model is configured but the offline policy runs instead: why."""


def build_executor(config: AgentConfig, registry: ToolRegistry) -> ToolExecutor:
    """The executor with the configured permissions, rate limits and timeout."""
    t = config.tools
    return ToolExecutor(
        registry,
        permissions=dict(t.permissions),
        rate_limits={name: RateLimit(r.calls, r.per_s) for name, r in t.rate_limits.items()},
        timeout_s=t.timeout_s,
    )


def command_policy(config: AgentConfig, phrases: CommandPhrases) -> CommandPolicy:
    return CommandPolicy(
        phrases,
        sorry=config.policy.sorry,
        min_confidence=config.policy.min_confidence,
        exact=config.asr.backend == "pocketsphinx",
    )


def choose_policy(config: AgentConfig, phrases: CommandPhrases, executor: ToolExecutor) -> PolicyChoice:
    """The configured policy, or the offline one (with the reason) when the model cannot be built."""
    p = config.policy
    if not p.model:
        return PolicyChoice(command_policy(config, phrases))
    # LangChain takes half a second to import: only when a model is configured.
    from avagent.policy.context import PerceptionContext
    from avagent.policy.llm import LLMPolicy
    from avagent.policy.memory import ConversationMemory
    from avagent.policy.models import ModelUnavailable, build_chat_model, describe_model

    try:
        model = build_chat_model(config)
    except ModelUnavailable as exc:
        return PolicyChoice(command_policy(config, phrases), str(exc))
    policy = LLMPolicy(
        model,
        executor,
        system_prompt=p.system_prompt,
        persona=p.persona,
        max_tool_steps=p.max_tool_steps,
        memory=ConversationMemory(p.memory_turns, p.memory_tokens),
        context=PerceptionContext(),
        stream_timeout_s=p.stream_timeout_s,
        sorry=p.sorry,
        label=describe_model(config),
    )
    return PolicyChoice(policy)


async def check_model(policy: Policy, config: AgentConfig) -> str | None:
    """None when ``policy`` is not a model policy or its model answers; else why it cannot be used."""
    if policy.name != "llm":
        return None
    from avagent.policy.llm import LLMPolicy
    from avagent.policy.models import ModelUnavailable, describe_model, probe

    assert isinstance(policy, LLMPolicy)
    try:
        await probe(policy.model, config.policy.probe_timeout_s)
    except ModelUnavailable as exc:
        return f"{describe_model(config)} is unreachable: {exc}"
    return None


def describe_policy(policy: Policy) -> str:
    """The policy's name, and its model for a model policy: for the start-up line."""
    label = getattr(policy, "label", None)
    return f"{policy.name} ({label})" if label else policy.name
