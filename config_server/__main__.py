import sys

from pydantic import ValidationError

from config_server.app import run
from config_server.settings import ConfigServerSettings

if __name__ == "__main__":
    try:
        settings = ConfigServerSettings()
    except ValidationError as exc:
        sys.exit(f"config-server: invalid settings:\n{exc}")
    sys.exit(run(settings))
