"""Configuration: files, defaults, overrides, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from avagent.agent.config import AgentConfig, load_config, with_overrides
from avagent.core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_laptop_config_is_the_default() -> None:
    assert load_config(ROOT / "configs" / "laptop.yaml") == AgentConfig()


def test_every_shipped_config_loads() -> None:
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        load_config(path)


def test_an_empty_file_is_the_default(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == AgentConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("turns:\n  hangover_ms: soon\n", "turns.hangover_ms: Input should be a valid number"),
        ("turns:\n  hangover_ms: -5\n", "turns.hangover_ms: Input should be greater than or equal to 0"),
        ("asr:\n  backend: dragon\n", "asr.backend: Input should be 'pocketsphinx', 'whisper' or 'openai'"),
        ("vad:\n  threshold: 0.3\n  neg_threshold: 0.4\n", "neg_threshold must not be above threshold"),
        ("tts:\n  voise: en-us\n", "tts.voise: unknown setting"),
        ("- just\n- a list\n", "the top level must be a mapping"),
        ("turns: [unclosed\n", "not valid YAML (line 2)"),
    ],
)
def test_invalid_configs_say_which_field_and_why(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_config_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_from_the_command_line_are_validated() -> None:
    config = with_overrides(
        AgentConfig(), **{"asr.backend": "openai", "base_url": "http://127.0.0.1:9/v1", "tts.backend": None}
    )
    assert config.asr.backend == "openai"
    assert config.base_url == "http://127.0.0.1:9/v1"
    assert config.tts.backend == "espeak"
    with pytest.raises(ConfigError, match=r"asr\.backend"):
        with_overrides(AgentConfig(), **{"asr.backend": "nope"})
