"""The single-machine profile's stand-ins: never part of the production image.

The Tansu broker launcher, the Keycloak-compatible dev issuer, the Eureka-protocol registry, the
Prometheus launcher and the `tweetpipe up` supervisor that runs the whole pipeline on one machine.
The shared core (`tweetpipe`) imports this package in one place only, the `tweetpipe up`
command, and only when it runs; the services never do.
"""
