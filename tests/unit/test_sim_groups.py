"""Sim groups against in-process DynamoDB (moto): concurrent changes all land (versioned writes), and
group events reach online members at once and offline members through their inbox."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

OWNER, MEMBERS = "15550007000", [f"155500070{i:02d}" for i in range(1, 9)]


@pytest.fixture
def groups(aws):
    from chalicelib.core.models import SessionModel
    from session_host.sim.groups import SimGroups
    from session_host.sim.network import SimNetwork

    published: list[tuple[str, str, dict]] = []
    network = SimNetwork(lambda token, type, event, extra, media_key=None: published.append((token, type, event)))
    for phone in [OWNER, *MEMBERS]:
        network.link_device(f"t{phone}", network.account(phone, create=True), f"{phone}:1@s.whatsapp.net")
        online = phone != MEMBERS[-1]  # the last member's session is offline
        SessionModel(f"t{phone}", id=int(phone[-2:]) + 1, name=phone, connected=online, logged_in=online,
                     owner_host="h1" if online else None).save()
    running = SimGroups(network)
    running.published = published
    return running


def test_concurrent_adds_all_land_and_events_reach_online_and_offline_members(groups):
    from chalicelib.core.models import SimInboxModel

    group = groups.create(OWNER, f"t{OWNER}", "Team", [MEMBERS[0]])["JID"]
    with ThreadPoolExecutor(max_workers=7) as pool:
        results = list(pool.map(lambda phone: groups.update_participants(OWNER, f"t{OWNER}", group, [phone], "add"),
                                MEMBERS[1:]))
    assert all(result[0]["Error"] == 0 for result in results)
    info = groups.get(OWNER, group)
    assert {p["JID"].split("@")[0] for p in info["Participants"]} == {OWNER, *MEMBERS}
    assert info["ParticipantVersionID"] == str(1 + len(MEMBERS) - 1)

    joined = {token for token, type, event in groups.published if type == "JoinedGroup" and event["JID"] == group}
    assert joined == {f"t{m}" for m in [OWNER, *MEMBERS[:-1]]}  # the creator (type new) and everyone online
    inbox = SimInboxModel.get(SimInboxModel.key(f"t{MEMBERS[-1]}"))
    queued = [json.loads(item) for item in inbox.items]
    assert [(type, event["Reason"]) for type, event, _, _ in queued
            if type == "JoinedGroup"] == [("JoinedGroup", "add")]
    # the first member saw each later member join, exactly once each
    seen = [event["Join"][0] for token, type, event in groups.published
            if token == f"t{MEMBERS[0]}" and type == "GroupInfo" and event["Join"]]
    assert sorted(seen) == sorted(f"{m}@s.whatsapp.net" for m in MEMBERS[1:])
