"""The sandbox's server process: moto's WSGI app on 127.0.0.1, quiet, stopped by SIGTERM.

Run as `python -m replctl.sandbox.server --port N`; `replctl sandbox start` does that in the
background and waits until it answers.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any


def _stop(signum: int, frame: Any) -> None:  # pragma: no cover - runs in the child process
    sys.exit(0)


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - runs in the child process
    parser = argparse.ArgumentParser(prog="replctl-sandbox-server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    # One access-log line per request (and a traceback per emulator 500) would bury the log.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":  # pragma: no cover
    main()
