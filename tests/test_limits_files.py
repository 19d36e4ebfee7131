"""Every file and command-line input is bounded: a hostile file ends in one line and exit status 2
within seconds, an output never destroys an input, and a killed run leaves a valid WAV (configs and
geometry files: test_limits_configs.py, which uses the helpers here).

The hostile inputs are real: FIFOs, /dev/zero, sparse files far over a limit, WAV headers that
claim 1 Hz or 100 channels, files the user may not read (as root, the command runs without the
capability that overrides file permissions), and real processes killed with SIGKILL or
interrupted with SIGINT.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avagent.core.errors import InputError
from avagent.io.wav import MAX_CHANNELS, MAX_READ_SAMPLES, inspect_wav, read_wav
from tests.conftest import SceneFactory
from tests.test_cli import assert_one_line_error

REPO = Path(__file__).resolve().parent.parent


def avagent(
    *args: str, cwd: Path | None = None, prefix: list[str] | None = None, timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    """``avagent ARGS`` as a user runs it; ``timeout`` is the bound a hostile input must stay in."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "avagent", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=env,
    )


def permissions_apply() -> list[str]:
    """A command prefix under which file permissions hold: none for a plain user; for root, setpriv
    drops the capabilities that override them."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root without setpriv: file permissions cannot be made to apply")
    return [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]


def good_wav(path: Path, rate: int = 16000, channels: int = 1, seconds: float = 1.0) -> Path:
    samples = np.full((int(rate * seconds), channels), 0.01, dtype=np.float32)
    sf.write(str(path), samples, rate, subtype="PCM_16")
    return path


def claiming_rate(path: Path, rate: int) -> Path:
    """A 16-bit mono WAV file whose header claims ``rate`` (the samples are those of 1 s at 16 kHz)."""
    raw = bytearray(good_wav(path).read_bytes())
    assert raw[12:16] == b"fmt "
    raw[24:28] = struct.pack("<I", rate)
    raw[28:32] = struct.pack("<I", rate * 2)
    path.write_bytes(bytes(raw))
    return path


def billion_laughs(levels: int = 9) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\nturns: *l{levels}\n"


# --- outputs: never an input, checked before anything runs ---------------------------------------


def test_an_output_that_is_the_input_by_any_name_is_refused_and_the_input_kept(tmp_path: Path) -> None:
    source = good_wav(tmp_path / "same.wav")
    before = source.read_bytes()
    (tmp_path / "link.wav").symlink_to("same.wav")
    os.link(source, tmp_path / "hard.wav")
    (tmp_path / "sub").mkdir()
    config = tmp_path / "my.yaml"
    config.write_text("turns:\n  hangover_ms: 300\n")
    for given, output in [
        ("same.wav", "same.wav"),
        ("same.wav", "link.wav"),
        ("link.wav", "hard.wav"),
        ("same.wav", "./sub/../same.wav"),
        (str(source), "same.wav"),
    ]:
        result = avagent("run", "--input", given, "--output", output, cwd=tmp_path)
        assert_one_line_error(result, "is the same file as the input")
        assert source.read_bytes() == before, f"--input {given} --output {output} destroyed the input"
    result = avagent("run", "--config", "my.yaml", "--input", "same.wav", "--output", "my.yaml", cwd=tmp_path)
    assert_one_line_error(result, "is the same file as the input my.yaml")
    assert config.read_text() == "turns:\n  hangover_ms: 300\n"


def test_outputs_that_cannot_be_written_are_refused_before_anything_runs(tmp_path: Path) -> None:
    source = good_wav(tmp_path / "in.wav")
    missing = tmp_path / "nowhere" / "out.wav"
    assert_one_line_error(avagent("run", "--input", str(source), "--output", str(missing)), "no such folder")
    assert not missing.parent.exists()
    assert_one_line_error(avagent("run", "--input", str(source), "--output", str(tmp_path)), "is a directory")
    os.mkfifo(tmp_path / "pipe")
    assert_one_line_error(
        avagent("run", "--input", str(source), "--output", str(tmp_path / "pipe")), "is a FIFO"
    )
    (tmp_path / "dangling.wav").symlink_to(tmp_path / "gone.wav")
    assert_one_line_error(
        avagent("run", "--input", str(source), "--output", str(tmp_path / "dangling.wav")),
        "broken symbolic link",
    )
    assert_one_line_error(avagent("demo", "--out", str(source)), "is not a folder")


def test_permissions_get_one_line(tmp_path: Path) -> None:
    prefix = permissions_apply()
    closed = good_wav(tmp_path / "closed.wav")
    closed.chmod(0)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    source = good_wav(tmp_path / "in.wav")
    try:
        assert_one_line_error(avagent("run", "--input", str(closed), prefix=prefix), "permission denied")
        assert_one_line_error(avagent("vad", str(closed), prefix=prefix), "permission denied")
        assert_one_line_error(
            avagent("doa", str(closed), "--array", "pair", prefix=prefix), "permission denied"
        )
        out = locked / "out.wav"
        assert_one_line_error(
            avagent("run", "--input", str(source), "--output", str(out), prefix=prefix), "permission denied"
        )
        assert_one_line_error(
            avagent("demo", "--out", str(locked / "demo"), prefix=prefix), "permission denied"
        )
        assert_one_line_error(avagent("demo", "--out", str(locked), prefix=prefix), "permission denied")
        assert not out.exists()
    finally:
        locked.chmod(0o755)


# --- what a WAV header may claim -----------------------------------------------------------------


@pytest.mark.parametrize("rate", [1, 7999, 192001, 4_000_000])
def test_a_header_claiming_an_unsupported_rate_is_refused_by_every_command(tmp_path: Path, rate: int) -> None:
    path = claiming_rate(tmp_path / "odd.wav", rate)
    for args in (["vad", str(path)], ["doa", str(path), "--array", "pair"], ["run", "--input", str(path)]):
        started = time.monotonic()
        assert_one_line_error(avagent(*args), f"sample rate {rate} Hz is outside what is supported")
        assert time.monotonic() - started < 20.0


def test_the_supported_rates_are_8_to_192_khz(tmp_path: Path) -> None:
    for rate in (8000, 192000):
        assert inspect_wav(good_wav(tmp_path / f"{rate}.wav", rate, seconds=0.1)).sample_rate == rate


def test_more_channels_than_supported_are_refused(tmp_path: Path) -> None:
    assert inspect_wav(good_wav(tmp_path / "ok.wav", channels=MAX_CHANNELS, seconds=0.01)).channels == 64
    path = good_wav(tmp_path / "wide.wav", channels=MAX_CHANNELS + 36, seconds=0.01)
    assert_one_line_error(avagent("vad", str(path)), f"100 channels; at most {MAX_CHANNELS}")


def streaming_u8_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    """An 8-bit mono WAV header whose sizes say "still being written" (the reader takes the file's
    length), on a sparse file of ``seconds`` of silence: huge, but costs no disk."""
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        0xFFFFFFFF,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        rate,
        rate,
        1,
        8,
        b"data",
        0xFFFFFFFF,
    )
    with path.open("wb") as f:
        f.write(header)
        f.truncate(len(header) + int(seconds * rate))
    return path


def test_a_recording_too_long_to_run_or_to_hold_is_refused(tmp_path: Path) -> None:
    day = streaming_u8_wav(tmp_path / "day.wav", 25 * 3600)
    assert_one_line_error(avagent("run", "--input", str(day)), "25.0 hours of audio; at most 24 hours")
    seconds = (MAX_READ_SAMPLES + 8000) / 8000  # about 9.3 hours at 8 kHz
    long = streaming_u8_wav(tmp_path / "long.wav", seconds)
    assert inspect_wav(long).frames > MAX_READ_SAMPLES, "short enough to run, it streams"
    assert_one_line_error(avagent("vad", str(long)), "too much to hold at once")
    with pytest.raises(InputError, match="too much to hold at once"):
        read_wav(long)


def test_a_flood_of_chunks_before_the_audio_is_refused(tmp_path: Path) -> None:
    raw = good_wav(tmp_path / "good.wav").read_bytes()
    body = b"WAVE" + raw[12:36] + (b"junk" + struct.pack("<I", 0)) * 5000 + raw[36:]
    (tmp_path / "chunks.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(InputError, match="more than 1024 chunks before the audio data"):
        inspect_wav(tmp_path / "chunks.wav")


def test_special_files_are_never_opened_as_inputs(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.wav")
    assert_one_line_error(avagent("run", "--input", str(tmp_path / "pipe.wav")), "is a FIFO")
    assert_one_line_error(avagent("vad", "/dev/zero"), "is a character device")
    assert_one_line_error(avagent("vad", str(tmp_path)), "is a directory")


def test_a_vad_reads_channel_0_alone(tmp_path: Path) -> None:
    samples = np.zeros((1600, 3), dtype=np.float32)
    samples[:, 0], samples[:, 2] = 0.25, -0.5
    sf.write(str(tmp_path / "three.wav"), samples, 16000, subtype="FLOAT")
    mono, rate = read_wav(tmp_path / "three.wav", channel=0)
    assert mono.shape == (1600,)
    assert rate == 16000
    assert np.all(mono == 0.25)


# --- the output WAV after a kill, and exit statuses ---------------------------------------------

_WRITER = """
import sys, time
import numpy as np
from avagent.io.sinks import WavSink

