"""Every file, config and command-line input is bounded: a hostile file ends in one line and exit
status 2 within seconds, an output never destroys an input, and a killed run leaves a valid WAV.

The hostile inputs are real: FIFOs, /dev/zero, sparse files far over a limit, a "billion laughs"
YAML, WAV headers that claim 1 Hz or 100 channels, files the user may not read (as root, the
command runs without the capability that overrides file permissions), and real processes killed
with SIGKILL or interrupted with SIGINT.
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

from avagent.agent.config import MAX_CONFIG_BYTES, load_config, parse_config
from avagent.core.bounded_yaml import MAX_YAML_DEPTH, MAX_YAML_NODES
from avagent.core.errors import ConfigError, InputError
from avagent.io.wav import MAX_CHANNELS, MAX_READ_SAMPLES, inspect_wav, read_wav
from avagent.perception.arrays import MAX_GEOMETRY_BYTES, MAX_MICS, load_geometry
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
