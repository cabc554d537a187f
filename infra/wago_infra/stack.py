"""One stage of the gateway: API + fan-out (Chalice), state (DynamoDB, SQS, S3), session hosts (ECS).

Shape (see infra/README.md for deploy steps and the cost shape):

- Chalice construct: `chalice package` of the repository's app.py/chalicelib/requirements.txt,
  included as a SAM template. API Gateway (REST, regional) + the API Lambda; the fan-out Lambda on
  the events queue with partial batch failures, a batching window and bounded concurrency.
- DynamoDB tables (on demand, PITR, TTL where items expire), the events queue and its DLQ, the
  private media bucket. Physical names follow chalicelib/core/settings.py (`wago-<stage>-...`).
- Session hosts on ECS Fargate (public subnets, no NAT), each creating its own FIFO command queue
  `wago-<stage>-host-<id>.fifo` at start; the task role may manage only those queues.
- The WhatsApp device store: RDS PostgreSQL in isolated subnets, generated secret.
- Secrets Manager: the admin token, read by the API only (only its ARN in configuration). Webhook
  signing secrets are per session (`POST /webhook`, in the sessions table), so the stack has none.
- API Gateway stage defaults: throttling (context `apiThrottleRate`, `apiThrottleBurst`) and JSON
  access logs. cdk-nag's AwsSolutions pack runs on the app (cdk_app.py); each finding this stack
  accepts is acknowledged next to the resource, with its reason (`_acknowledge`).
- Observability: Powertools variables, a one-minute host monitor that turns the hosts table into
  CloudWatch metrics (sessions per host drives autoscaling; heartbeat age drives an alarm), and
  alarms on DLQ depth, fan-out errors, event backlog and host heartbeats, to one SNS topic.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import (
    aws_apigateway as apigateway,
    aws_cloudwatch as cloudwatch,
    aws_cloudwatch_actions as cw_actions,
    aws_dynamodb as dynamodb,
    aws_ec2 as ec2,
    aws_ecs as ecs,
    aws_events as events,
    aws_events_targets as targets,
    aws_iam as iam,
    aws_lambda as lambda_,
    aws_logs as logs,
    aws_rds as rds,
    aws_s3 as s3,
    aws_secretsmanager as secretsmanager,
    aws_sns as sns,
    aws_sns_subscriptions as subscriptions,
    aws_sqs as sqs,
)
from constructs import Construct, IConstruct

from wago_infra.naming import Names
from wago_infra.package import LAMBDA_RUNTIME, stage_app
from wago_infra.scripts import HEALTH_CHECK, HOST_MONITOR_CODE

REPO_ROOT = Path(__file__).resolve().parents[2]
METRICS_NAMESPACE = "WaGoGateway"  # chalicelib/core/observability.py uses this namespace
SERVICE_NAME = "wago-gateway"

# Chalice's logical ids in the packaged SAM template.
API_FUNCTION = "APIHandler"
REST_API = "RestAPI"
FANOUT_FUNCTION = "DeliverEvents"
FANOUT_EVENT_SOURCE = "DeliverEventsSqsEventSource"

WAGO_NOT_FOUND = '{"code":404,"error":"Not Found","success":false}'

# Characters left out of the generated database password, so it can sit in a postgres:// URL as is.
URL_UNSAFE = " %+~`#$&*()|[]{}:;<>?!'/@\"\\,=^"


@dataclass(frozen=True)
class StageConfig:
    """Knobs of one stage; every one has a CDK context key (see infra/app.py)."""

    stage: str
    whatsapp_driver: str = "neonize"
    host_capacity: int = 200
    host_min: int = 1
    host_max: int = 4
    host_cpu: int = 1024
    host_memory_mib: int = 2048
    host_image: str | None = None  # a registry image instead of building session_host/Dockerfile
    fanout_max_concurrency: int = 5
    fanout_batch_window_seconds: int = 1
    # Records per fan-out invocation (SQS event source BatchSize; over 10 needs the batching window).
    # Its two AWS calls (one BatchGetItem, one BatchWriteItem: chalicelib/webhooks/fanout.py) are per
    # batch, so a larger batch delivers more per second (bench/webhook_fanout.py: 0.42x a bare POST
    # loop at 10, 0.58x at 25); 25 is one BatchWriteItem, and its POSTs, 10 at a time, fit the
    # function's timeout even when every receiver times out (3 rounds x WEBHOOK_TIMEOUT_SECONDS).
    fanout_batch_size: int = 25
    events_max_receives: int = 8
    media_expiry_days: int = 30
    log_level: str = "INFO"
    alarm_email: str | None = None
    db_instance_type: str = "t4g.micro"
    # False: no VPC, database or ECS service (e.g. LocalStack community, or hosts run elsewhere and
    # point at this stage's tables and queues).
    session_hosts: bool = True
    # API Gateway stage default method throttling: steady requests per second and burst (token bucket).
    api_throttle_rate: float = 100.0
    api_throttle_burst: int = 200
    source_dir: Path = field(default=REPO_ROOT)

    def __post_init__(self) -> None:
        if not 1 <= self.fanout_batch_size <= FANOUT_MAX_BATCH:
            raise ValueError(f"fanoutBatchSize must be 1..{FANOUT_MAX_BATCH}, not {self.fanout_batch_size}")
        if self.fanout_batch_size > 10 and self.fanout_batch_window_seconds < 1:
            raise ValueError("a fanoutBatchSize over 10 needs a fanoutBatchWindow of at least 1 s (Lambda's rule)")

    @property
    def names(self) -> Names:
        return Names(self.stage)

    @property
    def is_prod(self) -> bool:
        return self.stage == "prod"


class WagoStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.names = config.names
        self.removal = cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY
        cdk.Tags.of(self).add("app", SERVICE_NAME)
        cdk.Tags.of(self).add("stage", config.stage)

        self.alarm_topic = self._alarm_topic()
        self.tables = self._tables()
        self.events_dlq, self.events_queue = self._event_queues()
        self.media_bucket = self._media_bucket()
        self.admin_token_secret = self._secrets()
        self.api_role, self.fanout_role = self._lambda_roles()
        self.chalice = self._chalice_app()
        self.host_service = None
        if config.session_hosts:
            self.vpc, self.database = self._network_and_database()
            self.cluster, self.host_service = self._session_hosts()
        self._host_monitor_and_scaling()
        self._alarms()
        self._outputs()

    # -- helpers -------------------------------------------------------------------------------------

    def _common_environment(self) -> dict[str, str]:
        env = self.names.environment()
        env.update({
            "WHATSAPP_DRIVER": self.config.whatsapp_driver,
            "HOST_CAPACITY": str(self.config.host_capacity),
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": self.config.log_level,
            "LOG_LEVEL": self.config.log_level,
        })
        return env

    def _arn(self, service: str, resource: str) -> str:
        return cdk.Stack.of(self).format_arn(service=service, resource=resource,
                                             arn_format=cdk.ArnFormat.NO_RESOURCE_NAME)

    # -- alarms topic --------------------------------------------------------------------------------

    def _alarm_topic(self) -> sns.Topic:
        topic = sns.Topic(self, "AlarmTopic", topic_name=self.names.name("alarms"),
                          display_name=f"{self.names.prefix} alarms", enforce_ssl=True)
        if self.config.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(self.config.alarm_email))
        return topic

    # -- DynamoDB ------------------------------------------------------------------------------------

    def _tables(self) -> dict[str, dynamodb.Table]:
        # Key schemas copy chalicelib/core/models (all strings): (hash key, range key, TTL attribute).
        specs = {
            "sessions": ("token", None, None),
            "session-names": ("name", None, None),
            "counters": ("name", None, None),
            "hosts": ("host_id", None, None),
            "replies": ("command_id", None, "expires_at"),
            "messages": ("token", "message_id", "expires_at"),  # sent messages: idempotency, status
            "deliveries": ("token", "sk", "expires_at"),  # the webhook delivery log
            "sim": ("pk", None, None),
            "calls": ("token", "call_id", "expires_at"),  # the call registry
        }
        if self.config.whatsapp_driver != "sim":
            del specs["sim"]  # the simulated network exists only where the sim driver runs
        tables = {}
        for suffix, (key, sort_key, ttl) in specs.items():
            logical = "".join(part.title() for part in suffix.split("-")) + "Table"
            tables[suffix] = dynamodb.Table(
                self, logical,
                table_name=self.names.name(suffix),
                partition_key=dynamodb.Attribute(name=key, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING) if sort_key else None,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True),
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                time_to_live_attribute=ttl,
                deletion_protection=self.config.is_prod,
                removal_policy=self.removal,
            )
        # Session hosts find orphans by owner (chalicelib/core/models/sessions.py OwnerIndex), never by
        # scanning every session on every heartbeat.
        tables["sessions"].add_global_secondary_index(
            index_name="by-owner",
            partition_key=dynamodb.Attribute(name="owner_host", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=["auto_connect", "epoch"],
        )
        return tables

    # -- SQS -----------------------------------------------------------------------------------------

    def _event_queues(self) -> tuple[sqs.Queue, sqs.Queue]:
        dlq = sqs.Queue(
            self, "EventsDlq",
            queue_name=self.names.name("events-dlq"),
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=self.removal,
        )
        queue = sqs.Queue(
            self, "EventsQueue",
            queue_name=self.names.name("events"),
            # AWS's advice for Lambda sources: at least six times the function timeout.
            visibility_timeout=cdk.Duration.seconds(6 * FANOUT_TIMEOUT_SECONDS),
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=self.config.events_max_receives),
            removal_policy=self.removal,
        )
        # Redrive back from the DLQ to the events queue only (SQS redrive, after a fix).
        dlq_cfn = dlq.node.default_child
        assert isinstance(dlq_cfn, sqs.CfnQueue), f"{dlq.node.path}: no AWS::SQS::Queue resource"
        # (the ARN is spelled from the fixed name: a reference would make the two queues a cycle).
        dlq_cfn.redrive_allow_policy = {"redrivePermission": "byQueue",
                                        "sourceQueueArns": [self._arn("sqs", self.names.name("events"))]}
        return dlq, queue

    # -- S3 ------------------------------------------------------------------------------------------

    def _media_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self, "MediaBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=False,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-media", enabled=True,
                                 expiration=cdk.Duration.days(self.config.media_expiry_days),
                                 abort_incomplete_multipart_upload_after=cdk.Duration.days(1)),
            ],
            removal_policy=self.removal,
        )
        _acknowledge(bucket, "AwsSolutions-S1",
                     "objects are written and read by this stack's roles and through presigned URLs the API issues "
                     "(each request is in the API's JSON log); objects expire after mediaExpiryDays; CloudTrail data "
                     "events can be enabled per account where an audit trail of object reads is required")
        return bucket

    # -- secrets -------------------------------------------------------------------------------------

    def _secrets(self) -> secretsmanager.Secret:
        # Plain-string secrets (chalicelib.core.settings reads the SecretString as the token itself).
        admin = secretsmanager.Secret(
            self, "AdminTokenSecret",
            secret_name=f"{self.names.prefix}/admin-token",
            description="WaGo admintoken of this stage (ADMIN_TOKEN_SECRET_ARN)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=40, exclude_punctuation=True, include_space=False),
            removal_policy=self.removal,
        )
        _acknowledge(admin, "AwsSolutions-SMG4",
                     "WaGo's admintoken is a static shared secret every admin client is configured with; "
                     "rotating it is an operator's decision (put-secret-value, then update the clients), "
                     "not a schedule; the API caches it 5 minutes")
        return admin

    # -- Lambda roles (least privilege, per function) ---------------------------------------------------

    def _lambda_roles(self) -> tuple[iam.Role, iam.Role]:
        basic = iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole")
        api = iam.Role(self, "ApiFunctionRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                       description="wago API Lambda", managed_policies=[basic])
        fanout = iam.Role(self, "FanoutFunctionRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                          description="wago webhook fan-out Lambda", managed_policies=[basic])
        for role in (api, fanout):
            _acknowledge(role, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                               "AWSLambdaBasicExecutionRole]",
                         "AWS's basic execution policy grants only CloudWatch Logs writes "
                         "(create group/stream, put events)")
        t = self.tables
        # Idempotency lives in the data: sends are keyed by (token, Id) on the messages table, webhook
        # deliveries by event on the delivery log (chalicelib/webhooks/fanout.py); no separate table.
        for name in ("sessions", "session-names", "counters"):
            t[name].grant_read_write_data(api)
        t["hosts"].grant_read_data(api)  # placement reads hosts; hosts write their own rows
        t["replies"].grant_read_data(api)  # the bus polls the reply a host writes
        t["messages"].grant_read_write_data(api)  # /send idempotency reads, /message/status, sim receipts
        t["deliveries"].grant_read_data(api)  # GET /webhook/deliveries
        self.events_queue.grant_send_messages(api)  # the sim's phone-side controls, DLQ redrive
        self.events_dlq.grant_consume_messages(api)  # POST /webhook/redrive
        t["calls"].grant_read_data(api)  # /call/status; hosts write the call registry
        if "sim" in t:
            t["sim"].grant_read_write_data(api)
        # Data-URL sends store, presigned uploads are checked (head + ranged get) and copied, downloads read.
        self._grant_media(api, "s3:GetObject", "s3:PutObject")
        self.admin_token_secret.grant_read(api)  # the API alone checks the admintoken
        # Commands go to the owning host's FIFO queue, found through its hosts row.
        api.add_to_policy(iam.PolicyStatement(
            sid="SendCommandsToSessionHosts",
            actions=["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
            resources=[self._arn("sqs", self.names.host_queue_pattern)],
        ))

        t["sessions"].grant_read_data(fanout)
        t["deliveries"].grant_read_write_data(fanout)
        self.events_dlq.grant_send_messages(fanout)  # non-retryable and exhausted events are moved there
        self._grant_media(fanout, "s3:GetObject")  # inbound media attached to webhooks
        self.events_queue.grant_consume_messages(fanout)
        for role in (api, fanout):
            self._acknowledge_session_index(role)
        _acknowledge(api, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:"
                          f"{self.names.host_queue_pattern}]",
                     "each session host creates its own FIFO command queue at start (named after the host id), "
                     "so the API can only name this stage's host-queue prefix")
        return api, fanout

    def _grant_media(self, role: iam.IRole, *actions: str) -> None:
        """Object-level S3 actions on the media bucket's objects only (no bucket-level or delete actions)."""
        role.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=list(actions), resources=[self.media_bucket.arn_for_objects("*")]))
        _acknowledge(role, f"AwsSolutions-IAM5[Resource::<{self._logical_id(self.media_bucket)}.Arn>/*]",
                     "media object keys are generated per message (<prefix><session>/<uuid>); the grant is limited "
                     "to this stage's media bucket and to the listed object actions")

    def _acknowledge_session_index(self, role: iam.IRole) -> None:
        """A CDK table grant covers the table's indexes as `<table arn>/index/*` (aws-cdk-lib Table.grant*)."""
        sessions = self._logical_id(self.tables["sessions"])
        _acknowledge(role, f"AwsSolutions-IAM5[Resource::<{sessions}.Arn>/index/*]",
                     "CDK's table grants reach a table's indexes as <table>/index/*; the sessions table has one "
                     "index (by-owner: owner_host -> auto_connect, epoch), and the grant is limited to this table")

    def _logical_id(self, construct: Construct) -> str:
        resource = construct.node.default_child
        assert isinstance(resource, cdk.CfnElement), f"{construct.node.path}: no CloudFormation resource"
        return self.resolve(resource.logical_id)

    # -- Chalice: API Gateway, API Lambda, fan-out Lambda ---------------------------------------------

    def _chalice_app(self):
        from chalice.cdk import Chalice

        env = self._common_environment()
        stage_config = {
            "api_gateway_stage": "api",
            "api_gateway_endpoint_type": "REGIONAL",
            "manage_iam_role": False,
            "iam_role_arn": self.api_role.role_arn,
            "autogen_policy": False,
            "environment_variables": env,
            "lambda_memory_size": 512,
            "lambda_timeout": API_TIMEOUT_SECONDS,
        }
        # Chalice would package for the Python running it (python3.11 here: AWS no longer creates such
        # functions) with that Python's wheels: it packages a staged copy instead, whose vendor/ holds
        # the dependencies pip installed for LAMBDA_RUNTIME (wago_infra/package.py), and every function's
        # Runtime is set below.
        source_dir = stage_app(self.config.source_dir)
        with _importing_app_for(env, self.region):
            app = Chalice(self, "ChaliceApp", source_dir=str(source_dir), stage_config=stage_config)

        for function, log_id in ((API_FUNCTION, "ApiLogs"), (FANOUT_FUNCTION, "FanoutLogs")):
            # Our own log group, with a retention (Lambda's implicit one keeps logs forever).
            log_group = logs.LogGroup(self, log_id, retention=logs.RetentionDays.ONE_MONTH,
                                      removal_policy=self.removal)
            # Secret ARNs and the generated bucket name are read at run time only (never by a decorator).
            app.add_environment_variable("MEDIA_BUCKET", self.media_bucket.bucket_name, function)
            app.get_resource(function).add_property_override("Runtime", LAMBDA_RUNTIME)
            app.get_resource(function).add_property_override(
                "LoggingConfig", {"LogFormat": "JSON", "ApplicationLogLevel": self.config.log_level,
                                  "SystemLogLevel": "WARN", "LogGroup": log_group.log_group_name})

        # Only the API reads the admin token (settings.validate_runnable: per process role).
        app.add_environment_variable("ADMIN_TOKEN_SECRET_ARN", self.admin_token_secret.secret_arn, API_FUNCTION)

        # Chalice's user-provided config outranks its per-function config, so the fan-out's own role,
        # timeout and memory are set on the packaged resource.
        fanout = app.get_resource(FANOUT_FUNCTION)
        fanout.add_property_override("Role", self.fanout_role.role_arn)
        fanout.add_property_override("Timeout", FANOUT_TIMEOUT_SECONDS)
        fanout.add_property_override("MemorySize", 256)
        source = f"Events.{FANOUT_EVENT_SOURCE}.Properties"
        fanout.add_property_override(f"{source}.FunctionResponseTypes", ["ReportBatchItemFailures"])
        fanout.add_property_override(f"{source}.BatchSize", self.config.fanout_batch_size)
        fanout.add_property_override(f"{source}.MaximumBatchingWindowInSeconds",
                                     self.config.fanout_batch_window_seconds)
        fanout.add_property_override(f"{source}.ScalingConfig",
                                     {"MaximumConcurrency": self.config.fanout_max_concurrency})

        # Gateway-generated errors in WaGo's envelope; part of the API definition, so every
        # deployment carries them. An unknown route is MISSING_AUTHENTICATION_TOKEN in API Gateway.
        def envelope(code: int, error: str) -> dict:
            body = json.dumps({"code": code, "error": error, "success": False}, separators=(",", ":"))
            return {"statusCode": str(code), "responseTemplates": {"application/json": body}}

        hint = _upload_hint()  # the app's own 413 advice (chalicelib/core/limits.py)
        self._api_stage_defaults(app.get_resource(REST_API))
        app.get_resource(REST_API).add_property_override(
            "DefinitionBody.x-amazon-apigateway-gateway-responses",
            {
                "MISSING_AUTHENTICATION_TOKEN": envelope(404, "Not Found"),
                # Over API Gateway's 10 MB: the request never reaches the function.
                "REQUEST_TOO_LARGE": envelope(413, f"Payload too large: {hint}"),
                "THROTTLED": envelope(429, "Too Many Requests"),
                "INTEGRATION_TIMEOUT": envelope(504, "Gateway Timeout"),
                # The function could not be invoked or failed: among others, a request over Lambda's 6 MB
                # cap (between it and API Gateway's 10 MB), which the app itself never sees; API Gateway
                # cannot tell the causes apart, so the answer names the likely one and its way out.
                "INTEGRATION_FAILURE": envelope(502, "Bad Gateway: the function could not take the request "
                                                     f"(a body over Lambda's 6 MB does this); {hint}"),
            },
        )
        return app

    def _api_stage_defaults(self, rest_api: cdk.CfnResource) -> None:
        """Default throttling of every method and JSON access logs on the `api` stage (SAM properties).

        Access logs need API Gateway's account-level CloudWatch role (AWS::ApiGateway::Account, one per
        account and region): created here and kept when the stack is deleted, since other APIs of the
        account may log through it. The log line carries no header, so no token is logged.
        """
        log_group = logs.LogGroup(self, "ApiAccessLogs", retention=logs.RetentionDays.ONE_MONTH,
                                  removal_policy=self.removal)
        push_role = iam.Role(
            self, "ApiGatewayCloudWatchRole", assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway pushes access and execution logs to CloudWatch Logs (account setting)",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                "service-role/AmazonAPIGatewayPushToCloudWatchLogs")])
        push_role.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        _acknowledge(push_role, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                                "AmazonAPIGatewayPushToCloudWatchLogs]",
                     "the policy AWS documents for API Gateway's account logging role; it writes CloudWatch Logs only")
        account = apigateway.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=push_role.role_arn)
        account.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        rest_api.add_dependency(account)
        access_format = apigateway.AccessLogFormat.json_with_standard_fields(
            caller=False, http_method=True, ip=True, protocol=True, request_time=True, resource_path=True,
            response_length=True, status=True, user=False)
        rest_api.add_property_override("AccessLogSetting", {
            "DestinationArn": log_group.log_group_arn, "Format": access_format.to_string()})
        rest_api.add_property_override("MethodSettings", [{
            "ResourcePath": "/*", "HttpMethod": "*",
            "ThrottlingRateLimit": self.config.api_throttle_rate,
            "ThrottlingBurstLimit": self.config.api_throttle_burst,
        }])

    # -- network and the WhatsApp device store --------------------------------------------------------

    def _network_and_database(self) -> tuple[ec2.Vpc, rds.DatabaseInstance]:
        # No NAT gateways: hosts sit in public subnets with public IPs (they dial WhatsApp anyway);
        # the database is in isolated subnets. DynamoDB and S3 traffic stays on free gateway endpoints.
        vpc = ec2.Vpc(
            self, "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="db", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
            gateway_endpoints={
                "DynamoDb": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
            },
        )
        # Rejected traffic only: hosts accept no inbound connection and the database only the hosts'.
        flow_logs = logs.LogGroup(self, "VpcFlowLogs", retention=logs.RetentionDays.ONE_MONTH,
                                  removal_policy=self.removal)
        vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                         traffic_type=ec2.FlowLogTrafficType.REJECT)
        self.host_security_group = ec2.SecurityGroup(
            self, "HostSecurityGroup", vpc=vpc, allow_all_outbound=True,
            description="session hosts: no inbound; outbound to WhatsApp and AWS APIs")
        db_security_group = ec2.SecurityGroup(
            self, "DatabaseSecurityGroup", vpc=vpc, allow_all_outbound=False,
            description="device store: PostgreSQL from session hosts only")
        db_security_group.add_ingress_rule(self.host_security_group, ec2.Port.tcp(5432), "session hosts")

        # The exported log group, made here with a retention (CDK's LogRetention helper would add a
        # Lambda whose policy has Resource "*").
        identifier = self.names.name("device-store")
        db_logs = logs.LogGroup(self, "DeviceStoreLogs", log_group_name=f"/aws/rds/instance/{identifier}/postgresql",
                                retention=logs.RetentionDays.ONE_MONTH, removal_policy=self.removal)
        database = rds.DatabaseInstance(
            self, "DeviceStore",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_17_9),
            instance_type=ec2.InstanceType(self.config.db_instance_type),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[db_security_group],
            credentials=rds.Credentials.from_generated_secret(
                "wago", secret_name=f"{self.names.prefix}/device-store", exclude_characters=URL_UNSAFE),
            database_name="whatsmeow",
            allocated_storage=20,
            max_allocated_storage=100,
            storage_type=rds.StorageType.GP3,
            storage_encrypted=True,
            multi_az=self.config.is_prod,
            publicly_accessible=False,
            backup_retention=cdk.Duration.days(7 if self.config.is_prod else 1),
            deletion_protection=self.config.is_prod,
            auto_minor_version_upgrade=True,
            enable_performance_insights=False,
            instance_identifier=identifier,
            cloudwatch_logs_exports=["postgresql"],
            removal_policy=cdk.RemovalPolicy.SNAPSHOT if self.config.is_prod else cdk.RemovalPolicy.DESTROY,
        )
        database.node.add_dependency(db_logs)
        _acknowledge(database, "AwsSolutions-RDS11",
                     "the database accepts connections only from the session hosts' security group, in isolated "
                     "subnets; a non-default port adds no protection")
        _acknowledge(database, "AwsSolutions-SMG4",  # the generated login, DeviceStore/Secret
                     "ECS injects the password into the host container at start; a rotation would break every "
                     "running host's device-store connections until it restarts, and needs a rotation Lambda "
                     "with a Secrets Manager endpoint in a VPC that has no NAT")
        if not self.config.is_prod:
            _acknowledge(database, "AwsSolutions-RDS3", "dev runs single-AZ to halve its cost; prod is Multi-AZ")
            _acknowledge(database, "AwsSolutions-RDS10",
                         "dev can be deleted with its stack; prod has deletion protection and a final snapshot")
        return vpc, database

    # -- session hosts on ECS Fargate -----------------------------------------------------------------

    def _host_image(self) -> ecs.ContainerImage:
        if self.config.host_image:
            return ecs.ContainerImage.from_registry(self.config.host_image)
        # Built (by `cdk deploy`, with Docker) from the repository root; synth only stages the files below.
        return ecs.ContainerImage.from_asset(
            str(self.config.source_dir),
            file="session_host/Dockerfile",
            ignore_mode=cdk.IgnoreMode.DOCKER,
            # (the build context: what session_host/Dockerfile's COPY lines read, nothing else)
            exclude=["*", "!chalicelib/__init__.py", "!chalicelib/core", "!session_host", "!requirements.txt",
                     "!requirements-host.txt", "**/__pycache__", "**/*.pyc"],
            platform=_LINUX_AMD64,
        )

    def _session_hosts(self) -> tuple[ecs.Cluster, ecs.FargateService]:
        cluster = ecs.Cluster(self, "Cluster", vpc=self.vpc, cluster_name=self.names.name("hosts"))
        _acknowledge(cluster, "AwsSolutions-ECS4",
                     "the host monitor publishes the metrics the service scales and alarms on (sessions per host, "
                     "heartbeat age); Container Insights would add per-task metrics at extra cost")
        task = ecs.FargateTaskDefinition(
            self, "HostTask",
            cpu=self.config.host_cpu,
            memory_limit_mib=self.config.host_memory_mib,
            runtime_platform=ecs.RuntimePlatform(cpu_architecture=ecs.CpuArchitecture.X86_64,
                                                 operating_system_family=ecs.OperatingSystemFamily.LINUX),
        )
        role = task.task_role
        t = self.tables
        for name in ("sessions", "hosts", "replies", "messages", "calls"):
            t[name].grant_read_write_data(role)
        if "sim" in t:
            t["sim"].grant_read_write_data(role)
        # Inbound media is stored, outbound media read (sends, /send/mediaurl downloads), by the host.
        self._grant_media(task.task_role, "s3:GetObject", "s3:PutObject")
        self.events_queue.grant_send_messages(role)
        self._acknowledge_session_index(role)
        # Each host creates its own FIFO command queue at start and deletes it on stop; hosts also
        # delete the queues of hosts that died. Only queues named wago-<stage>-host-* are reachable.
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="OwnHostCommandQueues",
            actions=["sqs:CreateQueue", "sqs:DeleteQueue", "sqs:GetQueueUrl", "sqs:GetQueueAttributes",
                     "sqs:SetQueueAttributes", "sqs:TagQueue", "sqs:ListQueueTags", "sqs:ReceiveMessage",
                     "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage"],
            resources=[self._arn("sqs", self.names.host_queue_pattern)],
        ))
        _acknowledge(task.task_role, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sqs:<AWS::Region>:"
                                     f"<AWS::AccountId>:{self.names.host_queue_pattern}]",
                     "a host creates, drains and deletes its own FIFO command queue (named after its id, known only "
                     "at run time) and deletes dead hosts' queues: only this stage's host-queue prefix is reachable")
        # (no admin token: hosts never read it; settings.validate_runnable("host"))

        log_group = logs.LogGroup(self, "HostLogs", log_group_name=f"/ecs/{self.names.name('session-host')}",
                                  retention=logs.RetentionDays.ONE_MONTH, removal_policy=self.removal)
        env = self._common_environment()
        env.update({
            "MEDIA_BUCKET": self.media_bucket.bucket_name,
            "AWS_DEFAULT_REGION": self.region,
            "NEONIZE_DB_HOST": self.database.db_instance_endpoint_address,
            "NEONIZE_DB_PORT": self.database.db_instance_endpoint_port,
            "NEONIZE_DB_NAME": "whatsmeow",
        })
        db_secret = self.database.secret
        assert db_secret is not None, "the device store's credentials are generated, so it has a secret"
        container = task.add_container(
            "host",
            container_name="session-host",
            image=self._host_image(),
            environment=env,
            # Injected by ECS from Secrets Manager at start; only the ARNs are in the task definition.
            secrets={
                "NEONIZE_DB_USER": ecs.Secret.from_secrets_manager(db_secret, "username"),
                "NEONIZE_DB_PASSWORD": ecs.Secret.from_secrets_manager(db_secret, "password"),
            },
            logging=ecs.LogDrivers.aws_logs(stream_prefix="host", log_group=log_group,
                                            mode=ecs.AwsLogDriverMode.NON_BLOCKING),
            # Healthy while this container's host row has a fresh heartbeat (session_host/registry.py
            # names hosts <hostname>-<pid>-<rand>).
            health_check=ecs.HealthCheck(
                command=["CMD", "python", "-c", HEALTH_CHECK],
                interval=cdk.Duration.seconds(30),
                timeout=cdk.Duration.seconds(10),
                retries=3,
                start_period=cdk.Duration.seconds(120),
            ),
            # SIGTERM drains: stop taking commands, release sessions, delete the queue (host.stop),
            # and neonize's stop() may block up to ~60 s; 120 s is Fargate's maximum.
            stop_timeout=cdk.Duration.seconds(120),
            essential=True,
        )
        container.add_ulimits(ecs.Ulimit(name=ecs.UlimitName.NOFILE, soft_limit=65536, hard_limit=65536))
        _acknowledge(task, "AwsSolutions-ECS2",
                     "the environment holds only non-secret settings (resource names, the bucket name, the database "
                     "endpoint); the database login is injected from Secrets Manager (`secrets`)")
        if task.execution_role is not None:
            _acknowledge(task.execution_role, "AwsSolutions-IAM5[Resource::*]",
                         "ecr:GetAuthorizationToken cannot be scoped to a resource (ECR's IAM reference); "
                         "the image pull and log actions are scoped by CDK")

        service = ecs.FargateService(
            self, "HostService",
            cluster=cluster,
            service_name=self.names.name("session-host"),
            task_definition=task,
            desired_count=self.config.host_min,
            assign_public_ip=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[self.host_security_group],
            # Start the new host before stopping the old one: sessions move by lease failover.
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            enable_execute_command=False,
            platform_version=ecs.FargatePlatformVersion.LATEST,
        )
        return cluster, service

    # -- host monitor, autoscaling on sessions per host -----------------------------------------------

    def _host_monitor_and_scaling(self) -> None:
        monitor = lambda_.Function(
            self, "HostMonitor",
            runtime=lambda_.Runtime.PYTHON_3_13,  # = LAMBDA_RUNTIME (a test checks every function)
            handler="index.handler",
            code=lambda_.Code.from_inline(HOST_MONITOR_CODE),
            timeout=cdk.Duration.seconds(30),
            memory_size=128,
            description="Publishes session-host metrics from the hosts table (EMF): sessions per host, heartbeat age",
            environment={"HOSTS_TABLE": self.tables["hosts"].table_name, "STAGE": self.config.stage,
                         "METRICS_NAMESPACE": METRICS_NAMESPACE,
                         "HOST_LEASE_SECONDS": "15"},
            log_group=logs.LogGroup(self, "HostMonitorLogs", retention=logs.RetentionDays.ONE_WEEK,
                                    removal_policy=cdk.RemovalPolicy.DESTROY),
            reserved_concurrent_executions=1,
        )
        self.tables["hosts"].grant_read_data(monitor)
        _acknowledge(monitor, "AwsSolutions-L1",
                     f"{LAMBDA_RUNTIME} is a supported runtime (AL2023); every function of the stack runs the one "
                     "runtime the API package is built for (wago_infra/package.py)")
        _acknowledge(monitor, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                              "AWSLambdaBasicExecutionRole]",
                     "AWS's basic execution policy grants only CloudWatch Logs writes "
                     "(create group/stream, put events)")
        events.Rule(self, "HostMonitorSchedule", schedule=events.Schedule.rate(cdk.Duration.minutes(1)),
                    targets=[targets.LambdaFunction(monitor)])
        self.host_monitor = monitor

        if self.host_service is None:
            return
        scaling = self.host_service.auto_scale_task_count(min_capacity=self.config.host_min,
                                                          max_capacity=self.config.host_max)
        scaling.scale_to_track_custom_metric(
            "SessionsPerHost",
            metric=self.host_metric("SessionsPerHost", statistic="Average"),
            target_value=max(1, int(self.config.host_capacity * 0.7)),
            scale_out_cooldown=cdk.Duration.minutes(3),
            # Scaling in moves sessions (a stopped host releases them, another restores them).
            scale_in_cooldown=cdk.Duration.minutes(30),
        )

    def host_metric(self, name: str, statistic: str = "Maximum") -> cloudwatch.Metric:
        return cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=name,
                                 dimensions_map={"Stage": self.config.stage},
                                 statistic=statistic, period=cdk.Duration.minutes(1))

    # -- alarms --------------------------------------------------------------------------------------

    def _alarms(self) -> None:
        action = cw_actions.SnsAction(self.alarm_topic)
        fanout_name = self.chalice.get_resource(FANOUT_FUNCTION).ref
        api_name = self.chalice.get_resource(API_FUNCTION).ref
        alarms = [
            cloudwatch.Alarm(
                self, "EventsDlqDepthAlarm",
                alarm_name=f"{self.names.prefix} events DLQ not empty",
                alarm_description="Webhook events failed every delivery attempt; inspect, fix, then redrive.",
                metric=self.events_dlq.metric_approximate_number_of_messages_visible(
                    period=cdk.Duration.minutes(1), statistic="Maximum"),
                threshold=1, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self, "EventsBacklogAlarm",
                alarm_name=f"{self.names.prefix} events backlog",
                alarm_description="The oldest undelivered event is more than 5 minutes old.",
                metric=self.events_queue.metric_approximate_age_of_oldest_message(
                    period=cdk.Duration.minutes(1), statistic="Maximum"),
                threshold=300, evaluation_periods=5,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self, "FanoutErrorsAlarm",
                alarm_name=f"{self.names.prefix} fan-out errors",
                alarm_description="The webhook fan-out Lambda failed whole invocations.",
                metric=_lambda_metric("Errors", fanout_name),
                threshold=1, evaluation_periods=3, datapoints_to_alarm=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self, "ApiErrorsAlarm",
                alarm_name=f"{self.names.prefix} API errors",
                alarm_description="The API Lambda failed invocations (crashes or timeouts, not 4xx answers).",
                metric=_lambda_metric("Errors", api_name),
                threshold=5, evaluation_periods=3, datapoints_to_alarm=2,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self, "HostHeartbeatGapAlarm",
                alarm_name=f"{self.names.prefix} session-host heartbeat gap",
                alarm_description="A session host's heartbeat is older than its lease (15 s): its sessions "
                                  "fail over. Missing data means the host monitor itself is not running.",
                metric=self.host_metric("MaxHeartbeatAgeSeconds"),
                threshold=15, evaluation_periods=3, datapoints_to_alarm=2,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            ),
            cloudwatch.Alarm(
                self, "NoLiveHostAlarm",
                alarm_name=f"{self.names.prefix} no live session host",
                alarm_description="No session host has a fresh heartbeat: no session can connect.",
                metric=self.host_metric("LiveHosts", statistic="Minimum"),
                threshold=1, evaluation_periods=3, datapoints_to_alarm=3,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            ),
        ]
        for alarm in alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

    def _outputs(self) -> None:
        rest_api = self.chalice.get_resource(REST_API).ref
        cdk.CfnOutput(self, "ApiUrl", value=f"https://{rest_api}.execute-api.{self.region}.{self.url_suffix}/api/")
        cdk.CfnOutput(self, "AdminTokenSecretArn", value=self.admin_token_secret.secret_arn)
        cdk.CfnOutput(self, "MediaBucketName", value=self.media_bucket.bucket_name)
        cdk.CfnOutput(self, "EventsDlqUrl", value=self.events_dlq.queue_url)
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)


