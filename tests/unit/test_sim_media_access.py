"""The sim network hands a media file only to its message's sender and recipient (as WhatsApp gives the
media key to a message's parties only), and keeps one message per sender, chat and id."""

from __future__ import annotations

import pytest

from chalicelib.core.errors import DomainError


def test_media_downloads_are_for_the_messages_parties_only(aws):
    from chalicelib.core.media import MediaStore
    from session_host.sim.network import SimNetwork

    published: list[tuple[str, str]] = []
    network = SimNetwork(lambda token, type, event, extra, media_key=None: published.append((token, type)))
    for phone in ("15550090001", "15550090002", "15550090003"):
        network.account(phone, create=True)
    network.link_device("tok-b", network.account("15550090002"), "15550090002:1@s.whatsapp.net")
    stored = MediaStore().put_outbound("tok-a", b"\x89PNG picture", "image/png")
    sent = network.send_media("15550090001", "15550090002", "image", stored.key, "image/png", 12, stored.sha256,
                              sender_token="tok-a", message_id="3EB0MEDIA1")
    assert network.download(stored.key, "15550090002") == b"\x89PNG picture"  # the recipient
    assert network.download(stored.key, "15550090001") == b"\x89PNG picture"  # the sender
    answers = set()
    for path, caller in ((stored.key, "15550090003"), ("media/out/nope/x", "15550090002"),
                         ("/etc/passwd", "15550090002")):
        with pytest.raises(DomainError) as caught:
            network.download(path, caller)
        answers.add((caller if path == stored.key else "", caught.value.status, caught.value.message))
    assert {(status, message) for _, status, message in answers} == {(404, "media not found")}

    # The same id again from the same sender to the same chat: one message, nothing delivered twice.
    again = network.send_media("15550090001", "15550090002", "image", stored.key, "image/png", 12, stored.sha256,
                               sender_token="tok-a", message_id="3EB0MEDIA1")
    assert again == sent
    from chalicelib.core.models import SimInboxModel

    inbox = SimInboxModel.get(SimInboxModel.key("tok-b"), consistent_read=True).items  # tok-b is offline
    assert len(inbox) == 1 and published == []
