import sys

from twitter_to_kafka.app import run
from twitter_to_kafka.settings import GeneratorSettings

if __name__ == "__main__":
    sys.exit(run(GeneratorSettings()))
