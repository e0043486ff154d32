import sys

from analytics_service.app import run
from analytics_service.settings import AnalyticsSettings

if __name__ == "__main__":
    sys.exit(run(AnalyticsSettings()))
