"""Location, contact, poll, mediaurl, reactions, edits, deletes and downloads over HTTP on the launched
stack with the sim driver: the receiving session's webhook gets each one as WhatsApp would send it."""

from __future__ import annotations

import base64
import io
from http.server import BaseHTTPRequestHandler

import pytest
import segno

from tests.conftest import wait_for
from tests.http_server import LocalHTTPServer
from tests.integration.test_session_lifecycle import _data
from tests.integration.test_sim_messaging import _login

pytestmark = pytest.mark.integration

VCARD = "BEGIN:VCARD\nVERSION:3.0\nFN:Carol Example\nTEL;type=CELL:+15550009999\nEND:VCARD"


def _png() -> bytes:
    buffer = io.BytesIO()
    segno.make_qr("media by url").save(buffer, kind="png", scale=3)
    return buffer.getvalue()


class FileServer:
    """Serves one PNG on 127.0.0.1 for /send/mediaurl (the stack's local stage allows loopback)."""

    def __init__(self, payload: bytes):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/pic.png")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = LocalHTTPServer(Handler).start()
        self.base = f"http://127.0.0.1:{self.server.port}"


def _messages(receiver, token: str, field: str) -> list[dict]:
    return [m for m in receiver.of(token, "Message") if field in m["event"]["Message"]]


