"""DynamoDB tables (pynamodb). Table names come from settings, so one code base serves every stage."""

from chalicelib.models.hosts import HostModel
from chalicelib.models.sessions import CounterModel, SessionModel, SessionNameModel

ALL_MODELS = (SessionModel, SessionNameModel, CounterModel, HostModel)

__all__ = ["ALL_MODELS", "CounterModel", "HostModel", "SessionModel", "SessionNameModel"]
