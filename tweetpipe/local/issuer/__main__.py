import sys

from tweetpipe.local.issuer.app import IssuerSettings, run

if __name__ == "__main__":
    sys.exit(run(IssuerSettings()))
