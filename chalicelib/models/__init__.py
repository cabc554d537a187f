"""DynamoDB tables (pynamodb). Table names come from settings, so one code base serves every stage."""

from chalicelib.models.deliveries import DeliveryModel
from chalicelib.models.hosts import HostModel
from chalicelib.models.replies import ReplyModel
from chalicelib.models.sessions import CounterModel, SessionModel, SessionNameModel
from chalicelib.models.sim import SimAccountModel, SimDeviceModel

# SimAccountModel and SimDeviceModel share one table; provisioning creates it once.
ALL_MODELS = (SessionModel, SessionNameModel, CounterModel, HostModel, ReplyModel, SimAccountModel, SimDeviceModel)
ALL_MODELS += (DeliveryModel,)

__all__ = [
    "ALL_MODELS", "CounterModel", "DeliveryModel", "HostModel", "ReplyModel", "SessionModel", "SessionNameModel",
    "SimAccountModel", "SimDeviceModel",
]
