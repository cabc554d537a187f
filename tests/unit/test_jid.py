"""One address parser (chalicelib/core/jid.py) for every field that names a chat or a user, on the API
and in both drivers: its rules, WaGo's error texts, and a walk over every route's request model that
finds each such field and checks it is parsed by it."""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from chalicelib.core import jid

DEVICE_JID = "15550002222:12@s.whatsapp.net"


@pytest.mark.parametrize(("given", "chat"), [
    ("15550002222", "15550002222@s.whatsapp.net"),
    ("+1 555-000 2222", "15550002222@s.whatsapp.net"),
    ("+1 (555) 000.2222", "15550002222@s.whatsapp.net"),
    (DEVICE_JID, "15550002222@s.whatsapp.net"),  # whatsmeow refuses device JIDs as recipients
    ("15550002222.0:3@s.whatsapp.net", "15550002222@s.whatsapp.net"),
    (" 15550002222@s.whatsapp.net ", "15550002222@s.whatsapp.net"),
    ("123456789012345:4@lid", "123456789012345@lid"),
    ("120363012345678901@g.us", "120363012345678901@g.us"),
    ("15550001111-1600000000@g.us", "15550001111-1600000000@g.us"),
    ("120363151889@newsletter", "120363151889@newsletter"),
    ("status@broadcast", "status@broadcast"),
])
def test_chats_are_normalised_without_a_device_part(given, chat):
    assert jid.chat(given) == chat


@pytest.mark.parametrize(("given", "message"), [
    ("12", "Could not parse Phone"),
    ("", "Could not parse Phone"),
    ("0155500022220", "Could not parse Phone"),  # no country code starts with 0
    ("1555000222233334", "Could not parse Phone"),  # E.164: at most 15 digits
    ("１５５５０００２２２２", "Could not parse Phone"),  # non-ASCII digits
    ("abc@", "Could not parse Phone"),
    ("@s.whatsapp.net", "Could not parse Phone"),
    ("1555:x@s.whatsapp.net", "Could not parse Phone"),
    ("15550002222:\u00b2@s.whatsapp.net", "Could not parse Phone"),  # a superscript digit: isdigit() but no int()
    ("15550002222:\u0663@s.whatsapp.net", "Could not parse Phone"),  # an Arabic-Indic digit
    ("15550002222:65536@s.whatsapp.net", "Could not parse Phone"),  # the device is whatsmeow's uint16
    ("15550002222:99999999999999999999999@s.whatsapp.net", "Could not parse Phone"),
    ("15550002222.256:1@s.whatsapp.net", "Could not parse Phone"),  # the agent is a uint8
    ("15550002222.\u00b9@s.whatsapp.net", "Could not parse Phone"),
    ("a b@s.whatsapp.net", "Could not parse Phone"),
    ("123@example.com", "Invalid Phone in Payload: 123@example.com is not a chat JID"),
    ("abc@g.us", "Could not parse Phone"),
])
def test_bad_chats_get_wagos_texts(given, message):
    with pytest.raises(jid.JidError) as bad:
        jid.chat(given)
    assert (bad.value.status, bad.value.message) == (400, message)


def test_users_phones_and_groups():
    assert jid.user(DEVICE_JID) == jid.user("+1 555 000 2222") == "15550002222@s.whatsapp.net"
    assert jid.phone(DEVICE_JID) == jid.phone("+15550002222") == "15550002222"
    assert jid.group(" 120363012345678901@g.us") == "120363012345678901@g.us"
    for bad, text in (("120363012345678901@g.us", "Invalid To in Payload: 120363012345678901@g.us is not a user JID"),
                      ("12", "Could not parse To")):
        with pytest.raises(jid.JidError) as error:
            jid.user(bad, "To")
        assert error.value.message == text
    for bad in ("120363012345678901", "15550002222@s.whatsapp.net", "1203x@g.us", "-1@g.us"):
        with pytest.raises(jid.JidError) as error:
            jid.group(bad)
        assert error.value.message == "Could not parse Group JID"
    with pytest.raises(jid.JidError) as not_a_phone:
        jid.phone("120363012345678901@g.us", "From")
    assert not_a_phone.value.message == "Invalid From in Payload: 120363012345678901@g.us is not a user JID"
    parsed = jid.parse("15550002222.1:12@s.whatsapp.net")
    assert parsed == jid.Jid("15550002222", 1, 12, "s.whatsapp.net")
    assert str(parsed) == "15550002222.1:12@s.whatsapp.net" and str(parsed.non_ad()) == "15550002222@s.whatsapp.net"


# -- every route field that names a chat or a user ------------------------------------------------------

#: WaGo's (and this API's) names of fields that name a chat or a user.
ADDRESS_FIELDS = {"Phone", "Chat", "Participant", "Participants", "Sender", "GroupJID", "To", "From", "MentionedJID"}
#: Batch fields: each item is parsed on the host, with the same parser, so one bad item can be answered
#: on its own (issue 14: per-item results) instead of sinking the batch at the API.
BATCH = {("/user/check", "Phone"), ("/user/info", "Phone"), ("/group/create", "Participants"),
         ("/group/participants", "Phone")}
