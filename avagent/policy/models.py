"""The policy's chat model: built from its settings, and checked once at start.

``model`` is any ``init_chat_model`` string (``openai:gpt-4o-mini``, ``anthropic:claude-...``,
``ollama:llama3.1``), or a plain model name served by an OpenAI-compatible server at ``base_url``
(the policy's own, or the agent's shared one): vLLM, llama.cpp's server, LM Studio, Ollama's
``/v1``. Anything that keeps the model from being used comes back as a ``ModelUnavailable`` with a
message fit for the user.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from avagent.core.text import describe_error, one_line, redact

_OPENAI_COMPATIBLE = (None, "openai")
_TAKES_MAX_RETRIES = ("openai", "anthropic", "azure_openai", "groq", "mistralai", "deepseek", "xai")


class ModelUnavailable(RuntimeError):
    """The configured model cannot be used (missing package or key, server unreachable...)."""


def split_model(spec: str) -> tuple[str | None, str]:
    """``"provider:name"`` -> (provider, name); a name without a known provider prefix -> (None, name)."""
    provider, sep, name = spec.partition(":")
    if sep and provider and "/" not in provider and provider.replace("_", "").replace("-", "").isalnum():
        return provider, name
    return None, spec


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """Which chat model, where, and how (``policy:`` in the config, with the top-level
    ``base_url`` and ``api_key_env`` shared by every backend that speaks the OpenAI protocol)."""

    model: str
    base_url: str | None = None
    """The policy's own server; None: the shared one, for OpenAI-compatible models."""
    shared_base_url: str | None = None
    api_key_env: str | None = None
    """The environment variable with the model's key; None: the shared one (OpenAI-compatible
    servers) or the provider's own variable."""
    shared_api_key_env: str = "OPENAI_API_KEY"
    temperature: float | None = None
    max_retries: int = 1

    @property
    def server(self) -> str | None:
        """The server the model is reached at, if one is given."""
        provider, _ = split_model(self.model)
        if self.base_url:
            return self.base_url
        return self.shared_base_url if provider in _OPENAI_COMPATIBLE else None

    def describe(self) -> str:
        """The model for people: ``qwen2.5 at http://127.0.0.1:8000/v1`` (credentials in the URL
        left out)."""
        url = self.server
        return f"{self.model} at {redact(url)}" if url else self.model


def build_chat_model(policy: ModelSettings) -> BaseChatModel:
    """The chat model ``policy`` names; ``ModelUnavailable`` says why it cannot be made."""
    if not policy.model:
        raise ModelUnavailable("no policy.model is configured")
    provider, name = split_model(policy.model)
    base_url = policy.server
    common: dict[str, Any] = {}
    if policy.temperature is not None:
        common["temperature"] = policy.temperature
    try:
        if provider in _OPENAI_COMPATIBLE and base_url:
            from langchain_openai import ChatOpenAI

            key_env = policy.api_key_env or policy.shared_api_key_env
            # Local servers take any key; the client library insists on one.
            api_key = os.environ.get(key_env) or "not-needed"
            model: BaseChatModel = ChatOpenAI(
                model=name,
                base_url=base_url,
                api_key=api_key,  # type: ignore[arg-type]
                max_retries=policy.max_retries,
                streaming=True,
                stream_usage=False,
                **common,
            )
            return model
        from langchain.chat_models import init_chat_model

        kwargs = dict(common)
        if base_url:
            kwargs["base_url"] = base_url
        if provider in _TAKES_MAX_RETRIES or (
            provider is None and name.startswith(("gpt-", "o1", "o3", "o4"))
        ):
            kwargs["max_retries"] = policy.max_retries
        if policy.api_key_env and os.environ.get(policy.api_key_env):
            kwargs["api_key"] = os.environ[policy.api_key_env]
        chat: BaseChatModel = init_chat_model(name, model_provider=provider, **kwargs)
        return chat
    except ImportError as exc:
        raise ModelUnavailable(f"{policy.model}: {one_line(redact(str(exc)))}") from None
    except Exception as exc:
        raise ModelUnavailable(f"{policy.model}: {describe_error(exc)}") from None


async def probe(model: BaseChatModel, timeout_s: float) -> None:
    """Check that ``model`` answers: an OpenAI-compatible server must list its models, any other
    model must answer a one-word prompt. Raises ``ModelUnavailable``."""
    try:
        async with asyncio.timeout(timeout_s):
            client = getattr(model, "root_async_client", None)
            if client is not None and hasattr(client, "with_options"):
                await client.with_options(max_retries=0, timeout=timeout_s).models.list()
            else:
                await model.ainvoke("Reply with the word OK.")
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        raise ModelUnavailable(f"no answer within {timeout_s:g} s") from None
    except Exception as exc:
        raise ModelUnavailable(describe_error(exc)) from None
