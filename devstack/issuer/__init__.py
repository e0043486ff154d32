"""The dev issuer: a Keycloak-compatible OpenID provider for the single-machine profile only.

It reads the same realm export Keycloak imports in the cluster (`infra/keycloak/`), serves
Keycloak's URL layout and issues RS256 JWTs, so services and clients (python-keycloak, the
web client) work unchanged against either. It keeps sessions and refresh tokens in memory and
binds to loopback unless explicitly allowed otherwise: it is not a production identity server.
"""