#: Parsed on the host with the same parser: /call/make answers its `Video` check first.
HOST_CHECKED = {("/call/make", "Phone")}
#: Accepted and ignored, as WaGo does (connect's `Phone`; the sim read's `Chat`: the ids say whose).
UNUSED = {("/session/connect", "Phone"), ("/sim/read", "Chat")}
#: /send/groupinvite keeps its own text for a non-group JID (`Invalid GroupJID in Payload: must end with
#: @g.us`), then the same parser checks the group id.
OWN_TEXT = {("/send/groupinvite", "GroupJID")}


def _parsers(metadata) -> list:
    return [getattr(getattr(m, "func", None), "__address_parser__", None) for m in metadata
            if getattr(getattr(m, "func", None), "__address_parser__", None)]


def _fields(model: type[BaseModel], path: str = ""):
    """(path and alias, the address parsers applied to it or to its items, its type) for every field, nested too."""
    for name, info in model.model_fields.items():
        alias = info.alias or name
        annotation = info.annotation
        parsers = _parsers(info.metadata)
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) is list and args and typing.get_origin(args[0]) is typing.Annotated:
            parsers += _parsers(args[0].__metadata__)
        adapter = TypeAdapter(typing.Annotated[annotation, *info.metadata] if info.metadata else annotation)
        yield f"{path}{alias}", alias, parsers, adapter
        for candidate in [annotation, *args]:
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                yield from _fields(candidate, f"{path}{alias}.")


def _specs():
    import app
    from chalicelib.routes import sim

    return [spec for router in [*app.ROUTERS, sim.router] for spec in router.specs if spec.body is not None]


def test_every_request_field_that_names_a_chat_or_a_user_goes_through_the_one_parser():
    checked, unchecked, excepted = [], [], set()
    for spec in _specs():
        for dotted, alias, parsers, adapter in _fields(spec.body):
            if alias not in ADDRESS_FIELDS:
                continue
            if (spec.path, alias) in OWN_TEXT | BATCH | UNUSED | HOST_CHECKED:
                excepted.add((spec.path, alias))
                continue
            if not parsers:
                unchecked.append(f"{spec.path} {dotted}")
                continue
            checked.append(f"{spec.path} {dotted}")
            many = "MentionedJID" in dotted
            with pytest.raises(ValidationError) as bad:
                adapter.validate_python(["12"] if many else "12")
            assert bad.value.errors()[0]["type"] == "unparseable_address"
            good = "+1 555-000 2222" if jid.user not in parsers else DEVICE_JID
            if jid.group not in parsers:
                adapter.validate_python([good] if many else good)  # accepted, as given; drivers normalise it
    assert unchecked == []
    assert excepted == OWN_TEXT | BATCH | UNUSED | HOST_CHECKED  # no stale exception
    assert len(checked) >= 15, checked  # send, message, user, group, call, session and sim fields


@pytest.mark.parametrize(("path", "body", "error"), [
    ("/send/text", {"Phone": "12", "Body": "x"}, "Could not parse Phone"),
    ("/send/text", {"Phone": "15550002222", "Body": "x", "ContextInfo": {"StanzaID": "A", "Participant": "x@"}},
     "Could not parse Participant"),
    ("/send/text", {"Phone": "15550002222", "Body": "x", "ContextInfo": {"MentionedJID": ["15550002222", "1"]}},
     "Could not parse MentionedJID"),
    ("/message/markread", {"Id": ["A"], "Chat": "1@"}, "Could not parse Chat"),
    ("/message/markread", {"Id": ["A"], "Chat": "15550002222", "Sender": "120363012345678901@g.us"},
     "Invalid Sender in Payload: 120363012345678901@g.us is not a user JID"),
    ("/message/react", {"Phone": "x", "Id": "A", "Body": "👍"}, "Could not parse Phone"),
    ("/message/edit", {"Chat": "123@example.com", "MessageID": "A", "Message": "b"},
     "Invalid Chat in Payload: 123@example.com is not a chat JID"),
    ("/group/info", {"GroupJID": "15550002222@s.whatsapp.net"}, "Could not parse Group JID"),
    ("/session/pair", {"Phone": "+0 12"}, "Could not parse Phone"),
])
def test_bad_addresses_are_wagos_400_before_anything_is_queued(client, path, body, error):
    import json

    client.init("J", "jtoken")
    response = client.post(path, body, headers={"token": "jtoken"})
    assert (response.status_code, json.loads(response.body)["error"]) == (400, error)


def test_a_device_jid_is_a_valid_recipient_at_the_api(client):
    import json

    client.init("K", "ktoken")
    response = client.post("/send/text", {"Phone": DEVICE_JID, "Body": "x"}, headers={"token": "ktoken"})
    assert (response.status_code, json.loads(response.body)["error"]) == (500, "No session")  # validated, then sent on
