"""Physical names of one stage's resources, derived exactly as chalicelib/core/settings.py derives them.

The Chalice app registers its SQS handler with a literal queue name computed at import
(`settings.events_queue_name`), so the queue the stack creates must carry that same name. Tables and
queues therefore have fixed physical names `wago-<stage>-<suffix>`; the media bucket does not (S3
names are global), its generated name reaches the code through MEDIA_BUCKET at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

CLOUD_STAGES = ("dev", "prod")


@dataclass(frozen=True)
class Names:
    stage: str

    def __post_init__(self) -> None:
        if self.stage not in CLOUD_STAGES:
            raise ValueError(f"stage must be one of {', '.join(CLOUD_STAGES)} (got {self.stage!r})")

    @property
    def prefix(self) -> str:
        return f"wago-{self.stage}"

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    @property
    def stack_name(self) -> str:
        return self.prefix

    @property
    def host_queue_pattern(self) -> str:
        """Per-host FIFO command queues, created by each host at start (settings.host_queue_name)."""
        return f"{self.prefix}-host-*"

    def environment(self) -> dict[str, str]:
        """The literal settings every process of the stage shares (see chalicelib/core/settings.py)."""
        return {
            "STAGE": self.stage,
            "SESSIONS_TABLE": self.name("sessions"),
            "SESSION_NAMES_TABLE": self.name("session-names"),
            "COUNTERS_TABLE": self.name("counters"),
            "HOSTS_TABLE": self.name("hosts"),
            "REPLIES_TABLE": self.name("replies"),
            "MESSAGES_TABLE": self.name("messages"),
            "DELIVERIES_TABLE": self.name("deliveries"),
            "SIM_TABLE": self.name("sim"),
            "CALLS_TABLE": self.name("calls"),
            "EVENTS_QUEUE": self.name("events"),
            "EVENTS_DLQ": self.name("events-dlq"),
        }
