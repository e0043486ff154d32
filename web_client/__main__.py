"""`python -m web_client`: check the settings, then become the Streamlit server for `app.py`.

Streamlit runs headless on `admin.host:admin.port` (default 127.0.0.1:8501), without usage
statistics or file watching; its health probe is `GET /_stcore/health`. The process replaces
itself with `python -m streamlit run …`, so signals (Ctrl-C, SIGTERM) reach Streamlit directly.
Streamlit's own log lines go to stdout with the app's JSON lines.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from tweetpipe.logs import configure_logging
from web_client.settings import WebClientSettings

APP = Path(__file__).resolve().parent / "app.py"
log = logging.getLogger("web_client")


def streamlit_command(settings: WebClientSettings) -> list[str]:
    options = {
        "server.headless": "true",
        "server.address": settings.admin.host,
        "server.port": str(settings.admin.port),
        "server.fileWatcherType": "none",
        "server.runOnSave": "false",
        "browser.gatherUsageStats": "false",
        "global.developmentMode": "false",
        "client.toolbarMode": "minimal",
        "client.showErrorDetails": "type",
        "logger.level": settings.log_level.lower(),
    }
    flags = [f"--{name}={value}" for name, value in options.items()]
    return [sys.executable, "-m", "streamlit", "run", str(APP), *flags]


def main() -> int:
    try:
        settings = WebClientSettings()
    except ValidationError as exc:
        print(f"web-client: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging("web-client", settings.log_level, settings.log_file)
    log.info(
        "starting the web client on http://%s:%d (public URL %s; gateway %s; issuer %s)",
        settings.admin.host,
        settings.admin.port,
        settings.base_url,
        settings.gateway_url,
        settings.oidc.issuer_url,
    )
    sys.stdout.flush()
    os.dup2(sys.stdout.fileno(), sys.stderr.fileno())
    command = streamlit_command(settings)
    os.execv(command[0], command)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
