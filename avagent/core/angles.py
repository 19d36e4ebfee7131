"""Angles in degrees: every azimuth in avagent is counter-clockwise from the array's +x axis."""

from __future__ import annotations


def wrap180(degrees: float) -> float:
    """An angle (or a difference of angles) folded into [-180, 180)."""
    return (degrees + 180.0) % 360.0 - 180.0


def wrap360(degrees: float) -> float:
    """An angle folded into [0, 360)."""
    return degrees % 360.0