def test_message_kinds_and_operations_reach_the_other_session(stack, receiver):
    _login(stack, receiver, "hana", "15550004001", ["All"])
    _login(stack, receiver, "ivan", "15550004002", ["Message"])

    sent = _data(stack.call("POST", "/send/location", "hana", {"Phone": "15550004002", "Latitude": 48.8584,
                                                                "Longitude": 2.2945, "Name": "Eiffel Tower"}))
    (loc,) = wait_for(lambda: _messages(receiver, "ivan", "locationMessage"), what="the location")
    assert loc["event"]["Message"]["locationMessage"] == {"degreesLatitude": 48.8584, "degreesLongitude": 2.2945,
                                                          "name": "Eiffel Tower"}
    assert loc["event"]["Info"]["ID"] == sent["Id"]

    _data(stack.call("POST", "/send/contact", "hana", {"Phone": "15550004002", "Name": "Carol", "Vcard": VCARD}))
    (card,) = wait_for(lambda: _messages(receiver, "ivan", "contactMessage"), what="the contact")
    assert card["event"]["Message"]["contactMessage"] == {"displayName": "Carol", "vcard": VCARD}

    _data(stack.call("POST", "/send/poll", "hana", {"Phone": "15550004002", "Question": "Lunch?",
                                                     "Options": ["Pizza", "Sushi"], "MaxAnswer": 1}))
    (poll,) = wait_for(lambda: _messages(receiver, "ivan", "pollCreationMessage"), what="the poll")
    assert poll["event"]["Message"]["pollCreationMessage"]["options"] == [{"optionName": "Pizza"},
                                                                         {"optionName": "Sushi"}]

    # ivan reacts to the location; hana edits and deletes her text
    _data(stack.call("POST", "/message/react", "ivan", {"Phone": "15550004001", "Body": "👍", "Id": sent["Id"]}))
    reactions = wait_for(lambda: [m for m in receiver.of("hana", "Message")
                                  if "reactionMessage" in m["event"]["Message"]], what="the reaction")
    assert reactions[0]["event"]["Message"]["reactionMessage"]["key"]["ID"] == sent["Id"]
    assert reactions[0]["event"]["Message"]["reactionMessage"]["text"] == "👍"
    text = _data(stack.call("POST", "/send/text", "hana", {"Phone": "15550004002", "Body": "typo"}))
    _data(stack.call("POST", "/message/edit", "hana", {"Chat": "15550004002", "MessageID": text["Id"],
                                                        "Message": "fixed"}))
    deleted = _data(stack.call("POST", "/message/delete", "hana", {"Chat": "15550004002", "MessageID": text["Id"]}))
    assert deleted["Details"] == "Deleted"
    protocol = wait_for(lambda: (p := _messages(receiver, "ivan", "protocolMessage")) and len(p) == 2 and p,
                        what="the edit and the revoke")
    edit, revoke = (m["event"]["Message"]["protocolMessage"] for m in protocol)
    assert (edit["type"], edit["key"]["ID"], edit["editedMessage"]) == (14, text["Id"], {"conversation": "fixed"})
    assert (revoke["type"], revoke["key"]["ID"], revoke["key"]["fromMe"]) == (0, text["Id"], True)

    # a reply quoting the location, mentioning hana, marked forwarded
    _data(stack.call("POST", "/send/text", "ivan", {
        "Phone": "15550004001", "Body": "there @15550004001", "Forward": True,
        "ContextInfo": {"StanzaID": sent["Id"], "Participant": "15550004001@s.whatsapp.net",
                        "MentionedJID": ["15550004001@s.whatsapp.net"]}}))
    (reply,) = wait_for(lambda: [m for m in receiver.of("hana", "Message")
                                 if "extendedTextMessage" in m["event"]["Message"]], what="the reply")
    context = reply["event"]["Message"]["extendedTextMessage"]["contextInfo"]
    assert (context["stanzaID"], context["mentionedJID"], context["isForwarded"]) == (
        sent["Id"], ["15550004001@s.whatsapp.net"], True)
    assert _data(stack.call("POST", "/send/text", "ivan", {"Phone": "15550004001", "Body": "x",
                                                            "ContextInfo": {"StanzaID": sent["Id"]}}), 400) \
        == "Invalid ContextInfo in Payload: StanzaID and Participant go together"

    # mediaurl: the host downloads it, then ivan downloads what he received
    png = _png()
    files = FileServer(png)
    _data(stack.call("POST", "/send/mediaurl", "hana", {"Phone": "15550004002", "Url": f"{files.base}/pic.png",
                                                         "Caption": "by url"}))
    (image,) = wait_for(lambda: _messages(receiver, "ivan", "imageMessage"), what="the image from a URL")
    media = image["event"]["Message"]["imageMessage"]
    assert (media["caption"], media["mimetype"], media["fileLength"]) == ("by url", "image/png", len(png))
    got = _data(stack.call("POST", "/message/download/image", "ivan", {
        "URL": media["URL"], "directPath": media["directPath"], "mediaKey": media["mediaKey"],
        "mimetype": media["mimetype"], "fileSHA256": media["fileSHA256"], "fileLength": media["fileLength"]}))
    assert got["Mimetype"] == "image/png" and got["Size"] == len(png)
    assert base64.b64decode(got["Data"].split(",", 1)[1]) == png and got["Url"].startswith("http")

    # bad input, each with WaGo's envelope
    assert _data(stack.call("POST", "/send/poll", "hana", {"Phone": "15550004002", "Question": "?",
                                                            "Options": ["only one"]}), 400).startswith(
        "Invalid Options in Payload")
    assert _data(stack.call("POST", "/send/contact", "hana", {"Phone": "15550004002", "Name": "x", "Vcard": "hi"}),
                 400).startswith("Invalid Vcard in Payload")
    assert _data(stack.call("POST", "/send/location", "hana", {"Phone": "15550004002", "Latitude": 91,
                                                                "Longitude": 0}), 400).startswith(
        "Invalid Latitude in Payload")
    assert _data(stack.call("POST", "/send/mediaurl", "hana", {"Phone": "15550004002",
                                                                "Url": f"{files.base}/redirect"}), 502) \
        == "Failed to download media: the server answered 302"
    assert _data(stack.call("POST", "/send/mediaurl", "hana", {"Phone": "15550004002",
                                                                "Url": "http://169.254.169.254/latest/meta-data"}),
                 400) == ("Invalid Url in Payload: 169.254.169.254 is a cloud metadata address; the gateway may not "
                          "fetch it")
    assert _data(stack.call("POST", "/message/download/image", "ivan", {"directPath": "/v/t62/elsewhere"}), 404) \
        == "media not found"  # the same answer as another session's media: nothing to probe
    assert _data(stack.call("POST", "/message/edit", "hana", {"Chat": "15550004002", "Message": "x"}), 400) \
        == "Missing MessageID in Payload"
    files.server.close()


