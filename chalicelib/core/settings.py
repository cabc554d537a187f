"""Runtime settings, read once from the environment.

Every process (API Lambda, fan-out Lambda, session host, local launcher) reads the same variables,
so a name such as the sessions table is derived in exactly one place. A field `foo_bar` is read from
the environment variable `FOO_BAR` (any letter case); keyword arguments win over the environment.
Every field is a scalar, so pydantic's own lax conversion of the string suffices (pydantic-settings
cost the Lambda ~50 ms of cold start for argparse, gettext and dotenv we never used).
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chalicelib.core import limits

#: WaGo's documented default admin token (`-admintoken qwert`); accepted in the local stage only.
LOCAL_DEFAULT_ADMIN_TOKEN = "qwert"
STAGES = ("local", "test", "dev", "prod")
DRIVERS = ("neonize", "sim")


class ConfigurationError(RuntimeError):
    """The environment does not describe a runnable deployment; the message says what to set."""


class Settings(BaseModel):
    """The deployment's configuration, read once from the environment (names case-insensitive; see
    README's Configuration section). Resource names derive from `prefix` unless set one by one."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def __init__(self, **values: Any):
        fields = type(self).model_fields
        from_env = {key.lower(): value for key, value in os.environ.items() if key.lower() in fields}
        super().__init__(**{**from_env, **values})

    stage: str = Field("local", description="Deployment stage: local, test, dev or prod.")
    region: str = Field(
        default_factory=lambda: os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        description="AWS region (AWS_REGION / AWS_DEFAULT_REGION).",
    )
    aws_endpoint_url: str | None = Field(None, description="AWS endpoint (moto, LocalStack); unset for real AWS.")
    resource_prefix: str | None = Field(None, description="Prefix of every table/queue/bucket; default wago-<stage>.")

    admin_token: str | None = Field(None, description="Admin token (admintoken header).")
    admin_token_secret_arn: str | None = Field(None, description="Secrets Manager secret holding the admin token.")

    # Explicit physical names (set by the CDK stack); unset means <prefix>-<suffix>.
    sessions_table: str | None = None
    session_names_table: str | None = None
    counters_table: str | None = None
    hosts_table: str | None = None
    replies_table: str | None = None
    messages_table: str | None = None
    sim_table: str | None = None
    events_queue: str | None = None
    events_dlq: str | None = None
    media_bucket: str | None = None
    deliveries_table: str | None = None

    max_body_bytes: int = Field(1 << 20, gt=0, description="Largest JSON body accepted by non-media routes.")
    media_fetch_timeout_seconds: float = Field(
        20.0, gt=0, le=60, description="/send/mediaurl: connect+read timeout of the host's download.",
    )
    media_max_bytes: int = Field(
        16 << 20, gt=0, description="Largest decoded media file a send accepts (WhatsApp's own limit is 16 MB for "
        "most kinds; API Gateway's 10 MB body limit applies first in AWS: use a presigned upload beyond it).",
    )
    lambda_payload_limits: bool | None = Field(
        None, description="Enforce Lambda's 6 MB request and response caps (chalicelib/core/limits.py): data URLs, "
        "bodies and responses that could not pass AWS answer 413/500 envelopes; default: on in dev and prod.",
    )
    host_heartbeat_seconds: float = Field(5.0, gt=0, description="Session host heartbeat interval.")
    host_capacity: int = Field(200, gt=0, description="Sessions one host accepts.")
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="Webhook connect+read timeout.")
    # Webhook fan-out (chalicelib/webhooks/): retries, media forwarding, SSRF guard, delivery log.
    webhook_max_attempts: int = Field(
        8, ge=1, le=100, description="POSTs of one event before it goes to the DLQ (<= the queue's maxReceiveCount)."
    )
    webhook_backoff_base_seconds: float = Field(5.0, ge=0, description="First retry delay; doubles per attempt.")
    webhook_backoff_cap_seconds: float = Field(900.0, ge=0, le=43200, description="Longest retry delay.")
    webhook_files: bool = Field(True, description="Attach inbound media as a multipart `file` (WaGo -webhookfiles).")
    webhook_allowed_hosts: str = Field("", description="Comma-separated hosts (or *.suffix) the SSRF guard exempts.")
    webhook_allowed_cidrs: str = Field("", description="Comma-separated CIDRs the SSRF guard lets through.")
    webhook_allow_loopback: bool | None = Field(
        None, description="Let webhooks target 127.0.0.0/8, ::1 and localhost; default: only in local/test stages."
    )
    delivery_log_ttl_seconds: int = Field(7 * 24 * 3600, gt=0, description="Delivery log entries expire after this.")

    whatsapp_driver: str = Field("neonize", description="Session-host WhatsApp driver: neonize (real) or sim.")
    host_lease_seconds: float = Field(
        15.0, gt=0, description="A host whose heartbeat is older than this is dead: its sessions may be taken over."
    )
    host_lease_margin_seconds: float | None = Field(
        None, ge=0, description="Fencing margin (default: the lease / 8): a host stops driving its sessions this "
        "long before its lease can have expired (local monotonic deadline), and another host adopts them only this "
        "long after it has expired. Covers clock skew between hosts (README, Session hosts).",
    )
    host_report_file: str = Field("", description="Host only: a JSON file the host rewrites several times per "
                                  "heartbeat with its own clients, held epochs and lease state "
                                  "(operators, fault tests).")
    host_cache_seconds: float = Field(
        2.0, ge=0, description="API: a host's row (liveness, queue) is reused this long before it is read again; "
        "capped at HOST_LEASE_SECONDS - HOST_HEARTBEAT_SECONDS, so a live host is never taken for dead.",
    )
    host_workers: int = Field(16, gt=0, description="Commands a host runs at once (one session at a time each).")
    command_timeout_seconds: float = Field(
        20.0, gt=0, description="How long an API call waits for a session host's reply (API Gateway stops at 29 s)."
    )
    command_short_poll_seconds: float | None = Field(
        None, ge=0, le=5, description="Host command queue: short polls this far apart instead of long polls. "
        "Default: 0.05 in the local and test stages (moto's long poll delays a session's next command by up to "
        "its whole wait), 0 (long polls) elsewhere.",
    )
    reply_ttl_seconds: int = Field(3600, gt=0, description="Reply items expire (DynamoDB TTL) after this.")
    async_command_ttl_seconds: float = Field(
        600.0, gt=0, description="Async (202) sends: a host skips the command after this long in the queue.",
    )
    message_ttl_days: int = Field(30, gt=0, description="Sent-message records (idempotency, status) expire after this.")
    sim_qr_first_seconds: float = Field(60.0, gt=0, description="sim driver: lifetime of the first QR code.")
    sim_qr_next_seconds: float = Field(20.0, gt=0, description="sim driver: lifetime of each rotated QR code.")
    sim_qr_rotations: int = Field(5, ge=0, description="sim driver: QR codes after the first before pairing times out.")
    neonize_store: str = Field(
        "", description="neonize device store: empty for one SQLite file per session under NEONIZE_DATA_DIR, "
        "or a postgres:// URL shared by every host (sessions keyed by JID).",
    )
    neonize_data_dir: str = Field(".data/neonize", description="Directory of the per-session SQLite stores.")
    neonize_workers: int = Field(2, gt=0, le=64,
                                 description="neonize worker processes per host (a Go panic costs one).")
    neonize_proxy: str = Field("", description="socks5:// or http:// proxy for every WhatsApp connection.")
    connect_on_startup: bool = Field(
        True, description="WaGo's -connectstartup: sessions marked connected reconnect when the gateway starts "
        "(make run); off: they start disconnected and /session/connect restores them from the device store.",
    )
    connect_wait_seconds: float = Field(
        10.0, gt=0, le=25, description="How long connect waits for the first QR code, login or error.",
    )
    neonize_start_spacing_seconds: float = Field(
        0.1, ge=0, description="Gap between two client starts in one worker (neonize's Go registry has no lock).",
    )

    # -- calls (chalicelib/core/calls, session_host/calls) ------------------------------------------------
    calls_table: str | None = None
    ice_stun_urls: str = Field("", description="Comma-separated stun: URLs for /call/webrtc/config and the host's "
                               "WebRTC legs; empty means none (host candidates only).")
    turn_urls: str = Field("", description="Comma-separated turn:/turns: URLs; empty disables TURN.")
    turn_username: str = Field("", description="Static TURN username (with TURN_CREDENTIAL).")
    turn_credential: str = Field("", description="Static TURN password.")
    turn_shared_secret: str = Field("", description="coturn REST-API shared secret (static-auth-secret): "
                                    "time-limited credentials are derived from it instead of static ones.")
    turn_ttl_seconds: int = Field(86400, gt=0, le=7 * 86400, description="Lifetime of derived TURN credentials.")
    turn_user: str = Field("wago", description="User part of derived TURN usernames (<expiry>:<user>).")
    ice_gather_timeout_seconds: float = Field(1.5, gt=0, le=30,
                                              description="Longest ICE gathering wait (call page and host answer).")
    ice_host_addresses: str = Field("", description="Host only: comma-separated local addresses for WebRTC "
                                    "candidates (e.g. 127.0.0.1 in a loopback-only network); empty = all but loopback.")
    call_inactivity_seconds: float = Field(20.0, gt=0, description="A WebRTC leg with no inbound audio this long "
                                           "is closed and its call ended.")
    call_connect_timeout_seconds: float = Field(20.0, gt=0, description="A WebRTC leg not connected this long "
                                                "after its offer is closed.")
    call_ring_seconds: float = Field(60.0, gt=0, description="sim driver: an unanswered call ends after this.")
    call_ttl_seconds: int = Field(7 * 86400, gt=0, description="Call records expire (DynamoDB TTL) after this.")
    call_audio_dir: str = Field("", description="Host only: the directory `AudioFile` playback may read from "
                                "(paths resolve inside it); empty turns file playback off (MediaKey still works).")

    @field_validator("whatsapp_driver")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in DRIVERS:
            raise ValueError(f"WHATSAPP_DRIVER must be one of {', '.join(DRIVERS)}")
        return value

    @field_validator("webhook_allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        import ipaddress

        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"WEBHOOK_ALLOWED_CIDRS: {item!r} is not a network") from None
        return value

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in STAGES:
            raise ValueError(f"STAGE must be one of {', '.join(STAGES)}")
        return value

    @property
    def prefix(self) -> str:
        """RESOURCE_PREFIX, else `wago-<stage>`: the start of every derived resource name."""
        return self.resource_prefix or f"wago-{self.stage}"

    def _name(self, explicit: str | None, suffix: str) -> str:
        return explicit or f"{self.prefix}-{suffix}"

    @property
    def sessions_table_name(self) -> str:
        """DynamoDB table of sessions: SESSIONS_TABLE, else `<prefix>-sessions`."""
        return self._name(self.sessions_table, "sessions")

    @property
    def session_names_table_name(self) -> str:
        """DynamoDB table of unique session names: SESSION_NAMES_TABLE, else `<prefix>-session-names`."""
        return self._name(self.session_names_table, "session-names")

    @property
    def counters_table_name(self) -> str:
        """DynamoDB table of counters (session ids): COUNTERS_TABLE, else `<prefix>-counters`."""
        return self._name(self.counters_table, "counters")

    @property
    def hosts_table_name(self) -> str:
        """DynamoDB table of session hosts: HOSTS_TABLE, else `<prefix>-hosts`."""
        return self._name(self.hosts_table, "hosts")

    @property
    def events_queue_name(self) -> str:
        """SQS queue of WhatsApp events (host -> fan-out): EVENTS_QUEUE, else `<prefix>-events`."""
        return self._name(self.events_queue, "events")

    @property
    def events_dlq_name(self) -> str:
        """SQS dead-letter queue of undeliverable events: EVENTS_DLQ, else `<prefix>-events-dlq`."""
        return self._name(self.events_dlq, "events-dlq")

    @property
    def media_bucket_name(self) -> str:
        """S3 bucket of media: MEDIA_BUCKET, else `<prefix>-media`."""
        return self._name(self.media_bucket, "media")

    @property
    def replies_table_name(self) -> str:
        """DynamoDB table of host replies to commands: REPLIES_TABLE, else `<prefix>-replies`."""
        return self._name(self.replies_table, "replies")

    @property
    def messages_table_name(self) -> str:
        """DynamoDB table of sent messages (outbox): MESSAGES_TABLE, else `<prefix>-messages`."""
        return self._name(self.messages_table, "messages")

    @property
    def deliveries_table_name(self) -> str:
        """DynamoDB table of the webhook delivery log: DELIVERIES_TABLE, else
        `<prefix>-deliveries`."""
        return self._name(self.deliveries_table, "deliveries")

    @property
    def webhook_loopback_allowed(self) -> bool:
        """WEBHOOK_ALLOW_LOOPBACK, else True in the local and test stages only."""
        return self.is_local if self.webhook_allow_loopback is None else self.webhook_allow_loopback

    @property
    def sim_table_name(self) -> str:
        """DynamoDB table of the sim driver's network: SIM_TABLE, else `<prefix>-sim`."""
        return self._name(self.sim_table, "sim")

    @property
    def calls_table_name(self) -> str:
        """DynamoDB table of calls: CALLS_TABLE, else `<prefix>-calls`."""
        return self._name(self.calls_table, "calls")

    def host_queue_name(self, host_id: str) -> str:
        """The FIFO command queue of one host (SQS names: 80 chars of [A-Za-z0-9_-], plus `.fifo`)."""
        safe = re.sub(r"[^A-Za-z0-9_-]", "-", host_id)
        return f"{self.prefix}-host-{safe}"[:75] + ".fifo"

    @property
    def command_poll_interval(self) -> float:
        """COMMAND_SHORT_POLL_SECONDS, or its stage default (see the field)."""
        if self.command_short_poll_seconds is not None:
            return self.command_short_poll_seconds
        return 0.05 if self.is_local else 0.0

    @property
    def enforce_lambda_limits(self) -> bool:
        """LAMBDA_PAYLOAD_LIMITS, or on in the deployed stages (dev, prod): see chalicelib/core/limits.py."""
        return (not self.is_local) if self.lambda_payload_limits is None else self.lambda_payload_limits

    @property
    def data_url_max_bytes(self) -> int:
        """Largest decoded file a data-URL send accepts: MEDIA_MAX_BYTES, capped where Lambda's 6 MB request
        cap applies (limits.DATA_URL_MAX_DECODED_BYTES); beyond it, POST /media/upload + MediaKey."""
        if self.enforce_lambda_limits:
            return min(self.media_max_bytes, limits.DATA_URL_MAX_DECODED_BYTES)
        return self.media_max_bytes

    @property
    def host_cache_ttl(self) -> float:
        """HOST_CACHE_SECONDS within its bound: a cached heartbeat is then at most one heartbeat interval
        plus this old, which stays within the lease while the host keeps beating."""
        return max(0.0, min(self.host_cache_seconds, self.host_lease_seconds - self.host_heartbeat_seconds))

    @property
    def is_local(self) -> bool:
        """True in the local and test stages (local defaults such as WaGo's admin token apply)."""
        return self.stage in ("local", "test")

    def require_admin_token(self) -> str:
        """The admin token in force: ADMIN_TOKEN, else the secret ADMIN_TOKEN_SECRET_ARN names (read from
        Secrets Manager on first use, then cached 5 minutes), else WaGo's default where the stage is local.
        A blank ADMIN_TOKEN counts as unset. ConfigurationError when there is none, or the secret is empty."""
        self.check_admin_token_source()
        if self._admin_token:
            return self._admin_token
        if not self.admin_token_secret_arn:
            return LOCAL_DEFAULT_ADMIN_TOKEN
        token = _secret_value(self.admin_token_secret_arn)
        if not token:
            raise ConfigurationError("the admin token is empty: the secret ADMIN_TOKEN_SECRET_ARN names holds no token")
        return token

    @property
    def _admin_token(self) -> str:
        """ADMIN_TOKEN without surrounding spaces; empty (as unset) when it holds none."""
        return (self.admin_token or "").strip()

    def check_admin_token_source(self) -> None:
        """ConfigurationError unless an admin token is configured: ADMIN_TOKEN, ADMIN_TOKEN_SECRET_ARN, or
        the local stage's default. Reads no secret (the API function checks this at start, and reads the
        secret on its first admin request)."""
        if self._admin_token or self.admin_token_secret_arn or self.is_local:
            return
        raise ConfigurationError(
            f"stage '{self.stage}' needs an admin token: set ADMIN_TOKEN or ADMIN_TOKEN_SECRET_ARN "
            f"(the default '{LOCAL_DEFAULT_ADMIN_TOKEN}' is accepted only in the local stage)"
        )

    @property
    def lease_margin_seconds(self) -> float:
        """HOST_LEASE_MARGIN_SECONDS, or the lease / 8."""
        if self.host_lease_margin_seconds is not None:
            return self.host_lease_margin_seconds
        return self.host_lease_seconds / 8

    def check_lease_timing(self) -> None:
        """A host renews its lease every heartbeat and must do so before `lease - margin` runs out."""
        if self.host_lease_seconds - self.lease_margin_seconds <= self.host_heartbeat_seconds:
            raise ConfigurationError(
                f"HOST_LEASE_SECONDS ({self.host_lease_seconds:g}) minus the margin ({self.lease_margin_seconds:g}) "
                f"must exceed HOST_HEARTBEAT_SECONDS ({self.host_heartbeat_seconds:g}): a host would fence itself "
                "between two heartbeats")

    def validate_runnable(self, role: str = "api") -> None:
        """Fail fast, with a message an operator can act on, before serving anything.

        `role` is the process's job: `api` (the API Lambda, `make run`'s API) checks that an admin token
        is configured (`check_admin_token_source`; a secret is read on the first admin request, not
        here: the read would cost every cold start boto3's import, a client and a call); `fanout` (the
        webhook Lambda) and `host` (a session host) read no admin token, so they neither check it nor
        need access to its secret (least privilege: the stack grants the secret to the API role only).
        A `host` checks its lease timing (`check_lease_timing`). ValueError for an unknown role.
        """
        if role not in PROCESS_ROLES:
            raise ValueError(f"unknown process role {role!r} (one of {', '.join(PROCESS_ROLES)})")
        if role == "api":
            self.check_admin_token_source()
        if role == "host":
            self.check_lease_timing()


PROCESS_ROLES = ("api", "fanout", "host")


def _secret_value(arn: str) -> str:
    """The secret's value, stripped. Powertools caches it (its 5 s default TTL is raised to 5 min here)
    across invocations. ConfigurationError naming AWS's error code when it cannot be read (the code
    only: AWS's message can hold account and role ARNs, and the client sees this one)."""
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(arn, max_age=300)
    except parameters.exceptions.GetParameterError as exc:
        cause = exc.__cause__ or exc.__context__  # Powertools re-raises without `from`
        code = getattr(cause, "response", {}).get("Error", {}).get("Code") or type(cause or exc).__name__
        raise ConfigurationError(f"could not read the admin token secret (ADMIN_TOKEN_SECRET_ARN): {code}") from None
    if isinstance(value, bytes):
        value = value.decode()
    return str(value).strip()


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's Settings, built once; ConfigurationError naming each invalid variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid settings: {problems}") from None
