"""Users: `/user/check`, `/user/info`, `/user/avatar` (GET and POST), `/user/contacts`.

Bodies and answers follow wuzapi's (research/wago-api.md §2.5): `Phone` is a list of numbers (one
string is taken as a list of one); answers are whatsmeow's structs as Go's encoding/json writes them.
Each is a command to the session's host (chalicelib/bus.py): the logged-in client asks WhatsApp.
A GET also takes its fields from the query string (`?Phone=...&Preview=true`), a body wins.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError

from chalicelib.bus import get_bus
from chalicelib.core import ops
from chalicelib.core.errors import DomainError
from chalicelib.core.settings import get_settings
from chalicelib.routes.fields import BatchError, BatchItem, ChatAddress
from chalicelib.routing import Auth, Call, Router
from chalicelib.validation import DECODE_ERROR, M, WagoModel, decode_json, describe

router = Router(__name__, tag="Users")

MAX_PHONES = 100


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


#: Items are checked one by one on the host (an unparseable one gets its own error, the batch goes on).
PhoneList = Annotated[list[BatchItem], BeforeValidator(_as_list), Field(min_length=1, max_length=MAX_PHONES)]
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def query_body(call: Call, model: type[M], bools: tuple[str, ...] = ()) -> M:
    """A GET's fields: the JSON body if any, else the query string (keys in any case, like the body)."""
    data = decode_json(call.request.raw_body, get_settings().max_body_bytes)
    if not isinstance(data, dict):
        raise DomainError(400, f"{DECODE_ERROR}: expected a JSON object")
    present = {key.lower() for key in data if isinstance(key, str)}
    for key, value in (call.query or {}).items():
        if key.lower() in present:
            continue
        if key.lower() in bools:
            lowered = value.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise DomainError(400, f"{DECODE_ERROR}: {key} must be a boolean")
            data[key] = lowered in _TRUE
        else:
            data[key] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DomainError(400, describe(exc)) from None


class PhonesRequest(WagoModel):
    phone: PhoneList = Field(alias="Phone", description="Phone numbers with country code (or JIDs), up to 100.")


class AvatarRequest(WagoModel):
    phone: ChatAddress = Field(alias="Phone", description="A phone number, a user JID, or a group JID.")
    preview: bool = Field(False, alias="Preview", description="The small thumbnail instead of the full picture.")


class CheckedUser(WagoModel):
    query: str = Field(alias="Query")
    is_in_whatsapp: bool = Field(alias="IsInWhatsapp")
    jid: str = Field(alias="JID")
    verified_name: str = Field(alias="VerifiedName")
    error: str | None = Field(None, alias="Error", description="Addition: set when this entry could not be parsed "
                                                               "(the others are still checked).")


class CheckResponse(WagoModel):
    users: list[CheckedUser] = Field(alias="Users")


class InfoResponse(WagoModel):
    users: dict[str, Any] = Field(alias="Users", description="JID -> {VerifiedName, Status, PictureID, Devices, LID}.")
    errors: list[BatchError] | None = Field(None, alias="Errors",
                                            description="Addition: the entries that could not be parsed, and why.")


class AvatarResponse(WagoModel):
    url: str = Field(description="Where to download the picture (short-lived).")
    id: str = Field(description="The picture id.")
    type: str = Field(description="`image` or `preview`.")
    direct_path: str
    hash: Any = None


@router.route(
    "POST", "/user/check", auth=Auth.SESSION, sends=(ops.USER_CHECK,), body=PhonesRequest, response=CheckResponse,
    summary="Which numbers are on WhatsApp (several at once), with their JIDs.",
)
def check_users(call: Call) -> dict:
    return get_bus().command(call.session, ops.USER_CHECK, ops.Phones(phones=call.body.phone))


@router.route(
    "POST", "/user/info", auth=Auth.SESSION, sends=(ops.USER_INFO,), body=PhonesRequest, response=InfoResponse,
    summary="Status, picture id, devices and verified name per JID (accounts not on WhatsApp are left out).",
)
def user_info(call: Call) -> dict:
    return get_bus().command(call.session, ops.USER_INFO, ops.Phones(phones=call.body.phone))


def _avatar(call: Call, body: AvatarRequest) -> dict:
    return get_bus().command(call.session, ops.USER_AVATAR, ops.Avatar(phone=body.phone, preview=body.preview))


@router.route(
    "GET", "/user/avatar", auth=Auth.SESSION, sends=(ops.USER_AVATAR,), response=AvatarResponse,
    summary="A user's (or group's) profile picture: `Phone`, `Preview` in the body or query. `No avatar found` "
            "(404) when there is none.",
)
def user_avatar(call: Call) -> dict:
    return _avatar(call, query_body(call, AvatarRequest, bools=("preview",)))


@router.route(
    "POST", "/user/avatar", auth=Auth.SESSION, sends=(ops.USER_AVATAR,), body=AvatarRequest, response=AvatarResponse,
    summary="As GET /user/avatar (wuzapi's method).",
)
def user_avatar_post(call: Call) -> dict:
    return _avatar(call, call.body)


@router.route(
    "GET", "/user/contacts", auth=Auth.SESSION, sends=(ops.USER_CONTACTS,),
    summary="The session's contacts: JID -> {Found, FirstName, FullName, PushName, BusinessName}.",
)
def user_contacts(call: Call) -> dict:
    return get_bus().command(call.session, ops.USER_CONTACTS)
