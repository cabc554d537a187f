"""DynamoDB tables (pynamodb). Table names come from settings, so one code base serves every stage."""

from chalicelib.models.calls import CallModel
from chalicelib.models.deliveries import DeliveryModel
from chalicelib.models.hosts import HostModel
from chalicelib.models.messages import MessageModel
from chalicelib.models.replies import ReplyModel
from chalicelib.models.sessions import CounterModel, SessionModel, SessionNameModel
from chalicelib.models.sim import (
    SimAccountModel,
    SimDeviceModel,
    SimInboxModel,
    SimMessageModel,
    SimPresenceWatchModel,
)

# The Sim* models share one table; provisioning creates it once.
ALL_MODELS = (
    SessionModel, SessionNameModel, CounterModel, HostModel, ReplyModel, MessageModel, DeliveryModel,
    SimAccountModel, SimDeviceModel, SimMessageModel, SimInboxModel, SimPresenceWatchModel,
    CallModel,
)

__all__ = [
    "ALL_MODELS", "CallModel", "CounterModel", "DeliveryModel", "HostModel", "MessageModel", "ReplyModel",
    "SessionModel", "SessionNameModel", "SimAccountModel", "SimDeviceModel", "SimInboxModel", "SimMessageModel",
    "SimPresenceWatchModel",
]

from chalicelib.models.sim_groups import SimGroupModel  # noqa: E402 - sim groups (chalicelib/sim_groups.py)

ALL_MODELS += (SimGroupModel,)
__all__ += ["SimGroupModel"]
