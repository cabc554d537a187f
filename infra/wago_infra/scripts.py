"""Code the stack ships as text: the session host's container health check and the host monitor.

Kept apart from stack.py (which needs aws-cdk-lib and node) so tests can run both on moto.
"""

HEALTH_CHECK = (
    "import socket,sys,time;"
    "from chalicelib.core.models import HostModel;"
    "from chalicelib.core.settings import get_settings;"
    "p=socket.gethostname()[:24]+'-';"
    "lease=get_settings().host_lease_seconds;"
    "ok=any(float(h.heartbeat_at or 0)>=time.time()-lease "
    "for h in HostModel.scan(HostModel.host_id.startswith(p),consistent_read=True));"
    "sys.exit(0 if ok else 1)"
)

# Runs every minute: one consistent scan of the (small) hosts table, metrics as EMF log lines.
HOST_MONITOR_CODE = '''
import json, os, time
import boto3

TABLE = boto3.resource("dynamodb").Table(os.environ["HOSTS_TABLE"])
LEASE = float(os.environ.get("HOST_LEASE_SECONDS", "15"))  # chalicelib.core.settings.host_lease_seconds


def handler(event, context):
    now = time.time()
    items, kwargs = [], {"ConsistentRead": True}
    while True:
        page = TABLE.scan(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    ages = [now - float(h.get("heartbeat_at", 0)) for h in items]
    live = [h for h, age in zip(items, ages) if age <= LEASE and h.get("status", "up") == "up"]
    load = sum(float(h.get("load", 0)) for h in live)
    capacity = sum(float(h.get("capacity", 0)) for h in live)
    values = {
        "LiveHosts": len(live),
        "RegisteredHosts": len(items),
        "StaleHosts": sum(1 for age in ages if age > LEASE),
        "Sessions": load,
        "SessionsPerHost": load / len(live) if live else 0.0,
        "HostUtilization": 100.0 * load / capacity if capacity else 0.0,
        "MaxHeartbeatAgeSeconds": max(ages) if ages else 0.0,
    }
    units = {"MaxHeartbeatAgeSeconds": "Seconds", "HostUtilization": "Percent"}
    print(json.dumps(dict(values, Stage=os.environ["STAGE"], _aws={
        "Timestamp": int(now * 1000),
        "CloudWatchMetrics": [{
            "Namespace": os.environ["METRICS_NAMESPACE"],
            "Dimensions": [["Stage"]],
            "Metrics": [{"Name": k, "Unit": units.get(k, "Count")} for k in values],
        }],
    })))
    return values
'''
