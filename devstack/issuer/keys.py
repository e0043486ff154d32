"""The issuer's RSA signing key, kept on disk so tokens survive a restart of the stack."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from joserfc.jwk import RSAKey

log = logging.getLogger(__name__)


def load_or_create(path: Path) -> RSAKey:
    if path.exists():
        pem = path.read_bytes()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = RSAKey.generate_key(2048, private=True).as_pem(private=True)
        path.write_bytes(pem)
        path.chmod(0o600)
        log.info("generated a new signing key at %s", path)
    kid = hashlib.sha256(pem).hexdigest()[:16]
    return RSAKey.import_key(pem, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
