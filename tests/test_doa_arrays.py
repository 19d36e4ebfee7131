"""Microphone arrays: the presets' geometry, YAML files, and clear errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avagent.core.errors import InputError
from avagent.perception.arrays import load_geometry, preset, resolve_array


@pytest.mark.parametrize(("name", "mics", "radius"), [("respeaker4", 4, 0.032), ("respeaker6", 6, 0.0463)])
def test_circular_presets_have_their_microphones_on_their_circle(name: str, mics: int, radius: float) -> None:
    array = preset(name)
    assert array.mics == mics
    assert np.allclose(np.linalg.norm(array.positions[:, :2], axis=1), radius)
    assert np.allclose(array.positions[:, 2], 0.0)
    assert not array.linear


def test_the_pair_is_64_mm_apart_and_linear_with_a_stated_mirror() -> None:
    pair = preset("pair")
    assert pair.mics == 2
    assert pair.aperture == pytest.approx(0.064)
    assert pair.linear
    assert pair.axis_deg == pytest.approx(0.0)
    assert pair.mirror(60.0) == pytest.approx(300.0)
    assert pair.mirror(100.0) == pytest.approx(260.0)


def test_a_yaml_geometry_loads_in_metres_with_channel_order_kept(tmp_path: Path) -> None:
    path = tmp_path / "tri.yaml"
    path.write_text("mics:\n  - [0.05, 0.0, 0.0]\n  - [-0.025, 0.0433, 0.0]\n  - [-0.025, -0.0433]\n")
    array = load_geometry(path)
    assert array.mics == 3
    assert array.name == "tri"
    assert array.positions[2].tolist() == [-0.025, -0.0433, 0.0]
    assert not array.linear


def test_three_microphones_on_a_line_are_linear_along_their_axis(tmp_path: Path) -> None:
    path = tmp_path / "line.yaml"
    path.write_text("mics: [[0, 0, 0], [0, 0.04, 0], [0, 0.08, 0]]\n")
    array = load_geometry(path)
    assert array.linear
    assert array.axis_deg == pytest.approx(90.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mics: [[0, 0, 0]]\n", "at least two"),
        ("mics: [[0, 0, 0], [0, 0, 0]]\n", "same place"),
        ("mics: [[0, 0, 0], [0.1, 'a', 0]]\n", "not a number"),
        ("mics: [[0, 0, 0], [0.1, 0, 0, 4]]\n", "[x, y, z]"),
        ("mics: [[0, 0, 0], [50, 0, 0]]\n", "metres"),
        ("mics: [[0, 0, 0], [0, 0, 0.1]]\n", "horizontal"),
        ("microphones: []\n", "expected a mapping"),
        ("mics: [[0, 0, 0], [0.1, 0, 0]]\nradius: 3\n", "unknown setting"),
        ("mics: [[0, 0\n", "not valid YAML"),
    ],
)
def test_bad_geometry_files_get_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=None) as caught:
        load_geometry(path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_presets_and_missing_files_are_named() -> None:
    with pytest.raises(InputError, match="presets: pair, respeaker4, respeaker6"):
        preset("respeaker8")
    with pytest.raises(InputError, match="no such array geometry file"):
        resolve_array(None, "/nonexistent/array.yaml")
    with pytest.raises(InputError, match="exactly one"):
        resolve_array("pair", "x.yaml")
