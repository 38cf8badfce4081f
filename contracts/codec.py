"""JSON encoding of what crosses the bus and the store: one encoder, typed decoders."""

from __future__ import annotations

import msgspec

from contracts.commands import AnyCommand
from contracts.events import AnyEvent, RecordedEvent

_encoder = msgspec.json.Encoder()
_event_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)
_recorded_decoder = msgspec.json.Decoder(RecordedEvent)
_command_decoder: msgspec.json.Decoder[AnyCommand] = msgspec.json.Decoder(AnyCommand)


def encode(obj: object) -> bytes:
    return _encoder.encode(obj)


def decode_event(data: bytes) -> AnyEvent:
    return _event_decoder.decode(data)


def decode_recorded(data: bytes) -> RecordedEvent:
    return _recorded_decoder.decode(data)


def decode_command(data: bytes) -> AnyCommand:
    return _command_decoder.decode(data)
