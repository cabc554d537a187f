"""The launcher's start-up line (local_gateway/startup.py `report`): what came back, what failed and why."""

from __future__ import annotations


def test_the_start_up_line_names_what_came_back_and_what_failed_with_its_reason(aws):
    from chalicelib.core.models import SessionModel
    from local_gateway.startup import Expected, report

    SessionModel("tok-alice", id=1, name="alice", auto_connect=True, connected=True, logged_in=True).save()
    SessionModel("tok-bob", id=2, name="bob", auto_connect=True, connected=False,
                 last_error="device store unreadable: no such table").save()
    SessionModel("tok-carol", id=3, name="carol", auto_connect=True).save()  # still connecting
    expected = [Expected("tok-alice", "alice"), Expected("tok-bob", "bob"), Expected("tok-carol", "carol"),
                Expected("tok-dave", "dave")]  # deleted meanwhile
    line = report(expected, timeout=0.3, interval=0.05)
    assert line == ("sessions at start (connectstartup): 4 to restore; 1 back: alice (LoggedIn); "
                    "2 failed: bob (device store unreadable: no such table), dave (session deleted); "
                    "1 still connecting after 0 s: carol")
    assert "tok-" not in line  # names, never tokens
