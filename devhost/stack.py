"""`python -m devhost.stack` (`make dev`): Azurite, the marketplace sandbox and the dev host, until Ctrl-C.

Each child writes to its own log under `<data>/logs/`; all data (Azurite tables, sandbox state and TLS
files, the local queue) lives under `<data>` (DEVHOST_STATE_DIR, default `.local`, git-ignored), so a second
run carries on where the first stopped. Ports come from AZURITE_PORT, SANDBOX_HTTP_PORT, SANDBOX_HTTPS_PORT
and DEVHOST_PORT (defaults 10002, 7080, 7443, 7071). Ctrl-C or SIGTERM stops every child (newest first:
terminate, wait, kill after a timeout) and exits 0; a port already in use, or a child that dies, exits 1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO

from devhost import PROJECT_ROOT, stack_variables
from devhost.parent_death import die_with_parent

AZURITE = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-table"
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
HOST = "127.0.0.1"


class StackError(RuntimeError):
    """The stack cannot run; the message says what to do about it."""


@dataclass
class Service:
    """One child process of the stack and the ports that say it is ready."""

    name: str
    command: list[str]
    ports: tuple[int, ...]
    log_path: Path
    env: Mapping[str, str] | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    prepare: Callable[[], None] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_file: IO[bytes] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path
    azurite_port: int
    sandbox_http_port: int
    sandbox_https_port: int
    devhost_port: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StackConfig:
        values = stack_variables(env)
        try:
            return cls(
                state_dir=Path(values["DEVHOST_STATE_DIR"]),
                azurite_port=int(values["AZURITE_PORT"]),
                sandbox_http_port=int(values["SANDBOX_HTTP_PORT"]),
                sandbox_https_port=int(values["SANDBOX_HTTPS_PORT"]),
                devhost_port=int(values["DEVHOST_PORT"]),
            )
        except ValueError as exc:
            raise StackError(f"ports must be whole numbers: {exc}") from exc

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def webhook_url(self) -> str:
        return f"http://{HOST}:{self.devhost_port}/api/webhook"

    @property
    def trust_bundle(self) -> Path:
        return self.state_dir / "sandbox" / "tls" / "trust-bundle.pem"

    @property
    def landing_url(self) -> str:
        return f"http://{HOST}:{self.devhost_port}/api/landing"


def azurite_log_flags(env: Mapping[str, str]) -> tuple[str, ...]:
    """Azurite's access log (a line per request) is off unless AZURITE_ACCESS_LOG asks for it: writing it
    cost about 15% of Azurite's CPU per request, on the cores the app and the sandbox share."""
    wanted = env.get("AZURITE_ACCESS_LOG", "").strip().lower() in {"1", "true", "yes"}
    return () if wanted else ("--silent",)


def build_services(config: StackConfig, env: Mapping[str, str]) -> list[Service]:
    """The children in start order: storage first, then Microsoft's stand-in, then the app that uses both."""
    child_env = {**env, "PYTHONUNBUFFERED": "1", **_stack_env(config)}
    return [
        Service(
            name="azurite",
            command=[
                str(AZURITE),
                *("--tableHost", HOST, "--tablePort", str(config.azurite_port)),
                *("--location", str(config.state_dir / "azurite")),
                *("--disableTelemetry", "--skipApiVersionCheck", "--loose"),
                *azurite_log_flags(env),
            ],
            ports=(config.azurite_port,),
            log_path=config.logs_dir / "azurite.log",
            # Azurite saves its tables on SIGINT only; SIGTERM would lose the last seconds of writes.
            stop_signal=signal.SIGINT,
        ),
        Service(
            name="sandbox",
            command=[
                sys.executable,
                *("-m", "sandbox"),
                *(
                    "--http-port",
                    str(config.sandbox_http_port),
                    "--https-port",
                    str(config.sandbox_https_port),
                ),
                *("--state-dir", str(config.state_dir / "sandbox"), "--webhook-url", config.webhook_url),
                *("--landing-url", config.landing_url),
            ],
            ports=(config.sandbox_http_port, config.sandbox_https_port),
            log_path=config.logs_dir / "sandbox.log",
            env=child_env,
        ),
        Service(
            name="devhost",
            command=[sys.executable, "-m", "devhost"],
            ports=(config.devhost_port,),
            log_path=config.logs_dir / "devhost.log",
            env={**child_env, "REQUESTS_CA_BUNDLE": str(config.trust_bundle)},
            prepare=lambda: _write_trust_bundle(config),
        ),
    ]


def _write_trust_bundle(config: StackConfig) -> None:
    # The environment often sets REQUESTS_CA_BUNDLE to the system bundle, which would win over dev.env;
    # the dev host gets that bundle plus the sandbox CA, so it trusts both the sandbox and real hosts.
    from sandbox.tls import ensure_certificates, write_trust_bundle

    write_trust_bundle(ensure_certificates(config.trust_bundle.parent), config.trust_bundle)


