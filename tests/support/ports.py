import socket

_handed_out: set[int] = set()
"""Ports already given to a test in this session: the kernel may offer a port again as soon as
the probing socket closes, and two servers of one stack then race for it."""


def free_port() -> int:
    """A port nothing listens on right now and no earlier call returned (bind to port 0)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
