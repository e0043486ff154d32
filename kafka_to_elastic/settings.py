from __future__ import annotations

from typing import ClassVar

from tweetpipe.batch_consumer import BatchOptions
from tweetpipe.settings import AdminSettings, SearchSettings, ServiceSettings


class SinkOptions(BatchOptions):
    group_id: str = "kafka-to-elastic"


class SinkSettings(ServiceSettings):
    application: ClassVar[str] = "kafka-to-elastic"

    sink: SinkOptions = SinkOptions()
    search: SearchSettings = SearchSettings()
    admin: AdminSettings = AdminSettings(port=8082)
