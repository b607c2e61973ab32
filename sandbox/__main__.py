"""Command line: `python -m sandbox [--http-port 7080] [--https-port 7443] [--state-dir .local/sandbox] ...`.

Starts the sandbox for `make dev`, prints where everything is, and stops cleanly on Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from sandbox.server import RunningSandbox, start_sandbox


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="Plays Microsoft for the publisher."
    )
    parser.add_argument("--http-port", type=int, default=7080, help="plain HTTP port (control page)")
    parser.add_argument("--https-port", type=int, default=7443, help="HTTPS port (Entra, Fulfillment API)")
    parser.add_argument("--state-dir", type=Path, default=Path(".local/sandbox"), help="kept across restarts")
    # None keeps what a restored state says; an empty state starts with SandboxSettings' defaults.
    parser.add_argument("--webhook-url", default=None, help="default http://127.0.0.1:7071/api/webhook")
    parser.add_argument("--landing-url", default=None, help="default http://127.0.0.1:7071/api/landing")
    parser.add_argument("--identities", type=Path, default=None, help="identities JSON (default: example)")
    parser.add_argument("--catalog", type=Path, default=None, help="catalog JSON loaded into an empty state")
    parser.add_argument("--auto-accept-seconds", type=float, default=None, help="change window (default 10)")
    return parser.parse_args(argv)


def _describe(sandbox: RunningSandbox) -> str:
    publisher = sandbox.publisher
    return "\n".join(
        [
            f"Sandbox control page    {sandbox.http_url}/",
            f"Fulfillment API base    {sandbox.fulfillment_base_url}",
            f"Entra authority         {sandbox.https_url}/{publisher.tenant_id}",
            f"CA bundle (trust it)    {sandbox.ca_bundle}",
            f"Publisher tenant        {publisher.tenant_id}",
            f"Publisher client id     {publisher.client_id} (its secret is in the identities file)",
            f"Webhook URL             {sandbox.marketplace.settings.webhook_url}",
            f"Landing page URL        {sandbox.marketplace.settings.landing_url}",
            "Stop with Ctrl+C.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    overrides = {} if args.auto_accept_seconds is None else {"auto_accept_seconds": args.auto_accept_seconds}
    sandbox = start_sandbox(
        http_port=args.http_port,
        https_port=args.https_port,
        state_dir=args.state_dir,
        identities_path=args.identities,
        catalog_path=args.catalog,
        webhook_url=args.webhook_url,
        landing_url=args.landing_url,
        **overrides,
    )
    stopping = threading.Event()

    def request_stop(signal_number: int, _frame: FrameType | None) -> None:
        logging.getLogger("sandbox").info("signal %d: stopping", signal_number)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(_describe(sandbox), flush=True)
    stopping.wait()
    sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
