"""Microphone arrays: where each microphone is, in metres, in the array's own frame.

Azimuth is measured in degrees counter-clockwise from the array's +x axis, in [0, 360). Channel
``i`` of the input is microphone ``i``. An array is a preset name or a YAML file
``mics: [[x, y, z], ...]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avagent.core.angles import wrap360
from avagent.core.bounded_yaml import load_yaml
from avagent.core.errors import InputError
from avagent.core.files import read_bounded
from avagent.core.text import one_line
from avagent.io.wav import WavInfo

SPEED_OF_SOUND = 343.0
"""Metres per second in air at about 20 degrees C."""

MAX_MICS = 64
"""The most microphones an array may have (as many as the channels a WAV input may have)."""


@dataclass(frozen=True)
class MicArray:
    """A named set of microphone positions, shape ``(mics, 3)`` in metres."""

    name: str
    positions: np.ndarray

    @property
    def mics(self) -> int:
        return int(self.positions.shape[0])

    @property
    def aperture(self) -> float:
        """The largest distance between two microphones, in metres."""
        diffs = self.positions[:, None, :] - self.positions[None, :, :]
        return float(np.max(np.linalg.norm(diffs, axis=-1)))

    @property
    def linear(self) -> bool:
        """All microphones lie on one line in the horizontal plane: such an array cannot tell a
        direction from its mirror image across that line (front/back ambiguity)."""
        return _horizontal_rank(self.positions) < 2

    @property
    def axis_deg(self) -> float:
        """Azimuth of the line through a linear array (its principal horizontal direction), in
        [0, 180): a linear array reports directions in [axis, axis + 180], the half-plane
        counter-clockwise of its axis (for ``pair``, on the x axis: the +y side)."""
        xy = self.positions[:, :2] - self.positions[:, :2].mean(axis=0)
        _u, _s, vt = np.linalg.svd(xy, full_matrices=False)
        return round(math.degrees(math.atan2(float(vt[0, 1]), float(vt[0, 0]))), 9) % 180.0

    def mirror(self, azimuth_deg: float) -> float:
        """The direction a linear array cannot tell apart from ``azimuth_deg``."""
        return wrap360(2.0 * self.axis_deg - azimuth_deg)


def _circle(count: int, radius: float, first_deg: float = 0.0) -> np.ndarray:
    angles = np.radians(first_deg + 360.0 / count * np.arange(count))
    return np.stack([radius * np.cos(angles), radius * np.sin(angles), np.zeros(count)], axis=1)


PRESETS: dict[str, np.ndarray] = {
    # ReSpeaker USB Mic Array v2.0: four microphones on a square, 32 mm from its centre,
    # microphone 0 on the +x axis, then counter-clockwise.
    "respeaker4": _circle(4, 0.032),
    # ReSpeaker 6-mic circular array: a hexagon of radius 46.3 mm, microphone 0 on +x.
    "respeaker6": _circle(6, 0.0463),
    # Two microphones 64 mm apart on the x axis (microphone 0 at +x).
    "pair": np.array([[0.032, 0.0, 0.0], [-0.032, 0.0, 0.0]]),
}


def preset(name: str) -> MicArray:
    """A preset array by name (``respeaker4``, ``respeaker6``, ``pair``)."""
    try:
        positions = PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise InputError(f"unknown microphone array {name!r} (presets: {known})") from None
    return MicArray(name, positions.copy())


def from_positions(name: str, mics: object) -> MicArray:
    """An array from a list of ``[x, y, z]`` (or ``[x, y]``) positions in metres, checked."""
    if not isinstance(mics, list | tuple) or len(mics) < 2:
        raise InputError(f"{name}: 'mics' must be a list of at least two [x, y, z] positions in metres")
    if len(mics) > MAX_MICS:
        raise InputError(f"{name}: {len(mics)} microphones; at most {MAX_MICS} are supported")
    rows: list[list[float]] = []
    for i, m in enumerate(mics):
        if not isinstance(m, list | tuple) or len(m) not in (2, 3):
            raise InputError(
                f"{name}: microphone {i} must be [x, y, z] in metres, got {one_line(repr(m), 60)}"
            )
        try:
            row = [float(v) for v in m]
        except (TypeError, ValueError):
            raise InputError(
                f"{name}: microphone {i} has a coordinate that is not a number: {one_line(repr(m), 60)}"
            ) from None
        if not all(math.isfinite(v) for v in row):
            raise InputError(
                f"{name}: microphone {i} has a coordinate that is not finite: {one_line(repr(m), 60)}"
            )
        rows.append(row if len(row) == 3 else [*row, 0.0])
    positions = np.array(rows, dtype=np.float64)
    if float(np.max(np.abs(positions))) > 5.0:
        raise InputError(
            f"{name}: microphone positions are in metres; {np.max(np.abs(positions)):g} m is too far"
        )
    diffs = np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)
    np.fill_diagonal(diffs, np.inf)
    if float(np.min(diffs)) < 1e-3:
        i, j = (int(k) for k in np.unravel_index(int(np.argmin(diffs)), diffs.shape))
        raise InputError(f"{name}: microphones {i} and {j} are at the same place")
    if _horizontal_rank(positions) == 0:
        raise InputError(f"{name}: the microphones must be spread out in the horizontal (x, y) plane")
    return MicArray(name, positions)


MAX_GEOMETRY_BYTES = 64 << 10
"""The largest array geometry file read (64 KiB); one of 64 microphones is about 2 KiB."""


def load_geometry(path: str | Path) -> MicArray:
    """An array from a YAML file ``mics: [[x, y, z], ...]`` (metres, channel i = microphone i): a
    regular file of at most ``MAX_GEOMETRY_BYTES``, its YAML bounded (core/bounded_yaml.py)."""
    p = Path(path)
    raw = read_bounded(p, MAX_GEOMETRY_BYTES, "array geometry file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    data = load_yaml(text, str(p))
    if not isinstance(data, dict) or "mics" not in data:
        raise InputError(f"{p}: expected a mapping with 'mics: [[x, y, z], ...]' in metres")
    unknown = set(data) - {"mics", "name"}
    if unknown:
        names = one_line(", ".join(sorted(map(str, unknown))), 80)
        raise InputError(f"{p}: unknown setting(s) {names} (expected 'mics')")
    return from_positions(one_line(str(data.get("name") or p.stem), 60), data["mics"])


def resolve_array(name: str | None = None, geometry: str | Path | None = None) -> MicArray:
    """The array named by exactly one of a preset ``name`` or a ``geometry`` file."""
    if name is not None and geometry is None:
        return preset(name)
    if geometry is not None and name is None:
        return load_geometry(geometry)
    raise InputError("give exactly one of an array preset name or a geometry file")


def _horizontal_rank(positions: np.ndarray) -> int:
    xy = positions[:, :2] - positions[:, :2].mean(axis=0)
    singular = np.linalg.svd(xy, compute_uv=False)
    return int(np.sum(singular > 1e-4))


def check_channels(info: WavInfo, array: MicArray) -> None:
    """A clear error when a recording has fewer channels than the array has microphones."""
    if info.channels < array.mics:
        raise InputError(
            f"{info.path}: has {info.channels} channel(s) but the array {array.name!r} has "
            f"{array.mics} microphones (channel i is microphone i)"
        )
