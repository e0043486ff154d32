import sys

from kafka_streams.app import run
from kafka_streams.settings import StreamsSettings

if __name__ == "__main__":
    sys.exit(run(StreamsSettings()))
