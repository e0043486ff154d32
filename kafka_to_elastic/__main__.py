import sys

from kafka_to_elastic.app import run
from kafka_to_elastic.settings import SinkSettings

if __name__ == "__main__":
    sys.exit(run(SinkSettings()))