API_TIMEOUT_SECONDS = 30  # API Gateway gives up at 29 s; the bus waits COMMAND_TIMEOUT_SECONDS (20 s)
FANOUT_TIMEOUT_SECONDS = 60
# The most records one fan-out batch may hold: its one BatchGetItem reads a session and a delivery-log
# item per record, and DynamoDB takes at most 100 keys per BatchGetItem.
FANOUT_MAX_BATCH = 50


def _lambda_metric(name: str, function_name: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(namespace="AWS/Lambda", metric_name=name, dimensions_map={"FunctionName": function_name},
                             statistic="Sum", period=cdk.Duration.minutes(1))


def _platform():
    from aws_cdk import aws_ecr_assets

    return aws_ecr_assets.Platform.LINUX_AMD64


_LINUX_AMD64 = _platform()

@contextlib.contextmanager
def _importing_app_for(env: dict[str, str], region: str):
    """Let `chalice package` import app.py as this stage would: with the stage's settings.

    app.py computes its SQS handler's queue name at import, from chalicelib.core.settings (cached), and it
    can be imported only once per process (Chalice blueprints register on one app only). So the
    stage's variables are in place, and the settings cache is empty, when chalice imports it; an app
    imported earlier for another stage is refused rather than silently packaged with the wrong queue.
    The environment is restored afterwards.
    """
    already = sys.modules.get("app")
    already_queue = getattr(getattr(already, "settings", None), "events_queue_name", None)
    if already is not None and already_queue != env["EVENTS_QUEUE"]:
        raise RuntimeError(
            "app.py was already imported in this process with other settings; synthesize each stage in a "
            "fresh process (cdk synth does; tests run the stack in a subprocess)")
    saved_env = dict(os.environ)
    os.environ.update(env)
    if not cdk.Token.is_unresolved(region):
        os.environ["AWS_DEFAULT_REGION"] = region
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # Not as a Lambda function either: app.py would install its routes on demand (or none, as the
    # fan-out) and Chalice would package an API without them.
    for key in ("RESOURCE_PREFIX", "AWS_ENDPOINT_URL", "ADMIN_TOKEN", "AWS_LAMBDA_FUNCTION_NAME", "_HANDLER"):
        os.environ.pop(key, None)
    settings_module = sys.modules.get("chalicelib.core.settings")
    if settings_module is not None and already is None:
        settings_module.get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_env)


def _upload_hint() -> str:
    """chalicelib/core/limits.py's UPLOAD_HINT (the project's own package, importable from REPO_ROOT)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from chalicelib.core.limits import UPLOAD_HINT

    return UPLOAD_HINT


def _acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept one cdk-nag finding on `scope` (and below), with the reason it is right for this stack."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))
