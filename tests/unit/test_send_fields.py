"""WaGo's common send fields (`Id`, `ContextInfo`, `Forward`) are one model every /send/* route takes
(issue 14, item 4): each route puts them on the message it sends, or refuses them with the same 400.

The routes are found from the app (every POST under /send/), so a new send route is covered as soon
as it exists; the bus is replaced by a recorder (what the session host would be asked to send).
"""

from __future__ import annotations

import base64
import io

import pytest
import segno

from chalicelib.core import ops

TOKEN = "fields-token"
CONTEXT = {"StanzaID": "3EB0QUOTED", "Participant": "15550001111@s.whatsapp.net",
           "QuotedMessage": {"conversation": "the original"}, "MentionedJID": ["15550002222@s.whatsapp.net"]}
EXPECTED = {"stanzaID": "3EB0QUOTED", "participant": "15550001111@s.whatsapp.net",
            "quotedMessage": {"conversation": "the original"}, "mentionedJID": ["15550002222@s.whatsapp.net"],
            "isForwarded": True, "forwardingScore": 1}


def _png() -> bytes:
    buffer = io.BytesIO()
    segno.make_qr("wago").save(buffer, kind="png")
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


PNG = _png()
BODIES = {
    "/send/text": {"Body": "hi"},
    "/send/image": {"Image": "data:image/png;base64," + _b64(PNG), "Caption": "c"},
    "/send/audio": {"Audio": "data:audio/ogg;base64," + _b64(b"OggS\x00\x02" + b"\x00" * 60)},
    "/send/video": {"Video": "data:video/mp4;base64," + _b64(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 60)},
    "/send/document": {"Document": "data:application/octet-stream;base64," + _b64(b"%PDF-1.4 x"),
                       "FileName": "a.pdf"},
    "/send/sticker": {"Sticker": "data:image/png;base64," + _b64(PNG)},
    "/send/mediaurl": {"Url": "https://example.com/a.png"},
    "/send/location": {"Latitude": 1.5, "Longitude": 2.5},
    "/send/contact": {"Name": "Ann", "Vcard": "BEGIN:VCARD\nVERSION:3.0\nFN:Ann\nEND:VCARD"},
    "/send/poll": {"Question": "q", "Options": ["a", "b"]},
    "/send/preview": {"Body": "see https://example.com/x", "Title": "t"},
    "/send/preview2": {"Body": "b", "Title": "t", "SourceUrl": "https://example.com/"},
    "/send/groupinvite": {"GroupJID": "120363000000000001@g.us", "Code": "abc", "GroupName": "g"},
}


def _send_routes() -> list[str]:
    from app import ROUTES

    return sorted(spec.path for spec in ROUTES if spec.method == "POST" and spec.path.startswith("/send/"))


@pytest.fixture
def sent(client, monkeypatch):
    from chalicelib.routes import send

    recorded: list[tuple[str, ops.Args]] = []

    class Bus:
        def command(self, session, operation, args):
            recorded.append((operation.name, args))
            return {"Id": args.id or "3EB0NEW", "Timestamp": "2026-01-01T00:00:00Z"}

    monkeypatch.setattr(send, "get_bus", lambda: Bus())
    client.init("fields", TOKEN)
    return recorded


def test_every_send_route_has_a_body_here():
    assert _send_routes() == sorted(BODIES)


def test_every_send_route_puts_context_info_and_forward_on_the_message(client, sent):
    for path in _send_routes():
        response = client.post(path, {"Phone": "15550002222", **BODIES[path], "ContextInfo": CONTEXT,
                                      "Forward": True, "Id": f"ID{len(sent)}"}, headers={"token": TOKEN})
        assert response.status_code == 200, (path, response.json_body)
        name, args = sent[-1]
        assert args.id == f"ID{len(sent) - 1}", path  # Id: the same on every route
        if name in ("send_media", "send_mediaurl"):
            assert args.context_info == EXPECTED, path
            continue
        assert name == "send_content", (path, name)
        [(kind, message)] = args.content.items()
        context = message["contextInfo"]
        assert {k: context[k] for k in EXPECTED} == EXPECTED, (path, kind)
        if path == "/send/preview2":
            assert "externalAdReply" in context  # merged, not replaced


