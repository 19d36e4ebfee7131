"""Secrets never leave the process: what looks like a credential is taken out of every error event,
log line and description of a server, and another server's error text is never passed on."""

from __future__ import annotations

import pytest

from avagent.core.events import MAX_ERROR_CHARS, Error
from avagent.core.text import describe_error, redact
from avagent.policy.models import ModelSettings


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("cannot reach http://bob:hunter2@10.0.0.5:8000/v1/models", "hunter2"),
        ("GET https://ops:p4ss@example.com/x failed", "p4ss"),
        ("bad request: api_key=sk-live-0123456789abcdef", "sk-live-0123456789abcdef"),
        ('{"token": "eyJhbGciOiJIUzI1NiJ9.payload"}', "eyJhbGciOiJIUzI1NiJ9"),
        ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("password=correct-horse-battery", "correct-horse-battery"),
        ("token: x7Fq2kLmN0", "x7Fq2kLmN0"),
        ("the key sk-proj-AbCdEfGhIjKlMnOpQrSt was refused", "sk-proj-AbCdEfGhIjKlMnOpQrSt"),
        ("?sig=deadbeefcafe&expires=5", "deadbeefcafe"),
    ],
)
def test_redact_takes_credentials_out(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert "***" in cleaned


def test_redact_leaves_ordinary_text_alone() -> None:
    ordinary = [
        "turn left ninety degrees",
        "http://127.0.0.1:8000/v1",
        "KeyError: 'turn'",
        "3.5 s",
        "serve.token: Input should be a valid string (got a list, not shown)",
        "serve.token_env: the environment variable X is not set",
    ]
    for text in ordinary:
        assert redact(text) == text


def test_an_http_error_is_described_by_its_status_not_its_body() -> None:
    class ServerError(Exception):
        status_code = 500

    described = describe_error(ServerError('{"error": "prompt was: my password is hunter2"}'))
    assert described == "ServerError: HTTP 500"


def test_every_error_event_is_one_bounded_redacted_line() -> None:
    event = Error(t=0.0, stage="policy", message="failed:\nhttp://u:secret@host/v1 " + "x" * 5000)
    message = event.to_dict()["message"]
    assert "secret" not in message
    assert "\n" not in message
    assert len(message) <= MAX_ERROR_CHARS


def test_a_model_server_is_described_without_its_credentials() -> None:
    settings = ModelSettings(model="qwen2.5", base_url="http://me:s3cret@127.0.0.1:8000/v1")
    assert settings.describe() == "qwen2.5 at http://***@127.0.0.1:8000/v1"