sink = WavSink(sys.argv[1], 16000, sync_every_s=1.0)
block = np.full(1600, 0.25, dtype=np.float32)
for _ in range(35):  # 3.5 s in 100 ms blocks: flushed after 1, 2 and 3 s
    sink.write(block)
print("written", flush=True)
time.sleep(60)
"""


def test_a_wav_being_written_is_valid_up_to_the_last_flush_after_sigkill(tmp_path: Path) -> None:
    out = tmp_path / "voice.wav"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(out)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "written"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=20)
    assert writer.returncode == -signal.SIGKILL
    with wave.open(str(out)) as w:  # trusts the header's sizes, as most readers do
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert w.getnframes() == 48000, "the three seconds flushed before the kill"
    samples, rate = sf.read(str(out), dtype="float32")
    assert rate == 16000
    assert samples.shape == (48000,)
    assert np.allclose(samples, 0.25, atol=1e-4)


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGKILL, -signal.SIGKILL)])
def test_an_interrupted_run_exits_130_and_a_killed_one_leaves_a_valid_wav(
    make_scene: SceneFactory, tmp_path: Path, sig: signal.Signals, status: int
) -> None:
    _, path = make_scene(["turn left"], snr_db=20.0, lead_s=5.0, tail_s=5.0, seed=34)
    out = tmp_path / "voice.wav"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "avagent",
            "run",
            "--input",
            str(path),
            "--realtime",
            "--json",
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert json.loads(process.stdout.readline())["type"]  # running: it has heard speech
        time.sleep(2.0)
    finally:
        process.send_signal(sig)
        _, err = process.communicate(timeout=20)
    assert process.returncode == status, err
    assert "Traceback" not in err
    with wave.open(str(out)) as w:
        rate, frames = w.getframerate(), w.getnframes()
    assert frames >= rate, "at least the first second of the voice, aligned with the input"
    raw = out.read_bytes()
    riff, data = struct.unpack("<I", raw[4:8])[0], struct.unpack("<I", raw[40:44])[0]
    assert riff == data + 36
    assert len(raw) >= 44 + data
