import sys

from devstack.issuer.app import run
from devstack.issuer.settings import IssuerSettings

if __name__ == "__main__":
    sys.exit(run(IssuerSettings()))
