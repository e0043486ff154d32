import sys

from tweetpipe.local.issuer.app import run
from tweetpipe.local.issuer.settings import IssuerSettings

if __name__ == "__main__":
    sys.exit(run(IssuerSettings()))