def test_without_them_nothing_is_added(client, sent):
    for path in _send_routes():
        response = client.post(path, {"Phone": "15550002222", **BODIES[path]}, headers={"token": TOKEN})
        assert response.status_code == 200, (path, response.json_body)
        name, args = sent[-1]
        if name in ("send_media", "send_mediaurl"):
            assert args.context_info is None, path
        elif name == "send_content":
            [(kind, message)] = args.content.items()
            assert set(message.get("contextInfo", {})) <= {"externalAdReply"}, path
        else:
            assert name == "send_text" and path == "/send/text"


@pytest.mark.parametrize("context,why", [
    ({"StanzaID": "3EB0X"}, "StanzaID and Participant go together"),
    ({"Participant": "15550001111@s.whatsapp.net"}, "StanzaID and Participant go together"),
    ({"QuotedMessage": {"conversation": "x"}}, "QuotedMessage needs the StanzaID and Participant of the message "
                                                "it quotes"),
    ({"MentionedJID": "15550002222@s.whatsapp.net"}, None),
])
def test_a_half_filled_context_info_is_the_same_400_on_every_route(client, sent, context, why):
    for path in _send_routes():
        response = client.post(path, {"Phone": "15550002222", **BODIES[path], "ContextInfo": context},
                               headers={"token": TOKEN})
        assert response.status_code == 400, (path, response.json_body)
        error = response.json_body["error"]
        if why:
            assert error == f"Invalid ContextInfo in Payload: {why}", (path, error)
        else:
            assert error == "Could not decode Payload: ContextInfo.MentionedJID must be a list", (path, error)
    assert sent == []  # nothing was sent


@pytest.mark.parametrize("context,field", [
    ({"StanzaID": "A" * 129, "Participant": "15550001111@s.whatsapp.net"}, "ContextInfo.StanzaID"),
    ({"MentionedJID": ["15550002222@s.whatsapp.net"] * 1025}, "ContextInfo.MentionedJID"),
    ({"StanzaID": "3EB0X", "Participant": "15550001111@s.whatsapp.net",
      "QuotedMessage": {"conversation": "x" * (128 * 1024)}}, "ContextInfo.QuotedMessage"),
])
def test_context_info_is_bounded_before_anything_is_sent(client, sent, context, field):
    """A reply's id, its mentions and its quoted copy have WhatsApp's sizes: beyond them the message was
    answered Sent and then failed to be stored (DynamoDB's 400 KB item) in the background."""
    for path in _send_routes():
        response = client.post(path, {"Phone": "15550002222", **BODIES[path], "ContextInfo": context},
                               headers={"token": TOKEN})
        assert response.status_code == 400, (path, response.json_body)
        assert field in response.json_body["error"], (path, response.json_body)
    assert sent == []  # nothing was sent


def test_the_sim_network_delivers_a_media_messages_context_info(aws):
    """The recipient's imageMessage carries the contextInfo (the field report: it had none)."""
    import boto3

    from chalicelib.core import message_content
    from chalicelib.core.media import MediaStore
    from chalicelib.core.models import SessionModel
    from chalicelib.core.settings import get_settings
    from session_host.sim.network import SimNetwork

    published: list[tuple] = []
    network = SimNetwork(lambda token, type, event, extra=None, media_key=None: published.append((token, type, event)))
    for phone in ("15550001111", "15550002222"):
        network.link_device(f"t{phone}", network.account(phone, create=True), f"{phone}:1@s.whatsapp.net")
        SessionModel(f"t{phone}", id=int(phone[-1]), name=phone, connected=True, logged_in=True,
                     owner_host="h1").save()
    stored = MediaStore().put_outbound("t15550001111", PNG, "image/png")
    assert boto3.client("s3", region_name="us-east-1").head_object(Bucket=get_settings().media_bucket_name,
                                                                   Key=stored.key)
    context = message_content.context_info("3EB0QUOTED", "15550002222@s.whatsapp.net", {"conversation": "hi"},
                                           forwarded=True)
    network.send_media("15550001111", "15550002222", "image", stored.key, "image/png", len(PNG), stored.sha256,
                       caption="look", sender_token="t15550001111", context_info=context)
    [event] = [e for token, type, e in published if token == "t15550002222" and type == "Message"]
    assert event["Message"]["imageMessage"]["contextInfo"] == context
