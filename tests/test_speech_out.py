"""The agent's voice: espeak-ng synthesis, sentence-by-sentence speaking, pause, resume and cut."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from avagent.core.bus import Bus
from avagent.core.events import (
    BargeIn,
    Event,
    PauseSpeaking,
    ResumeSpeaking,
    Say,
    SpeakingEnded,
    SpeakingStarted,
)
from avagent.core.text import split_sentences
from avagent.io.playback import Playback, Utterance
from avagent.io.speech_out import SpeechOut
from avagent.io.tts.base import SynthesisError
from avagent.io.tts.espeak import EspeakSynthesizer


def test_espeak_speaks_with_pip_alone() -> None:
    synth = EspeakSynthesizer()
    audio = synth.synthesize_sync("Turning left ninety degrees.")
    assert synth.sample_rate == 22050
    assert audio.dtype == np.float32
    assert 0.8 < audio.shape[0] / synth.sample_rate < 3.0
    assert 0.05 < float(np.max(np.abs(audio))) <= 1.0


def test_an_unknown_voice_is_refused() -> None:
    with pytest.raises(SynthesisError, match="no voice"):
        EspeakSynthesizer(voice="xx-nonexistent")


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Hello there. How are you? Fine!", ["Hello there.", "How are you?", "Fine!"]),
        ("One sentence only", ["One sentence only"]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("Lines\nbreak too", ["Lines", "break too"]),
        ("It is 3.5 metres away.", ["It is 3.5 metres away."]),
        ("", []),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


def still_speaking(playback: Playback) -> bool:
    return playback.speaking


def make_playback() -> tuple[Playback, list[Event]]:
    events: list[Event] = []
    return Playback(1000, events.append), events


def test_playback_reports_start_end_and_what_was_heard() -> None:
    playback, events = make_playback()
    playback.enqueue(Utterance(np.ones(150, dtype=np.float32), "first", turn=1))
    playback.enqueue(Utterance(np.ones(100, dtype=np.float32) * 0.5, "second", turn=1))
    block = playback.pull(200, t=1.0)
    assert np.all(block[:150] == 1.0)
    assert np.all(block[150:] == 0.5)
    assert playback.speaking
    rest = playback.pull(100, t=1.2)
    assert np.all(rest[:50] == 0.5)
    assert np.all(rest[50:] == 0.0)
    assert not still_speaking(playback)
    kinds = [(type(e).__name__, getattr(e, "text", ""), round(e.t, 3)) for e in events]
    assert kinds == [
        ("SpeakingStarted", "first", 1.0),
        ("SpeakingEnded", "first", 1.15),
        ("SpeakingStarted", "second", 1.15),
        ("SpeakingEnded", "second", 1.25),
    ]


def test_pause_holds_the_voice_and_resume_carries_on_where_it_was() -> None:
    playback, _ = make_playback()
    playback.enqueue(Utterance(np.arange(1, 301, dtype=np.float32), "count"))
    first = playback.pull(100, t=0.0)
    playback.pause()
    assert np.all(playback.pull(100, t=0.1) == 0.0)
    playback.resume()
    assert np.array_equal(playback.pull(100, t=0.2), first + 100)


def test_interrupt_cuts_at_once_and_says_how_much_was_heard() -> None:
    playback, events = make_playback()
    playback.enqueue(Utterance(np.ones(1000, dtype=np.float32), "long answer"))
    playback.enqueue(Utterance(np.ones(500, dtype=np.float32), "never heard"))
    playback.pull(250, t=0.0)
    cut = playback.interrupt(t=0.25)
    assert [u.text for u in cut] == ["long answer", "never heard"]
    assert np.all(playback.pull(100, t=0.26) == 0.0)
    ended = [e for e in events if isinstance(e, SpeakingEnded)]
    assert [(e.text, e.interrupted, e.played_s) for e in ended] == [
        ("long answer", True, 0.25),
        ("never heard", True, 0.0),
    ]


class SlowSynth:
    """espeak-ng behind a delay: each sentence takes ``delay`` seconds to make."""

    name = "slow"

    def __init__(self, delay: float) -> None:
        self._inner = EspeakSynthesizer()
        self.sample_rate = self._inner.sample_rate
        self.delay = delay
        self.started: list[str] = []

    async def synthesize(self, text: str) -> np.ndarray:
        self.started.append(text)
        await asyncio.sleep(self.delay)
        return await self._inner.synthesize(text)


async def run_speech_out(synth: object, rate: int = 16000) -> tuple[Bus, SpeechOut, asyncio.Task[None]]:
    bus = Bus()
    playback = Playback(rate, bus.publish_nowait)
    speech = SpeechOut(bus, synth, playback)  # type: ignore[arg-type]
    task = asyncio.create_task(speech.run())
    await asyncio.sleep(0)
    return bus, speech, task


async def test_first_sentence_plays_before_the_rest_is_made() -> None:
    synth = SlowSynth(delay=0.2)
    bus, speech, task = await run_speech_out(synth)
    await bus.publish(Say(t=0.0, text="First sentence. Second sentence. Third sentence."))
    await asyncio.sleep(0.3)
    assert speech.playback.speaking, "the first sentence is queued for playing"
    assert synth.started == ["First sentence.", "Second sentence."]
    block = speech.playback.pull(1600, t=0.0)
    assert np.abs(block).max() > 0.01, "and it is resampled to the playback rate and audible"
    bus.close()
    await asyncio.wait_for(task, 1.0)


async def test_barge_in_drops_unsaid_sentences_and_silences_the_speaker() -> None:
    synth = SlowSynth(delay=0.05)
    bus, speech, task = await run_speech_out(synth)
    events = bus.subscribe(SpeakingEnded, name="ended")
    await bus.publish(Say(t=0.0, text="One. Two. Three. Four. Five."))
    await asyncio.sleep(0.08)
    speech.playback.pull(800, t=0.0)
    await bus.publish(BargeIn(t=0.05))
    await asyncio.sleep(0.2)
    assert not speech.busy
    assert np.all(speech.playback.pull(1600, t=0.1) == 0.0)
    assert len(synth.started) < 5, "sentences after the barge-in are never synthesised"
    cut = events.get_nowait()
    assert isinstance(cut, SpeakingEnded)
    assert cut.interrupted
    # The voice works again for the next answer.
    await bus.publish(Say(t=1.0, text="Back again."))
    await asyncio.sleep(0.2)
    assert speech.playback.speaking
    bus.close()
    await asyncio.wait_for(task, 1.0)


async def test_pause_and_resume_events_hold_and_release_the_voice() -> None:
    bus, speech, task = await run_speech_out(EspeakSynthesizer())
    await bus.publish(Say(t=0.0, text="Hold on."))
    await asyncio.sleep(0.1)
    await bus.publish(PauseSpeaking(t=0.1))
    await asyncio.sleep(0.01)
    assert np.all(speech.playback.pull(800, t=0.1) == 0.0)
    await bus.publish(ResumeSpeaking(t=0.2))
    await asyncio.sleep(0.01)
    assert np.abs(speech.playback.pull(8000, t=0.2)).max() > 0.01
    bus.close()
    await asyncio.wait_for(task, 1.0)


async def test_a_failing_synthesiser_is_reported_and_the_next_sentence_still_speaks() -> None:
    class Flaky:
        name = "flaky"
        sample_rate = 22050

        def __init__(self) -> None:
            self._inner = EspeakSynthesizer()

        async def synthesize(self, text: str) -> np.ndarray:
            if "broken" in text:
                raise SynthesisError("cannot say that")
            return await self._inner.synthesize(text)

    bus, speech, task = await run_speech_out(Flaky())
    errors = bus.subscribe(Event, name="all")
    await bus.publish(Say(t=0.0, text="This is broken. This works."))
    await asyncio.sleep(0.2)
    seen = []
    while (e := errors.get_nowait()) is not None:
        seen.append(e)
    assert any(getattr(e, "stage", None) == "speech_out" for e in seen)
    speech.playback.pull(10, t=0.0)
    assert speech.playback.speaking
    bus.close()
    await asyncio.wait_for(task, 1.0)
    assert not any(isinstance(e, SpeakingStarted) and "broken" in e.text for e in seen)


async def test_nothing_new_is_synthesised_while_the_voice_is_held() -> None:
    synth = SlowSynth(delay=0.02)
    bus, _, task = await run_speech_out(synth)
    await bus.publish(PauseSpeaking(t=0.0))
    await asyncio.sleep(0.01)
    await bus.publish(Say(t=0.0, text="One. Two. Three."))
    await asyncio.sleep(0.2)
    assert synth.started == [], "held: the user may be cutting in"
    await bus.publish(ResumeSpeaking(t=0.2))
    await asyncio.sleep(0.3)
    assert synth.started == ["One.", "Two.", "Three."]
    bus.close()
    await asyncio.wait_for(task, 1.0)
