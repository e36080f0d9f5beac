#!/usr/bin/env python3
"""Start the visdom server on 127.0.0.1, offline-ready.

Puts visdom's static files in place first (``tools/visdom_setup.py``; instant
when they already are), checks the port is free, then replaces this process
with ``python -m visdom.server -bind_local -port PORT -env_path DIR``.  The
server only listens on 127.0.0.1: reach it from another machine through an SSH
tunnel (``ssh -L 8097:localhost:8097 host``) rather than opening it up.

Usage::

    python tools/visdom_server.py [--port 8097] [--env-path ~/.visdom] [--check]

``--check`` does everything except starting the server (exit 0 when ready).
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import visdom_setup  # noqa: E402  (sibling module; tools/ is not a package)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def server_command(port: int, env_path: str) -> list[str]:
    """The visdom server command line, always bound to 127.0.0.1."""
    return [sys.executable, "-m", "visdom.server", "-bind_local", "-port", str(port),
            "-env_path", env_path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start visdom on 127.0.0.1 (offline-ready).")
    parser.add_argument("--port", type=int, default=int(os.environ.get("VISDOM_PORT", 8097)))
    parser.add_argument("--env-path", default=os.path.expanduser("~/.visdom"),
                        help="where the server saves environments (default ~/.visdom)")
    parser.add_argument("--check", action="store_true", help="set up and check only; do not start")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        print(f"visdom_server: error: port {args.port} is not in 1..65535", file=sys.stderr)
        return 2
    try:
        visdom_setup.install()
    except Exception as exc:
        print(f"visdom_server: error: could not install visdom's static files: {exc}", file=sys.stderr)
        return 1
    if not port_free(args.port):
        print(f"visdom_server: error: port {args.port} on 127.0.0.1 is already in use "
              f"(a visdom server may already be running: open http://localhost:{args.port}; "
              f"or pick another with --port)", file=sys.stderr)
        return 1
    env_path = os.path.join(os.path.abspath(args.env_path), "")  # visdom joins with '/'
    os.makedirs(env_path, exist_ok=True)
    cmd = server_command(args.port, env_path)
    if args.check:
        print("ready: " + " ".join(cmd))
        return 0
    print(f"visdom: http://localhost:{args.port} (bound to 127.0.0.1; Ctrl-C stops it)", flush=True)
    os.execv(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
