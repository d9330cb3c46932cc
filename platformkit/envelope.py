"""The event envelope every service publishes: CloudEvents 1.0 structured JSON.

`id` is created once when the event is raised and stored in the outbox, so it is stable across
relay retries; consumers use it (or the aggregate version) to stay idempotent.
`aggregateversion` is a CloudEvents extension attribute (extension names are lowercase alnum).
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from marshmallow import Schema, ValidationError, fields, validate

TYPE_PATTERN = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+\.v([1-9][0-9]*)$")


class DecodeError(ValueError):
    """The bytes are not an envelope this platform understands."""


@dataclass(frozen=True)
class Envelope:
    id: str
    source: str
    type: str
    subject: str
    time: str
    data: dict[str, Any]
    aggregateversion: int
    specversion: str = "1.0"
    datacontenttype: str = "application/json"

    @property
    def base_type(self) -> str:
        """`membership.member.admitted.v1` -> `membership.member.admitted`."""
        return _type_parts(self.type)[0]

    @property
    def type_version(self) -> int:
        return _type_parts(self.type)[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
            "subject": self.subject,
            "datacontenttype": self.datacontenttype,
            "aggregateversion": self.aggregateversion,
            "data": self.data,
        }


# A platform has a few dozen event types: what each type string says is worked out once per
# process (a rebuild decodes millions of envelopes; the parsing was a fifth of a decode).
_KNOWN_TYPES_MAX = 10_000
_type_parts_of: dict[str, tuple[str, int]] = {}
_valid_types: set[str] = set()


def _type_parts(type_: str) -> tuple[str, int]:
    parts = _type_parts_of.get(type_)
    if parts is None:
        parts = (type_.rsplit(".", 1)[0], int(type_.rsplit(".v", 1)[1]))
        if len(_type_parts_of) < _KNOWN_TYPES_MAX:
            _type_parts_of[type_] = parts
    return parts


def _valid_type(type_: str) -> bool:
    if type_ in _valid_types:
        return True
    if TYPE_PATTERN.match(type_) is None:
        return False
    if len(_valid_types) < _KNOWN_TYPES_MAX:
        _valid_types.add(type_)
    return True


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event(source: str, type_: str, subject: str, data: dict[str, Any], aggregate_version: int,
              time: str | None = None) -> Envelope:
    if not TYPE_PATTERN.match(type_):
        raise ValueError(f"event type {type_!r} must look like 'service.aggregate.happened.v1'")
    return Envelope(id=str(uuid.uuid4()), source=source, type=type_, subject=str(subject),
                    time=time or utc_now_iso(), data=data, aggregateversion=int(aggregate_version))


class EnvelopeSchema(Schema):
    specversion = fields.String(required=True, validate=validate.Equal("1.0"))
    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    source = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.Regexp(TYPE_PATTERN))
    time = fields.String(required=True)
    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    datacontenttype = fields.String(load_default="application/json")
    aggregateversion = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    data = fields.Dict(required=True)


_SCHEMA = EnvelopeSchema()

# Upcasters turn an old event version into the next one, so consumers only handle the newest.
# Key: (base type, version) -> function(data) -> data of version + 1.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def register_upcaster(base_type: str, from_version: int):
    def deco(fn: Upcaster) -> Upcaster:
        UPCASTERS[(base_type, from_version)] = fn
        return fn
    return deco


def upcast(env: Envelope) -> Envelope:
    base, version = _type_parts(env.type)
    if (base, version) not in UPCASTERS:  # the usual case: the newest version already
        return env
    data = env.data
    while (base, version) in UPCASTERS:
        data = UPCASTERS[(base, version)](dict(data))
        version += 1
    return Envelope(**{**env.to_dict(), "type": f"{base}.v{version}", "data": data})


def encode(env: Envelope) -> bytes:
    return json.dumps(env.to_dict(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_ENVELOPE_FIELDS = {"specversion", "id", "source", "type", "time", "subject", "datacontenttype",
                    "aggregateversion", "data"}


def _ordinary(raw: dict) -> bool:
    """The checks of EnvelopeSchema for an ordinary envelope, without marshmallow (two thirds of
    a decode's cost when replaying millions of events); anything unusual goes through the schema."""
    if not raw.keys() <= _ENVELOPE_FIELDS or len(raw) < 8:
        return False
    try:
        return (raw["specversion"] == "1.0" and type(raw["time"]) is str and type(raw["data"]) is dict
                and type(raw["aggregateversion"]) is int and raw["aggregateversion"] >= 0
                and type(raw.get("datacontenttype", "")) is str and type(raw["type"]) is str
                and _valid_type(raw["type"])
                and all(type(raw[f]) is str and 1 <= len(raw[f]) <= 200 for f in ("id", "source", "subject")))
    except KeyError:
        return False


def from_dict(raw: Any) -> Envelope:
    if not isinstance(raw, dict):
        raise DecodeError("envelope must be a JSON object")
    if _ordinary(raw):
        return upcast(Envelope(**raw))
    try:
        loaded = _SCHEMA.load(raw)
    except ValidationError as exc:
        raise DecodeError(f"invalid envelope: {exc.messages}") from exc
    return upcast(Envelope(**loaded))


def decode(value: bytes | None) -> Envelope:
    if value is None:
        raise DecodeError("empty message")
    try:
        raw = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"not UTF-8 JSON: {exc}") from exc
    return from_dict(raw)
