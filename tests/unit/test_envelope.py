import json

import pytest

from platformkit import envelope
from platformkit.envelope import DecodeError, decode, encode, new_event, register_upcaster


def test_round_trip_keeps_every_attribute_and_diacritics():
    ev = new_event("membership", "membership.member.admitted.v1", "m-1", {"full_name": "Trần Văn Đức"}, 3)
    back = decode(encode(ev))
    assert back == ev
    raw = json.loads(encode(ev))
    assert raw["specversion"] == "1.0" and raw["aggregateversion"] == 3
    assert "Trần Văn Đức" in encode(ev).decode("utf-8")  # kept as entered, not \u-escaped


@pytest.mark.parametrize("raw, why", [
    (b"\xff\xfe", "not UTF-8"),
    (b"{not json", "not UTF-8 JSON"),
    (b"[]", "must be a JSON object"),
    (b'{"specversion":"1.0"}', "invalid envelope"),
    (None, "empty"),
])
def test_undecodable_bytes_raise_decode_error(raw, why):
    with pytest.raises(DecodeError, match=why):
        decode(raw)


def test_type_must_be_versioned():
    with pytest.raises(ValueError):
        new_event("x", "membership.member.admitted", "s", {}, 1)
    ev = new_event("x", "membership.member.admitted.v1", "s", {}, 1).to_dict()
    ev["type"] = "membership.member.admitted"
    with pytest.raises(DecodeError, match="type"):
        envelope.from_dict(ev)


def test_aggregate_version_must_be_an_integer():
    ev = new_event("x", "a.b.c.v1", "s", {}, 1).to_dict()
    ev["aggregateversion"] = "1"
    with pytest.raises(DecodeError, match="aggregateversion"):
        envelope.from_dict(ev)


def test_old_versions_are_upcast_to_the_newest(monkeypatch):
    monkeypatch.setattr(envelope, "UPCASTERS", {})

    @register_upcaster("test.thing.made", 1)
    def v1_to_v2(data):
        data["name"] = data.pop("ten")
        return data

    @register_upcaster("test.thing.made", 2)
    def v2_to_v3(data):
        data.setdefault("sector", "unknown")
        return data

    old = new_event("x", "test.thing.made.v1", "s", {"ten": "Hà"}, 1)
    new = decode(encode(old))
    assert new.type == "test.thing.made.v3"
    assert new.data == {"name": "Hà", "sector": "unknown"}
    assert new.id == old.id
