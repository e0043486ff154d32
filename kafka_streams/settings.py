from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field, model_validator

from kafka_streams.batching import Batcher
from kafka_streams.windows import MAX_HOP_SECONDS, Windows
from tweetpipe.settings import AdminSettings, AuthSettings, ServiceSettings, TrendingOptions

SERVICE = "kafka-streams-service"
"""The service's name: in its logs, traces and client ids, and its config's application name."""


class StreamsOptions(BaseModel):
    application_id: str = "kafka-streams"
    """Prefix of the consumer groups, transactional ids and internal topics."""
    instance_id: str = "instance-1"
    """Stable per instance: a restarted instance fences its own unfinished transactions."""
    state_dir: Path = Path(".tweetpipe/streams")
    window_seconds: int = Field(default=60, ge=1)
    """Tumbling windows (published on `kafka.analytics_topic`)."""
    hop_seconds: int = Field(default=300, ge=1, le=MAX_HOP_SECONDS)
    """Size of the hopping windows (published on `kafka.analytics_hopping_topic`)."""
    hop_advance_seconds: int = Field(default=60, ge=1)
    """How far apart hopping windows start; divides `hop_seconds`. Each tweet counts in
    hop_seconds / hop_advance_seconds of them: smaller advances cost counting work."""
    grace_seconds: int = Field(default=30, ge=0)
    """How late (behind its input partition's latest tweet) a tweet may be and still count in
    a window; after window end + grace the window is final."""
    stop_words: list[str] = Field(default_factory=list)
    repartition_partitions: int = Field(default=3, ge=1)
    batch_size: int = Field(default=20_000, ge=1)
    """Most records per batch (per transaction) in each stage."""
    commit_interval_ms: int = Field(default=500, ge=0)
    """Longest a record waits for its batch: bounds how stale counts are."""
    emit_interval_s: float = Field(default=1.0, gt=0)
    """How often changed counts go to the changelog and the analytics topics; longer while
    input keeps coming and publishing is slow (`backlog_publish_share`), and again this often
    once no input has arrived for this long (`kafka_streams.publish_pacing`)."""
    backlog_publish_share: float = Field(default=0.2, gt=0, le=1)
    """While input keeps coming, the most of the counter's time publishing may take: the next
    publish waits until counting has had (1 - share) / share times the last publish's duration
    (4 times at 0.2). Lower counts faster and updates the analytics topics less often."""
    changelog_buckets: int = Field(default=1024, ge=1)
    """How many changelog records a window's counts are spread over (`kafka_streams.changelog`):
    more means smaller records, each re-sent whole when one of its words changes; fewer
    means fewer records per publish. Changing it is safe: the buckets are keyed by it."""
    transaction_timeout_ms: int = 10_000
    transaction_attempts: int = Field(default=8, ge=1)
    """Tries of one batch's transaction before the stage stops naming it; retriable broker
    errors only (a deterministic one stops it at once), with backoff in between."""
    trending: TrendingOptions = TrendingOptions()
    advertised_url: str | None = None
    """How other instances reach this one's query API; defaults to http://host:port."""
    peer_timeout_s: float = 2.0
    crash_after_deltas: int | None = Field(default=None, ge=1)
    """Crash tests only: exit abruptly, mid-transaction, once this process has sent this many
    repartition records."""

    @model_validator(mode="after")
    def _advance_divides_size(self) -> StreamsOptions:
        if self.hop_seconds % self.hop_advance_seconds:
            raise ValueError("streams.hop_advance_seconds must divide streams.hop_seconds")
        return self

    def batcher(self) -> Batcher:
        """Each stage's batching: at most `batch_size` records, none waiting longer than the
        commit interval."""
        return Batcher(self.batch_size, self.commit_interval_ms / 1000)

    @property
    def windows(self) -> Windows:
        return Windows(
            tumbling_s=self.window_seconds,
            hop_s=self.hop_seconds,
            advance_s=self.hop_advance_seconds,
            grace_s=self.grace_seconds,
        )


class StreamsSettings(ServiceSettings):
    application: ClassVar[str] = SERVICE

    streams: StreamsOptions = StreamsOptions()
    auth: AuthSettings = AuthSettings()
    admin: AdminSettings = AdminSettings(port=8083)

    @property
    def url(self) -> str:
        return self.streams.advertised_url or f"http://{self.admin.host}:{self.admin.port}"

    @property
    def repartition_topic(self) -> str:
        return f"{self.streams.application_id}-word-repartition"

    @property
    def changelog_topic(self) -> str:
        return f"{self.streams.application_id}-word-counts-changelog"

    @property
    def intents_topic(self) -> str:
        return f"{self.streams.application_id}-split-intents"

    @property
    def instances_topic(self) -> str:
        return f"{self.streams.application_id}-instances"
