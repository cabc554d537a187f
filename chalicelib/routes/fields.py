"""Field types shared by request models."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from chalicelib.auth import MAX_TOKEN_CHARS
from chalicelib.core import jid
from chalicelib.core.urls import MAX_URL_LENGTH, parse_http_url
from chalicelib.validation import UNPARSEABLE_ADDRESS


def _printable(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _token(value: str) -> str:
    value = "".join(value.split())
    if not value:
        raise ValueError("must not be blank")
    return value


def _http_url(value: str) -> str:
    """The URL in the one normal form (chalicelib/core/urls.py); its InvalidUrl is a ValueError -> 400."""
    return parse_http_url(value).url


def _optional_http_url(value: str) -> str:
    return _http_url(value) if value.strip() else ""


#: A non-empty, single-line text field (trimmed).
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256),
                 AfterValidator(_printable)]
#: A session token: every space removed, printable, non-empty.
Token = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TOKEN_CHARS), AfterValidator(_printable),
                  AfterValidator(_token)]
#: Every URL the gateway stores or fetches (webhook targets, /send/mediaurl, link previews): parsed once
#: here, stored in its normal form.
HttpUrl = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH),
                    AfterValidator(_http_url)]
#: The same, where the field is optional ("" = none).
OptionalHttpUrl = Annotated[str, StringConstraints(max_length=MAX_URL_LENGTH),
                            AfterValidator(_optional_http_url)]


def _address(parse: Callable[[str, str], str], optional: bool = False) -> AfterValidator:
    """Checked by the one address parser (chalicelib/core/jid.py) and kept as given: the route passes
    it on, and both drivers normalise it with the same parser (a user's device part dropped)."""

    def check(value: str) -> str:
        if optional and not value.strip():
            return ""
        try:
            parse(value, "Phone")
        except jid.JidError as exc:
            if exc.detail is None:
                raise PydanticCustomError(UNPARSEABLE_ADDRESS, "could not parse the address") from None
            raise ValueError(exc.detail) from None
        return value

    check.__address_parser__ = parse  # type: ignore[attr-defined]  # lets a test find every address field
    return AfterValidator(check)


#: A chat: a phone number, or a user, group, newsletter or broadcast JID.
ChatAddress = Annotated[Text, _address(jid.chat)]
#: A person: a phone number or a user JID (`@s.whatsapp.net`, `@lid`).
UserAddress = Annotated[Text, _address(jid.user)]
#: A phone number (or a user JID, whose digits are taken).
PhoneAddress = Annotated[Text, _address(jid.phone)]
#: A person, or "" (not given).
OptionalUserAddress = Annotated[str, StringConstraints(max_length=256), _address(jid.user, optional=True)]
#: A group: `120363...@g.us`.
GroupAddress = Annotated[Text, _address(jid.group)]
#: The address types: every request field that names a chat or a user has one (a test checks it).
ADDRESS_TYPES = (ChatAddress, UserAddress, PhoneAddress, GroupAddress, OptionalUserAddress)


#: One item of a batch (phones of /user/check, ids of /message/markread, ...): any text, checked item by
#: item, so one unusable item gets its own error instead of a 400 for the whole batch.
BatchItem = Annotated[str, StringConstraints(max_length=256)]
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class BatchError(BaseModel):
    """Addition: one batch item that was not used, and why."""

    model_config = ConfigDict(populate_by_name=True)
    query: str = Field(alias="Query")
    error: str = Field(alias="Error")


def split_batch(items: list[str], problem: Callable[[str], str | None]) -> tuple[list[str], list[BatchError]]:
    """(the usable items in order, a BatchError for each one `problem` finds fault with)."""
    good: list[str] = []
    errors: list[BatchError] = []
    for item in items:
        why = problem(item)
        if why is None:
            good.append(item)
        else:
            errors.append(BatchError(query=item, error=why))
    return good, errors


def message_id_problem(value: str) -> str | None:
    """WhatsApp message ids are 1..128 of A-Z a-z 0-9 . _ : - (what whatsmeow generates and accepts)."""
    if _MESSAGE_ID.match(value.strip()):
        return None
    return f"{value!r} is not a message id"