def _stack_env(config: StackConfig) -> dict[str, str]:
    # The dev host fills dev.env's ${...} from these, so its URLs follow the ports chosen here.
    return {
        "AZURITE_PORT": str(config.azurite_port),
        "SANDBOX_HTTP_PORT": str(config.sandbox_http_port),
        "SANDBOX_HTTPS_PORT": str(config.sandbox_https_port),
        "DEVHOST_PORT": str(config.devhost_port),
        "DEVHOST_STATE_DIR": str(config.state_dir),
    }


def ports_in_use(services: list[Service]) -> list[str]:
    """One line per port that some other program listens on already (or that two services share)."""
    problems = []
    seen: dict[int, str] = {}
    for service in services:
        for port in service.ports:
            if port in seen:
                problems.append(f"port {port} is set for both {seen[port]} and {service.name}")
            elif not _port_free(port):
                problems.append(f"port {port} ({service.name}) is already in use on {HOST}")
            seen[port] = service.name
    return problems


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: a socket of our own previous run in TIME_WAIT is not "in use"; a listener is.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def start(service: Service) -> None:
    service.log_path.parent.mkdir(parents=True, exist_ok=True)
    service.log_file = service.log_path.open("ab")
    service.log_file.write(f"\n=== {service.name} started {datetime.now(UTC).isoformat()} ===\n".encode())
    service.log_file.flush()
    service.process = subprocess.Popen(
        service.command,
        cwd=PROJECT_ROOT,
        env=dict(service.env) if service.env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=service.log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # If the stack is killed outright its children stop too (they run in their own session, so a
        # terminal's Ctrl-C reaches only the stack, which stops them in order).
        preexec_fn=die_with_parent(),
    )


def wait_ready(service: Service, stop: threading.Event, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Returns once every port of the service accepts connections; StackError if it dies or takes too long."""
    deadline = time.monotonic() + timeout
    pending = list(service.ports)
    while pending and not stop.is_set():
        _raise_if_exited(service)
        if time.monotonic() > deadline:
            raise StackError(
                f"{service.name} did not listen on port {pending[0]} within {timeout:.0f}s; "
                f"see {service.log_path}"
            )
        if _accepts(pending[0]):
            pending.pop(0)
        else:
            stop.wait(0.1)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _raise_if_exited(service: Service) -> None:
    assert service.process is not None
    code = service.process.poll()
    if code is not None:
        raise StackError(
            f"{service.name} exited with status {code}; see {service.log_path}\n{_tail(service.log_path)}"
        )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def stop_all(services: list[Service], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """Newest first, so the app stops before what it depends on: ask it to stop, wait, then kill."""
    for service in reversed(services):
        process = service.process
        if process is not None and process.poll() is None:
            process.send_signal(service.stop_signal)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if service.log_file is not None:
            service.log_file.close()


def summary(config: StackConfig, services: list[Service]) -> str:
    rows = [
        ("Marketplace sandbox", f"http://{HOST}:{config.sandbox_http_port}/"),
        (
            "Entra ID stand-in",
            f"https://{HOST}:{config.sandbox_https_port}/ (CA: {config.state_dir}/sandbox/tls/ca.pem)",
        ),
        ("Function app", f"http://{HOST}:{config.devhost_port}/api/health"),
        (
            "Operations console",
            f"http://{HOST}:{config.devhost_port}/api/console (Olivia: admin, Ravi: reader)",
        ),
        ("Azurite tables", f"http://{HOST}:{config.azurite_port}/devstoreaccount1"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = ["Local stack is running; Ctrl-C stops it.", ""]
    lines += [f"  {name.ljust(width)}  {url}" for name, url in rows]
    lines += ["", "Logs:"] + [f"  {service.log_path}" for service in services]
    lines += [f"Data: {config.state_dir}"]
    return "\n".join(lines)


def _on_signals(handler: Callable[[], None]) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        handler()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def run(env: Mapping[str, str], stop: threading.Event) -> int:
    config = StackConfig.from_env(env)
    services = build_services(config, env)
    problems = ports_in_use(services)
    if problems:
        raise StackError(
            "cannot start the local stack:\n  "
            + "\n  ".join(problems)
            + "\nStop the other program, or choose other ports with AZURITE_PORT, SANDBOX_HTTP_PORT, "
            "SANDBOX_HTTPS_PORT or DEVHOST_PORT."
        )
    if not AZURITE.exists():
        raise StackError(f"Azurite is not installed at {AZURITE}: run `npm ci` (make install does)")
    try:
        for service in services:
            if stop.is_set():
                break
            if service.prepare is not None:
                service.prepare()
            start(service)
            wait_ready(service, stop)
        if not stop.is_set():
            print(summary(config, services), flush=True)
        return _supervise(services, stop)
    finally:
        stop_all(services)


def _supervise(services: list[Service], stop: threading.Event) -> int:
    while not stop.wait(0.5):
        for service in services:
            _raise_if_exited(service)
    return 0


def main() -> int:
    stop = threading.Event()
    _on_signals(stop.set)
    try:
        code = run(os.environ, stop)
    except StackError as exc:
        print(f"devhost.stack: {exc}", file=sys.stderr, flush=True)
        return 1
    print("Local stack stopped.", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
