#!/usr/bin/env python3
"""CDK app: one stack per stage (`cdk synth -c stage=dev`, `cdk deploy -c stage=prod`).

Context keys (all optional; `-c key=value` or cdk.json): stage (dev|prod, default dev),
whatsappDriver (neonize|sim), hostCapacity, hostMin, hostMax, hostCpu, hostMemory, hostImage
(a registry image instead of building session_host/Dockerfile), fanoutMaxConcurrency,
fanoutBatchWindow, fanoutBatchSize (records per fan-out invocation, 1..50, default 25),
mediaExpiryDays, logLevel, alarmEmail, dbInstanceType, sessionHosts (false: no VPC, database or ECS
service, e.g. for LocalStack's free edition), apiThrottleRate and apiThrottleBurst (the API stage's
default method throttling, requests/s and burst).
Account/region: CDK_DEFAULT_ACCOUNT/CDK_DEFAULT_REGION (set by the CLI from your credentials);
`make synth` runs without credentials and leaves the stack environment-agnostic.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# (named cdk_app.py, not app.py: `chalice package` imports the module named `app`, the API)
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aws_cdk as cdk  # noqa: E402
import cdk_nag  # noqa: E402

from wago_infra.stack import StageConfig, WagoStack  # noqa: E402


def config_from_context(app: cdk.App) -> StageConfig:
    def ctx(key: str, default=None, cast=str):
        value = app.node.try_get_context(key)
        return default if value in (None, "") else cast(value)

    return StageConfig(
        stage=ctx("stage", "dev"),
        whatsapp_driver=ctx("whatsappDriver", "neonize"),
        host_capacity=ctx("hostCapacity", 200, int),
        host_min=ctx("hostMin", 1, int),
        host_max=ctx("hostMax", 4, int),
        host_cpu=ctx("hostCpu", 1024, int),
        host_memory_mib=ctx("hostMemory", 2048, int),
        host_image=ctx("hostImage"),
        fanout_max_concurrency=ctx("fanoutMaxConcurrency", 5, int),
        fanout_batch_window_seconds=ctx("fanoutBatchWindow", 1, int),
        fanout_batch_size=ctx("fanoutBatchSize", 25, int),
        media_expiry_days=ctx("mediaExpiryDays", 30, int),
        log_level=ctx("logLevel", "INFO"),
        alarm_email=ctx("alarmEmail"),
        db_instance_type=ctx("dbInstanceType", "t4g.micro"),
        session_hosts=ctx("sessionHosts", True, lambda v: str(v).lower() not in ("false", "0", "no", "off")),
        api_throttle_rate=ctx("apiThrottleRate", 100.0, float),
        api_throttle_burst=ctx("apiThrottleBurst", 200, int),
    )


def main() -> None:
    app = cdk.App()
    config = config_from_context(app)
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account and region else None
    WagoStack(app, config.names.stack_name, config, env=env,
              description=f"WaGo-compatible WhatsApp gateway, stage {config.stage}")
    # cdk-nag's AwsSolutions rule pack: an unsuppressed error fails the synth (suppressions, each with
    # its reason, are next to what they accept in wago_infra/stack.py, `_acknowledge`).
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    app.synth()


if __name__ == "__main__":
    main()
