"""The sandbox's server process: moto's WSGI app on 127.0.0.1, quiet, stopped by SIGTERM.

Run as `python -m replctl.sandbox.server --port N --state-dir DIR`; `replctl sandbox start` does
that in the background and waits until it answers. Before serving, the emulator's models are
adapted where moto diverges from AWS in what services publish to EventBridge and how EventBridge
delivers it (`replctl.sandbox.adapt.eventbridge`); events routed to Lambda functions
wait in DIR's asynchronous invocation queue (`replctl.sandbox.asyncinvoke`).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any


def _stop(signum: int, frame: Any) -> None:  # pragma: no cover - runs in the child process
    sys.exit(0)


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - runs in the child process
    parser = argparse.ArgumentParser(prog="replctl-sandbox-server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", required=True, help="the sandbox's state folder (queues live there)")
    args = parser.parse_args(argv)

    # One access-log line per request (and a traceback per emulator 500) would bury the log.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    from replctl.sandbox.adapt.eventbridge import install_emulator_adaptations
    from replctl.sandbox.asyncinvoke import FileQueue

    install_emulator_adaptations(FileQueue(Path(args.state_dir)).put)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":  # pragma: no cover
    main()
