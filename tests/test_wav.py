"""WAV input checks: every kind of bad file gets one clear line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avagent.core.errors import InputError
from avagent.io.wav import inspect_wav, read_wav


def write(path: Path, samples: np.ndarray, rate: int = 16000, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), samples, rate, subtype=subtype)
    return path


def test_good_files_of_any_rate_channels_and_format(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for rate, channels, subtype in [
        (8000, 1, "PCM_U8"),
        (44100, 2, "PCM_24"),
        (48000, 6, "FLOAT"),
        (16000, 4, "PCM_32"),
    ]:
        data = (rng.standard_normal((rate // 2, channels)) * 0.1).astype(np.float32)
        info = inspect_wav(write(tmp_path / f"{rate}_{channels}.wav", data, rate, subtype))
        assert (info.sample_rate, info.channels, info.frames) == (rate, channels, rate // 2)
        samples, got_rate = read_wav(info.path)
        assert samples.shape == (rate // 2, channels)
        assert got_rate == rate


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = write(tmp_path / "good.wav", np.zeros((16000, 1), dtype=np.float32) + 0.1)
    raw = good.read_bytes()
    cases: dict[str, tuple[Path, str]] = {}
    cases["missing"] = (tmp_path / "missing.wav", "no such file")
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty"] = (tmp_path / "empty.wav", "the file is empty")
    (tmp_path / "text.wav").write_text("this is not audio at all, just words")
    cases["not wav"] = (tmp_path / "text.wav", "not a WAV file")
    (tmp_path / "trunc.wav").write_bytes(raw[: len(raw) // 2])
    cases["truncated"] = (
        tmp_path / "trunc.wav",
        "truncated: the header promises 1.00 s of audio, the file holds 0.50 s",
    )
    (tmp_path / "header.wav").write_bytes(raw[:40])
    cases["header only"] = (tmp_path / "header.wav", "cannot read as WAV")
    cases["no samples"] = (
        write(tmp_path / "nosamples.wav", np.zeros((0, 1), dtype=np.float32)),
        "holds no audio samples",
    )
    write(tmp_path / "flac.flac", np.zeros((1600, 1), dtype=np.float32))
    cases["flac"] = (tmp_path / "flac.flac", "not a WAV file")
    nan = np.zeros((16000, 2), dtype=np.float32)
    nan[8000, 1] = np.nan
    cases["nan"] = (write(tmp_path / "nan.wav", nan, subtype="FLOAT"), "NaN or infinite samples at 0.500 s")
    inf = np.zeros((16000, 1), dtype=np.float32)
    inf[4000] = np.inf
    cases["inf"] = (write(tmp_path / "inf.wav", inf, subtype="FLOAT"), "NaN or infinite samples at 0.250 s")
    cases["adpcm"] = (
        write(tmp_path / "adpcm.wav", np.zeros((16000, 1)), subtype="IMA_ADPCM"),
        "unsupported sample format IMA_ADPCM",
    )
    (tmp_path / "folder.wav").mkdir()
    cases["directory"] = (tmp_path / "folder.wav", "is a directory")
    return cases


def test_bad_files_get_one_line_that_says_what_is_wrong(tmp_path: Path) -> None:
    for name, (path, message) in bad_files(tmp_path).items():
        with pytest.raises(InputError) as caught:
            inspect_wav(path)
        text = str(caught.value)
        assert message in text, f"{name}: {text}"
        assert "\n" not in text
