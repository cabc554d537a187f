"""Both drivers hand WhatsApp the recipient that chalicelib/core/jid.py makes of WaGo's `Phone`: a user
without its device part (whatsmeow refuses device JIDs as recipients), whatever form it came in."""

from __future__ import annotations

import pytest

from tests.host.test_neonize_driver import FakeGo, _session_with_handlers, worker  # noqa: F401 - fixture

FORMS = ["15551234567:12@s.whatsapp.net", "+1 555-123 4567", "15551234567.0:3@s.whatsapp.net", "15551234567"]


def test_neonize_sends_to_the_account_never_to_a_device(worker):  # noqa: F811
    from session_host.drivers.neonize_jid import parse_jid, recipient_jid

    session = _session_with_handlers(worker, "tok-recipient")
    session.state.logged_in = True
    fake = FakeGo()
    session.client._NewClient__client = fake
    for to in FORMS:
        worker.send_text("tok-recipient", to, "hi")
        worker.send_content("tok-recipient", to, {"conversation": "hi"})
    assert {(j.User, j.RawAgent, j.Device, j.Server) for j, _ in fake.sent} == {("15551234567", 0, 0, "s.whatsapp.net")}
    assert len(fake.sent) == 2 * len(FORMS)
    for to in FORMS:  # the other recipients (read receipts, chat presence, presence, calls) use the same one
        jid = recipient_jid(to)
        assert (jid.User, jid.Device, jid.Server) == ("15551234567", 0, "s.whatsapp.net")
    own = parse_jid("15551234567:12@s.whatsapp.net")  # this client's own device keeps its number
    assert (own.User, own.Device) == ("15551234567", 12)


def test_the_sim_delivers_to_the_account_whatever_the_form(aws):
    from session_host.sim.network import SimNetwork

    published: list[tuple[str, str, dict]] = []
    network = SimNetwork(lambda token, type, event, extra, media_key=None: published.append((token, type, event)))
    network.account("15550001111", create=True)
    network.account("15551234567", create=True)
    sent = [network.send_text("15550001111", to, "hi")["To"] for to in FORMS]
    assert set(sent) == {"15551234567@s.whatsapp.net"}
    with pytest.raises(Exception) as bad:
        network.send_text("15550001111", "12", "hi")
    assert getattr(bad.value, "message", "") == "Could not parse Phone"
