import sys

from gateway.app import run
from gateway.settings import GatewaySettings

if __name__ == "__main__":
    sys.exit(run(GatewaySettings()))
