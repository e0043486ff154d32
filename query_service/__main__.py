import sys

from query_service.app import run
from query_service.settings import QuerySettings

if __name__ == "__main__":
    sys.exit(run(QuerySettings()))
