"""Session (token) records: creation with unique Name and Token, listing, deletion, webhook settings."""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.core import aws
from chalicelib.core.errors import DomainError
from chalicelib.core.models import CounterModel, SessionModel, SessionNameModel
from chalicelib.core.models.base import cancelled_by_condition

SESSION_ID_COUNTER = "session-id"


def _transaction() -> TransactWrite:
    return TransactWrite(connection=aws.dynamodb_connection())


def create_session(name: str, token: str, os_name: str) -> SessionModel:
    """Create a session; a taken Name or Token is refused atomically, even under concurrency."""
    session = SessionModel(
        token,
        id=CounterModel.next_value(SESSION_ID_COUNTER),
        name=name,
        os_name=os_name,
    )
    claim = SessionNameModel(name, token=token)
    try:
        with _transaction() as tx:
            tx.save(session, condition=SessionModel.token.does_not_exist())
            tx.save(claim, condition=SessionNameModel.name.does_not_exist())
    except TransactWriteError as exc:
        if cancelled_by_condition(exc, 0):
            raise DomainError(409, "Token already exists") from None
        if cancelled_by_condition(exc, 1):
            raise DomainError(409, f"Name already exists: {name}") from None
        raise
    return session


def list_sessions(scanned_only: bool = False) -> list[SessionModel]:
    condition = SessionModel.jid.exists() if scanned_only else None
    rows = list(SessionModel.scan(filter_condition=condition, consistent_read=True))
    return sorted(rows, key=lambda row: int(row.id))


def delete_session(token: str) -> SessionModel:
    """Remove the session row and its Name claim together, or nothing at all."""
    try:
        session = SessionModel.get(token, consistent_read=True)
    except SessionModel.DoesNotExist:
        raise DomainError(404, "invalid token") from None
    try:
        with _transaction() as tx:
            tx.delete(session, condition=SessionModel.token.exists())
            tx.delete(SessionNameModel(session.name), condition=SessionNameModel.token == token)
    except TransactWriteError as exc:
        if cancelled_by_condition(exc, 0):
            raise DomainError(404, "invalid token") from None
        raise
    return session


def set_webhook(session: SessionModel, url: str) -> None:
    session.update(
        actions=[SessionModel.webhook.set(url), SessionModel.updated_at.set(datetime.now(UTC))],
        condition=SessionModel.token.exists(),
    )
