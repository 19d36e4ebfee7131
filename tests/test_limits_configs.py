"""Every config and array geometry file is bounded: too big, too deep, too many nodes or aliases,
the wrong type or a FIFO each end in one line, before anything runs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from avagent.agent.config import MAX_CONFIG_BYTES, load_config, parse_config
from avagent.core.bounded_yaml import MAX_YAML_DEPTH, MAX_YAML_NODES
from avagent.core.errors import ConfigError, InputError
from avagent.perception.arrays import MAX_GEOMETRY_BYTES, MAX_MICS, load_geometry
from tests.test_cli import assert_one_line_error
from tests.test_limits_files import avagent, billion_laughs, good_wav

# --- configs ------------------------------------------------------------------------------------


def test_configs_that_never_end_or_are_not_files_are_refused_at_once(tmp_path: Path) -> None:
    wav = good_wav(tmp_path / "in.wav")
    os.mkfifo(tmp_path / "pipe.yaml")
    assert_one_line_error(
        avagent("run", "--config", str(tmp_path / "pipe.yaml"), "--input", str(wav)), "is a FIFO"
    )
    assert_one_line_error(
        avagent("run", "--config", "/dev/zero", "--input", str(wav)), "is a character device"
    )
    assert_one_line_error(
        avagent("doa", str(wav), "--array", "pair", "--config", str(tmp_path)), "is a directory"
    )
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GiB that costs no disk
    assert_one_line_error(
        avagent("run", "--config", str(huge), "--input", str(wav)), "larger than the limit of 1 MiB"
    )
    exact = tmp_path / "exact.yaml"
    exact.write_bytes(b"#" * (MAX_CONFIG_BYTES - 1) + b"\n")
    assert load_config(exact).turns.hangover_ms == 300.0, "a file of exactly the limit is read"
    exact.write_bytes(b"#" * MAX_CONFIG_BYTES + b"\n")
    with pytest.raises(ConfigError, match="larger than the limit"):
        load_config(exact)


def test_a_billion_laughs_is_refused_within_bounds(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs())
    assert path.stat().st_size < 1000
    started = time.monotonic()
    result = avagent("run", "--config", str(path), "--input", str(good_wav(tmp_path / "in.wav")))
    assert_one_line_error(result, f"more than {MAX_YAML_NODES} YAML values once its aliases are expanded")
    assert time.monotonic() - started < 20.0
    # A few aliases that stay small are fine.
    small = tmp_path / "anchors.yaml"
    small.write_text("turns:\n  hangover_ms: &v 250\nvad:\n  min_silence_ms: *v\n")
    config = load_config(small)
    assert config.turns.hangover_ms == config.vad.min_silence_ms == 250.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("turns: &a [*a]\n", "an alias refers to a value that contains it"),
        ("turns: " + "[" * 5000 + "]" * 5000 + "\n", f"nested more than {MAX_YAML_DEPTH} levels deep"),
        ("turns: " + "[" * 40 + "]" * 40 + "\n", f"nested more than {MAX_YAML_DEPTH} levels deep"),
        ("turns:\n  hangover_ms: " + "7" * 5000 + "\n", "a value cannot be read"),
        ("turns: \xff\n", "not UTF-8 text"),
    ],
)
def test_yaml_that_cannot_be_bounded_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_validation_error_quotes_a_short_prefix_of_the_value(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text("turns:\n  hangover_ms: '" + "x" * 500_000 + "'\n")
    result = avagent("run", "--config", str(path), "--input", str(good_wav(tmp_path / "in.wav")))
    assert_one_line_error(result, "turns.hangover_ms: Input should be a valid number")
    assert "(got 'xxxxxxxxxx" in result.stderr
    assert len(result.stderr) < 300
    with pytest.raises(ConfigError) as caught:
        parse_config({"turns": {f"setting_{i}": i for i in range(1000)}})
    assert "and 995 more" in str(caught.value)
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize(
    "section",
    [
        {"serve": {"token": ["hunter2-token-value"]}},
        {"serve": {"token": {"value": "hunter2-token-value"}}},
        {"serve": {"ice_servers": [{"urls": "turn:x:3478", "username": "u", "credential": ["hunter2"]}]}},
        {"tools": {"mcp_servers": {"m": {"transport": "http", "url": "http://a", "headers": "hunter2"}}}},
        {"tools": {"mcp_servers": {"m": {"command": "x", "env": {"API_KEY": ["hunter2"]}}}}},
        {"serve": {"ice_servers": [{"urls": "http://user:hunter2@example.org"}]}},
    ],
)
def test_a_secret_is_never_quoted_in_a_config_error(section: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(section)
    assert "hunter2" not in str(caught.value), str(caught.value)
    assert "got" in str(caught.value)


def test_a_mistyped_token_in_a_file_gets_its_type_only(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text("serve:\n  token: [s3cr3t-do-not-print]\n")
    result = avagent("serve", "--config", str(path))
    assert_one_line_error(result, "serve.token: Input should be a valid string (got a list, not shown)")
    assert "s3cr3t" not in result.stderr


# --- array geometry files -----------------------------------------------------------------------


def test_hostile_geometry_files_are_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    for path, message in [
        (tmp_path / "pipe.yaml", "is a FIFO"),
        (Path("/dev/zero"), "is a character device"),
        (tmp_path, "is a directory"),
        (tmp_path / "missing.yaml", "no such array geometry file"),
    ]:
        with pytest.raises(InputError, match=message):
            load_geometry(path)
    big = tmp_path / "big.yaml"
    big.write_text("mics: [[0, 0, 0], [0.1, 0, 0]]\n" + "#" * MAX_GEOMETRY_BYTES + "\n")
    with pytest.raises(InputError, match="larger than the limit of 64 KiB"):
        load_geometry(big)
    laughs = tmp_path / "laughs.yaml"
    laughs.write_text(billion_laughs().replace("turns:", "mics:"))
    with pytest.raises(InputError, match="once its aliases are expanded"):
        load_geometry(laughs)
    crowd = tmp_path / "crowd.yaml"
    crowd.write_text(
        "mics:\n" + "".join(f"  - [{i * 0.01:.2f}, {i % 2 * 0.01}, 0]\n" for i in range(MAX_MICS + 1))
    )
    with pytest.raises(InputError, match=f"65 microphones; at most {MAX_MICS}"):
        load_geometry(crowd)
    wav = good_wav(tmp_path / "two.wav", channels=2)
    assert_one_line_error(avagent("doa", str(wav), "--geometry", str(tmp_path / "pipe.yaml")), "is a FIFO")
    assert_one_line_error(
        avagent("run", "--input", str(wav), "--geometry", "/dev/zero"), "is a character device"
    )