def test_async_sends_answer_202_and_report_through_status_and_webhooks(stack, receiver):
    _login(stack, receiver, "jade", "15550005001", ["All"])
    _login(stack, receiver, "kim", "15550005002", ["Message"])
    queued = stack.api.post("/send/text?async=true", headers={"token": "jade"},
                            json={"Phone": "15550005002", "Body": "later"})
    assert queued.status_code == 202, queued.text
    answer = queued.json()
    assert answer["code"] == 202 and answer["success"] is True and answer["data"]["Details"] == "Queued"
    message_id = answer["data"]["Id"]
    wait_for(lambda: [m for m in receiver.of("kim", "Message") if m["event"]["Info"]["ID"] == message_id],
             what="the queued message to arrive")
    wait_for(lambda: _data(stack.call("POST", "/message/status", "jade", {"Id": message_id}))["Status"]
             == "delivered", what="its status to follow")
    sent = wait_for(lambda: [e for e in receiver.of("jade", "MessageStatus") if e["event"]["Id"] == message_id],
                    what="the MessageStatus webhook")
    assert sent[0]["event"]["Status"] == "sent"

    # A send that fails on the host: 202 first, then `failed` with WhatsApp's reason.
    failing = stack.api.post("/send/text", params={"async": "1"}, headers={"token": "jade"},
                             json={"Phone": "15550005999", "Body": "nobody", "Id": "3EB0ASYNCFAIL"})
    assert failing.status_code == 202 and failing.json()["data"]["Id"] == "3EB0ASYNCFAIL"
    status = wait_for(lambda: (s := _data(stack.call("POST", "/message/status", "jade", {"Id": "3EB0ASYNCFAIL"})))
                      ["Status"] == "failed" and s, what="the failure")
    assert status["Error"] == "15550005999 is not on WhatsApp"
    failed = wait_for(lambda: [e for e in receiver.of("jade", "MessageStatus") if e["event"]["Status"] == "failed"],
                      what="the failure webhook")
    assert failed[0]["event"]["Id"] == "3EB0ASYNCFAIL"


