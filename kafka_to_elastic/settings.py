from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from tweetpipe.settings import AdminSettings, SearchSettings, ServiceSettings


class SinkOptions(BaseModel):
    group_id: str = "kafka-to-elastic"
    batch_size: int = Field(default=5000, ge=1)
    """Most records indexed (and committed) together."""
    batch_wait_ms: int = Field(default=200, ge=0)
    """How long to gather a batch before indexing what is there: bounds freshness."""
    retry_initial_s: float = Field(default=0.2, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)
    progress_interval_s: float = Field(default=5.0, gt=0)


class SinkSettings(ServiceSettings):
    application: ClassVar[str] = "kafka-to-elastic"

    sink: SinkOptions = SinkOptions()
    search: SearchSettings = SearchSettings()
    admin: AdminSettings = AdminSettings(port=8082)
