"""What the config server counts: requests by kind and outcome, refused logins, bad ciphers."""

from prometheus_client import Counter

REQUESTS = Counter(
    "tweetpipe_config_requests_total",
    "Config server requests by kind (environment, document, encrypt, decrypt) and outcome",
    ["kind", "outcome"],
)
AUTH_FAILURES = Counter(
    "tweetpipe_config_auth_failures_total", "Requests refused for missing or wrong credentials"
)
INVALID_CIPHERS = Counter(
    "tweetpipe_config_invalid_ciphers_total",
    "{cipher} values that could not be decrypted (served as invalid.<key>)",
)
SERVED = Counter(
    "tweetpipe_config_environments_served_total",
    "Environments served, by application and profiles: which service read which profile "
    "(callers are authenticated, so the label values are the deployment's own names)",
    ["application", "profiles"],
)
