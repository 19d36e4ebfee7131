"""Turn-taking decisions, driven chunk by chunk through the real segmenter."""

from __future__ import annotations

from avagent.perception.turns import Interruption, TurnDetector, TurnEnd, TurnSettings
from avagent.perception.vad import SegmentEnd, SegmentStart, SpeechSegmenter, VadSettings

CHUNK = 0.032


def drive(
    pattern: list[tuple[float, float]], settings: TurnSettings, agent_speaking: bool = False
) -> tuple[list[TurnEnd], list[Interruption]]:
    """Feed (seconds, probability) stretches through the segmenter and the turn detector."""
    segmenter = SpeechSegmenter(VadSettings())
    turns = TurnDetector(settings)
    ends: list[TurnEnd] = []
    interruptions: list[Interruption] = []
    t = 0.0
    for seconds, probability in pattern:
        for _ in range(round(seconds / CHUNK)):
            boundary = segmenter.push(probability, t, t + CHUNK)
            t += CHUNK
            event = None
            if isinstance(boundary, SegmentStart):
                event = turns.speech_started(boundary.start, t, agent_speaking, onset=boundary.onset)
            elif isinstance(boundary, SegmentEnd):
                event = turns.speech_ended(boundary.end, t)
            if event:
                interruptions.append(event)
            end, event = turns.tick(t, segmenter.speech_end)
            if event:
                interruptions.append(event)
            if end:
                ends.append(end)
    return ends, interruptions


def test_turn_ends_after_the_hangover_of_silence() -> None:
    ends, _ = drive([(1.0, 0.0), (1.0, 0.9), (1.0, 0.0)], TurnSettings(hangover_ms=300.0))
    assert len(ends) == 1
    end = ends[0]
    # Chunks of 32 ms: speech runs from 0.992 to 1.984 s; the segmenter pads the start by 50 ms
    # and puts the end 30 ms before the last confident chunk ends.
    assert abs(end.start - 0.942) < 1e-6
    assert abs(end.end - 1.954) < 1e-6
    assert 0.3 - CHUNK / 2 <= end.t - end.end <= 0.3 + CHUNK / 2, "the hangover counts from the end of speech"


def test_a_pause_shorter_than_the_hangover_keeps_the_turn_open() -> None:
    ends, _ = drive(
        [(0.5, 0.0), (0.6, 0.9), (0.2, 0.0), (0.6, 0.9), (1.0, 0.0)], TurnSettings(hangover_ms=300.0)
    )
    assert len(ends) == 1
    assert ends[0].end - ends[0].start > 1.3


def test_a_longer_pause_splits_two_turns() -> None:
    ends, _ = drive(
        [(0.5, 0.0), (0.6, 0.9), (0.6, 0.0), (0.6, 0.9), (1.0, 0.0)], TurnSettings(hangover_ms=300.0)
    )
    assert [e.turn for e in ends] == [1, 2]


def test_maximum_utterance_forces_an_end_and_the_rest_is_the_next_turn() -> None:
    ends, _ = drive([(0.2, 0.0), (5.0, 0.9), (1.0, 0.0)], TurnSettings(max_utterance_s=2.0))
    assert ends[0].forced
    assert 1.9 < ends[0].end - ends[0].start < 2.2
    assert len(ends) >= 2
    assert not ends[-1].forced


def test_speech_over_the_agent_pauses_it_then_barges_in() -> None:
    ends, interruptions = drive(
        [(0.3, 0.0), (1.0, 0.9), (1.0, 0.0)], TurnSettings(min_barge_in_ms=300.0), agent_speaking=True
    )
    assert [i.action for i in interruptions] == ["pause", "barge_in"]
    pause, barge = interruptions
    assert barge.t - pause.t >= 0.2
    assert len(ends) == 1, "the barge-in speech is the user's next turn"


def test_a_backchannel_over_the_agent_resumes_it_and_is_not_a_turn() -> None:
    ends, interruptions = drive(
        [(0.3, 0.0), (0.15, 0.9), (1.0, 0.0)], TurnSettings(min_barge_in_ms=300.0), agent_speaking=True
    )
    assert [i.action for i in interruptions] == ["pause", "resume"]
    assert ends == []


def test_without_pause_on_onset_only_the_barge_in_is_signalled() -> None:
    _, interruptions = drive(
        [(0.3, 0.0), (1.0, 0.9), (0.5, 0.0)], TurnSettings(pause_on_onset=False), agent_speaking=True
    )
    assert [i.action for i in interruptions] == ["barge_in"]


def test_barge_in_can_be_switched_off() -> None:
    ends, interruptions = drive(
        [(0.3, 0.0), (1.0, 0.9), (0.5, 0.0)], TurnSettings(barge_in=False), agent_speaking=True
    )
    assert interruptions == []
    assert len(ends) == 1


def test_segmenter_ignores_a_blip_shorter_than_minimum_speech() -> None:
    segmenter = SpeechSegmenter(VadSettings(min_speech_ms=100.0))
    out = [
        segmenter.push(p, i * CHUNK, (i + 1) * CHUNK) for i, p in enumerate([0.0, 0.9, 0.9, 0.1, 0.0, 0.0])
    ]
    assert all(b is None for b in out)
    assert not segmenter.in_speech
