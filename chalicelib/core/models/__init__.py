"""DynamoDB tables (pynamodb). Table names come from settings, so one code base serves every stage."""

from pynamodb.models import Model

from chalicelib.core.models.calls import CallModel
from chalicelib.core.models.deliveries import DeliveryModel
from chalicelib.core.models.hosts import HostModel
from chalicelib.core.models.messages import MessageModel
from chalicelib.core.models.replies import ReplyModel
from chalicelib.core.models.sessions import CounterModel, SessionModel, SessionNameModel
from chalicelib.core.models.sim import (
    SimAccountModel,
    SimDeviceModel,
    SimInboxModel,
    SimMediaGrantModel,
    SimMessageModel,
    SimPresenceWatchModel,
)

# The Sim* models share one table; provisioning creates it once.
ALL_MODELS: tuple[type[Model], ...] = (
    SessionModel, SessionNameModel, CounterModel, HostModel, ReplyModel, MessageModel, DeliveryModel,
    SimAccountModel, SimDeviceModel, SimMessageModel, SimInboxModel, SimPresenceWatchModel,
    SimMediaGrantModel, CallModel,
)

__all__ = [
    "ALL_MODELS", "CallModel", "CounterModel", "DeliveryModel", "HostModel", "MessageModel", "ReplyModel",
    "SessionModel", "SessionNameModel", "SimAccountModel", "SimDeviceModel", "SimInboxModel", "SimMediaGrantModel",
    "SimMessageModel",
    "SimPresenceWatchModel",
]

from chalicelib.core.models.sim_groups import SimGroupModel  # noqa: E402 - sim groups (session_host/sim/groups.py)

ALL_MODELS += (SimGroupModel,)
__all__ += ["SimGroupModel"]
