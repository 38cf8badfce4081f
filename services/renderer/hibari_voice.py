"""A hibari voice (hibari-tts 0.2: small ONNX models distilled from Kokoro-82M, 24 kHz), with word timings.

hibari's public API gives audio only. Its model does compute every phoneme's duration (the duration predictor's
output, rounded, `/Clip_output_0`: frames of 25 ms, one per phoneme id), so the model is loaded with that tensor
marked as an extra output, in memory, and the signal is made from the other outputs with hibari's own `dsp.synth`,
as `Hibari.from_ids` does. That reaches into hibari's internals, hence the pin to 0.2.x in pyproject.toml; if the
tensor is ever missing, each sentence's time is spread evenly over its phonemes instead (an estimate, not a
measurement).

Determinism: durations depend on the text only, and the noise generator is seeded, so the same text always gives
bit-identical samples and word timings. The model hands the pause before a full stop to the vowel before it, so
word edges are then pulled in over silence (`snap_to_sound`), which is safe because the audio is bit-exact.

Only voices already on this machine are offered: "heart" ships inside the wheel; the others (emma, fenrir, fable,
kore) are found in hibari's cache if someone downloaded them. Nothing is ever downloaded here.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from services.renderer.speech import LazyLocalVoice, Speech
from services.renderer.word_timing import TimedPhoneme, align_words, script_words, snap_to_sound

if TYPE_CHECKING:
    import onnxruntime

SEED: Final = 0
# hibari starts each sentence with ~0.4 s of silence; keep a short lead-in, like piper's.
MAX_LEAD_S: Final = 0.1
PEAK: Final = 10 ** (-1 / 20)  # -1 dBFS: hibari's level varies; piper normalises its peaks too
_DURATIONS_TENSOR: Final = "/Clip_output_0"
# Its sound runs 25-50 ms ahead of its durations: the phoneme timeline (what the lips follow) is moved that much
# earlier. (Word timings are snapped to the sound instead.)
SOUND_LEAD_S: Final = 0.03


def installed_voices() -> list[str]:
    """hibari's voice names whose model file is on this machine (no download)."""
    try:
        from hibari.voices import VOICES, voice_path
    except ImportError:
        return []
    names: list[str] = []
    for name in VOICES:
        try:
            voice_path(name, download_missing=False)
        except (FileNotFoundError, ValueError):
            continue
        names.append(name)
    return names


def describe(name: str) -> str:
    from hibari.voices import VOICES

    info: dict[str, Any] = VOICES[name]
    return f"{name.capitalize()}, {info['accent']} English {info['gender']} (hibari, from Kokoro {info['kokoro']})"


class _Model:
    def __init__(self, name: str) -> None:
        import onnx
        import onnxruntime as ort
        from hibari import Hibari
        from hibari.voices import voice_path

        path = voice_path(name, download_missing=False)
        self.tts = Hibari(voice=name, model=path, threads=1)
        self.vocab: dict[str, int] = self.tts.vocab
        model = onnx.load(path)
        self.has_durations = any(_DURATIONS_TENSOR in node.output for node in model.graph.node)
        if self.has_durations:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(_DURATIONS_TENSOR))
            options = ort.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self.session: onnxruntime.InferenceSession = ort.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
        else:
            self.session = self.tts.sess
        # hibari does not say its phonemizer is thread-safe (onnxruntime sessions are): one sentence at a time.
        self.g2p_lock = threading.Lock()

    def speak(self, phonemes: str, rng: np.random.Generator) -> tuple[npt.NDArray[np.float32], list[str], Any]:
        """One sentence: the float samples, the phonemes the model read, and its durations (None if unknown)."""
        from hibari import dsp

        kept = [c for c in phonemes if c in self.vocab]
        ids = [0, *(self.vocab[c] for c in kept), 0]
        outputs = self.session.run(None, {"ids": np.asarray([ids], np.int64), "speed": np.asarray([1.0], np.float32)})
        lh, th, ln, lr, phi, f0 = (o[0] for o in outputs[:6])
        audio: npt.NDArray[np.float32] = dsp.synth(lh, th, ln, lr, phi, f0, rng)
        durations = np.asarray(outputs[6], dtype=np.float64).reshape(-1) if len(outputs) > 6 else None
        return audio, ["^", *kept, "$"], durations


class HibariLocalVoice(LazyLocalVoice[_Model]):
    def __init__(self, voice_id: str, name: str, *, description: str, licence: str) -> None:
        super().__init__(voice_id, description=description, licence=licence)
        self._name = name

    def _load_model(self) -> _Model:
        """About 0.8 s and 8 MB."""
        return _Model(self._name)

    def synthesize(self, text: str) -> Speech:
        model = self._load()
        words = script_words(text)
        with model.g2p_lock:
            sentences = model.tts.phonemize(text)
            expected = [list(model.tts.g2p(word)) for word in words]
        rng = np.random.default_rng(SEED)
        parts: list[npt.NDArray[np.float32]] = []
        spoken: list[TimedPhoneme] = []
        offset = 0
        rate = int(model.tts.sample_rate)
        for phonemes in sentences:
            if not any(c in model.vocab for c in phonemes):
                continue  # nothing the model can say (hibari itself returns no audio for it)
            audio, symbols, durations = model.speak(phonemes, rng)
            times = _phoneme_times(symbols, durations, len(audio))
            lead = max(0, times[0][2] - round(MAX_LEAD_S * rate))  # the leading pad's silence, but a short lead-in
            audio = audio[lead:]
            for symbol, start, end in times[1:]:
                spoken.append(TimedPhoneme(symbol, (offset + start - lead) / rate, (offset + end - lead) / rate))
            parts.append(audio)
            offset += len(audio)
        floats = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        peak = float(np.max(np.abs(floats))) if floats.size else 0.0
        scale = PEAK / peak if peak > 1e-6 else 0.0
        samples = np.clip(np.round(floats * scale * 32767), -32767, 32767).astype(np.int16)
        timings = snap_to_sound(align_words(words, expected, spoken), samples, rate)
        return Speech(samples, rate, timings, phonemes=_led(spoken))


def _led(spoken: list[TimedPhoneme]) -> tuple[TimedPhoneme, ...]:
    """The timeline moved SOUND_LEAD_S earlier, onto the sound (never before the first sample)."""
    return tuple(
        TimedPhoneme(p.phoneme, max(0.0, p.start - SOUND_LEAD_S), max(0.0, p.end - SOUND_LEAD_S)) for p in spoken
    )


def _phoneme_times(symbols: list[str], durations: Any, length: int) -> list[tuple[str, int, int]]:
    """(symbol, first sample, end sample) for each symbol, the leading pad first."""
    if durations is None or len(durations) != len(symbols) or float(np.sum(durations)) <= 0:
        weights = np.ones(len(symbols))
    else:
        weights = np.asarray(durations, dtype=np.float64)
    # The model's frames fill the audio exactly (600 samples per duration unit); scaling also covers the estimate.
    edges = np.round(np.concatenate(([0.0], np.cumsum(weights))) * length / float(np.sum(weights))).astype(int)
    return [(s, int(edges[i]), int(edges[i + 1])) for i, s in enumerate(symbols)]
