from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from chalicelib.core.models.base import table_meta
from chalicelib.core.settings import get_settings

_settings = get_settings()


def _now() -> datetime:
    return datetime.now(UTC)


#: `owner_host` of a session a draining host released for another host to restore (auto_connect kept):
#: an owner no host is, so released sessions sit in one partition of the owner index.
RELEASED = "released"


class OwnerIndex(GlobalSecondaryIndex["SessionModel"]):  # type: ignore[no-untyped-call]
    """Sessions by owner_host (sparse: unowned sessions are not in it), with auto_connect and epoch projected.

    Hosts find orphans through it: the sessions of each dead host, those released to RELEASED, and
    their own (to take back after a fence), so a heartbeat's cost depends on the number of hosts, not
    on the sessions other hosts hold."""

    class Meta:
        index_name = "by-owner"
        projection = IncludeProjection(["auto_connect", "epoch"])

    owner_host = UnicodeAttribute(hash_key=True)


class SessionModel(Model):
    """One WaGo token: its configuration and the live state hosts write for Lambda reads."""

    Meta = table_meta(_settings.sessions_table_name)
    by_owner = OwnerIndex()

    token = UnicodeAttribute(hash_key=True)
    id = NumberAttribute()
    name = UnicodeAttribute()
    os_name = UnicodeAttribute(default="")
    webhook = UnicodeAttribute(default="")
    # pynamodb types ListAttribute(of=UnicodeAttribute)'s elements as the attribute class; they are str.
    events: ListAttribute[str] = ListAttribute(of=UnicodeAttribute, default=list)  # type: ignore[arg-type]
    jid = UnicodeAttribute(null=True)
    connected = BooleanAttribute(default=False)
    logged_in = BooleanAttribute(default=False)
    created_at = UTCDateTimeAttribute(default=_now)
    updated_at = UTCDateTimeAttribute(default=_now)

    # Live state, written by the owning session host (see docs/session-host.md); read by the API.
    owner_host = UnicodeAttribute(null=True)  # host_id holding the client, or RELEASED; conditional writes place it
    # Fencing token: raised by every placement (API) and adoption (host); every host-side effect is
    # conditional on `owner_host` and this value (session_host/fencing.py).
    epoch = NumberAttribute(null=True)
    auto_connect = BooleanAttribute(default=False)  # intent: a host should hold this session (restore)
    push_name = UnicodeAttribute(null=True)
    qr_code = UnicodeAttribute(null=True)  # data:image/png;base64,...
    qr_expires_at = NumberAttribute(null=True)  # epoch seconds
    pair_code = UnicodeAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    event_seq = NumberAttribute(default=0)  # last per-session event sequence number handed out
    webhook_secret = UnicodeAttribute(null=True)  # HMAC key of webhook signatures; never returned in full


class SessionNameModel(Model):
    """Claims a session Name, so two sessions can never share one (written in one transaction)."""

    Meta = table_meta(_settings.session_names_table_name)

    name = UnicodeAttribute(hash_key=True)
    token = UnicodeAttribute()


class CounterModel(Model):
    """Atomic counters (WaGo's numeric session ids)."""

    Meta = table_meta(_settings.counters_table_name)

    name = UnicodeAttribute(hash_key=True)
    value = NumberAttribute(default=0)

    @classmethod
    def next_value(cls, name: str) -> int:
        """Atomically add one and return the new value (gaps are possible, reuse is not)."""
        counter = cls(name)
        counter.update(actions=[cls.value.add(1)])
        return int(counter.value)