def test_presigned_upload_then_send_by_media_key(stack, receiver):
    import httpx

    _login(stack, receiver, "lia", "15550006001", ["All"])
    _login(stack, receiver, "max", "15550006002", ["Message"])
    png = _png()
    upload = _data(stack.call("POST", "/media/upload", "lia", {}))
    assert upload["MediaKey"].startswith("media/up/") and upload["MaxBytes"] == 16 << 20
    stored = httpx.post(upload["Url"], data=upload["Fields"], files={"file": ("pic.png", png, "image/png")},
                        timeout=10)
    assert stored.status_code in (200, 204), stored.text
    sent = _data(stack.call("POST", "/send/image", "lia", {"Phone": "15550006002", "MediaKey": upload["MediaKey"],
                                                            "Caption": "uploaded"}))
    (image,) = wait_for(lambda: [m for m in receiver.of("max", "Message") if m["event"]["Info"]["ID"] == sent["Id"]],
                        what="the uploaded image")
    assert image["event"]["Message"]["imageMessage"]["fileLength"] == len(png)
    file_name, content_type, data = wait_for(lambda: receiver.files.get(sent["Id"]), what="its file part")
    # The send carries a copy typed as checked (a presigned POST stores S3's binary/octet-stream).
    assert (data, content_type, file_name.endswith(".png")) == (png, "image/png", True)
    media = image["event"]["Message"]["imageMessage"]
    assert not media["directPath"].startswith("media/up/")  # the copy, not the upload key

    # The form can be posted again until it expires: what was checked and sent must not change with it.
    junk = b"\0" * 4096
    again = httpx.post(upload["Url"], data=upload["Fields"], files={"file": ("x.bin", junk, "image/png")}, timeout=10)
    assert again.status_code in (200, 204), again.text
    got = _data(stack.call("POST", "/message/download/image", "max", {
        "URL": media["URL"], "directPath": media["directPath"], "mediaKey": media["mediaKey"],
        "mimetype": media["mimetype"], "fileSHA256": media["fileSHA256"], "fileLength": media["fileLength"]}))
    assert base64.b64decode(got["Data"].split(",", 1)[1]) == png
    # ...and a new send of the rewritten upload is checked again.
    assert _data(stack.call("POST", "/send/image", "lia", {"Phone": "15550006002", "MediaKey": upload["MediaKey"]}),
                 400).startswith("Invalid Image in Payload")
    # One of the two, not both: a data URL beside a MediaKey is a client mistake, not silently ignored.
    assert _data(stack.call("POST", "/send/image", "lia", {"Phone": "15550006002", "MediaKey": upload["MediaKey"],
                                                            "Image": "data:image/png;base64,AAAA"}), 400) \
        == "Give either Image or MediaKey, not both"

    assert _data(stack.call("POST", "/send/image", "max", {"Phone": "15550006001", "MediaKey": upload["MediaKey"]}),
                 403) == "MediaKey does not belong to this session"
    missing = upload["MediaKey"].rsplit("/", 1)[0] + "/nothing-here"
    assert _data(stack.call("POST", "/send/image", "lia", {"Phone": "15550006002", "MediaKey": missing}), 404) \
        == "MediaKey not found: upload the file first"
    restored = httpx.post(upload["Url"], data=upload["Fields"], files={"file": ("pic.png", png, "image/png")},
                          timeout=10)
    assert restored.status_code in (200, 204), restored.text
    assert _data(stack.call("POST", "/send/audio", "lia", {"Phone": "15550006002", "MediaKey": upload["MediaKey"]}),
                 400) == "Invalid Audio in Payload: the data is image/png, not audio/"
    assert _data(stack.call("POST", "/send/image", "lia", {"Phone": "15550006002"}), 400) == "Missing Image in Payload"


def test_link_previews_and_group_invites(stack, receiver):
    _login(stack, receiver, "nia", "15550008001", ["All"])
    _login(stack, receiver, "oto", "15550008002", ["Message"])
    jpeg = base64.b64encode(bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")).decode()
    _data(stack.call("POST", "/send/preview", "nia", {"Phone": "15550008002", "Body": "see https://example.org/a",
                                                       "Title": "Example", "Description": "An example",
                                                       "Thumbnail": f"data:image/jpeg;base64,{jpeg}"}))
    _data(stack.call("POST", "/send/preview2", "nia", {"Phone": "15550008002", "Body": "offer", "Title": "Shop",
                                                        "SourceUrl": "https://example.org/shop"}))
    _data(stack.call("POST", "/send/groupinvite", "nia", {"Phone": "15550008002", "GroupJID": "120363000000@g.us",
                                                           "Code": "AbCdEf123", "GroupName": "Team"}))
    got = wait_for(lambda: (m := receiver.of("oto", "Message")) and len(m) == 3 and m, what="three messages")
    preview, ad, invite = (m["event"]["Message"] for m in got)
    assert preview["extendedTextMessage"]["matchedText"] == "https://example.org/a"
    assert (preview["extendedTextMessage"]["title"],
            preview["extendedTextMessage"]["JPEGThumbnail"]) == ("Example", jpeg)
    assert ad["extendedTextMessage"]["contextInfo"]["externalAdReply"]["sourceURL"] == "https://example.org/shop"
    assert (invite["groupInviteMessage"]["inviteCode"],
            invite["groupInviteMessage"]["groupName"]) == ("AbCdEf123", "Team")
    assert _data(stack.call("POST", "/send/preview", "nia", {"Phone": "15550008002", "Body": "no link"}), 400) \
        == "Missing Url in Payload: no link in Body either"
    assert _data(stack.call("POST", "/send/groupinvite", "nia", {"Phone": "15550008002",
                                                                  "GroupJID": "123@s.whatsapp.net",
                                                                  "Code": "x", "GroupName": "y"}), 400) \
        == "Invalid GroupJID in Payload: must end with @g.us"
