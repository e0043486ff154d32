from __future__ import annotations

from typing import ClassVar

from tweetpipe.settings import AdminSettings, BatchOptions, SearchSettings, ServiceSettings


class SinkOptions(BatchOptions):
    group_id: str = "kafka-to-elastic"


class SinkSettings(ServiceSettings):
    application: ClassVar[str] = "kafka-to-elastic"

    sink: SinkOptions = SinkOptions()
    search: SearchSettings = SearchSettings()
    admin: AdminSettings = AdminSettings(port=8082)
