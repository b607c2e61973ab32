"""A copy of the repository's deployment files and a PATH whose `az` and `func` are the recording stand-in.

Each test gets its own tenant and subscription (fake_az.py's JSON state) and its own copy of infra/*.sh, so
the scripts' state folder (.local/azure/...) never touches the working tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra_scripts.fake_az import CONTRACT_OUTPUTS, CONTRACT_PARAMETERS

ROOT = Path(__file__).resolve().parents[2]
FAKE = Path(__file__).resolve().parent / "fake_az.py"
TENANT = "7a0b0c0d-1111-4222-8333-944455556666"
SUBSCRIPTION = "5e6f7a8b-2222-4333-8444-a55566667777"
ENV_NAME = "contoso-saas"
APP_FILES = ("function_app.py", "host.json", "requirements.txt", ".funcignore")


def contract_template() -> str:
    """A stand-in for infra/resources.bicep with the agreed parameters and outputs, when it is not here."""
    lines = ["// The interface of infra/resources.bicep the deployment scripts rely on (test copy only)."]
    for name, required in CONTRACT_PARAMETERS.items():
        if name in ("sessionSecret", "ssoClientSecret"):
            lines.append("@secure()")
        lines.append(f"param {name} string" + ("" if required else " = ''"))
    lines += [f"output {name} string = ''" for name in CONTRACT_OUTPUTS]
    return "\n".join(lines) + "\n"


@dataclass
class Cloud:
    repo: Path
    tmp: Path
    state_path: Path
    log_path: Path
    env: dict[str, str]

    def run(self, script: str, *, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [str(self.repo / "infra" / script)],
            cwd=self.repo,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and completed.returncode != 0:
            raise AssertionError(
                f"{script} failed ({completed.returncode})\n--- stdout\n{completed.stdout}"
                f"\n--- stderr\n{completed.stderr}"
            )
        return completed

    def calls(self, tool: str = "az") -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        return [call for call in map(json.loads, lines) if call["tool"] == tool]

    def commands(self) -> list[str]:
        """The az commands that ran, in order (`ad app create`, ...), failed attempts included."""
        return [call.get("command", "?") for call in self.calls()]

    def forget_calls(self) -> None:
        self.log_path.unlink(missing_ok=True)

    @property
    def state(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text(encoding="utf-8"))

    def change(self, **values: Any) -> None:
        state = self.state
        state.update(values)
        self.state_path.write_text(json.dumps(state), encoding="utf-8")

    def app_named(self, name: str) -> dict[str, Any]:
        (app,) = [app for app in self.state["applications"] if app["displayName"] == name]
        return app

    @property
    def state_dir(self) -> Path:
        return self.repo / ".local" / "azure" / ENV_NAME


@pytest.fixture
def cloud(tmp_path: Path) -> Cloud:
    repo = tmp_path / "repo"
    (repo / "infra").mkdir(parents=True)
    for script in (ROOT / "infra").glob("*.sh"):
        shutil.copy2(script, repo / "infra" / script.name)
    # Both entry points: deploy.sh deploys resources.bicep; main.bicep (azd's, subscription scope) is there
    # too, as in the repository, so that a script taking the wrong one is refused as ARM refuses it.
    for name in ("main.bicep", "resources.bicep"):
        if (ROOT / "infra" / name).exists():
            shutil.copy2(ROOT / "infra" / name, repo / "infra" / name)
    if not (repo / "infra" / "resources.bicep").exists():
        (repo / "infra" / "resources.bicep").write_text(contract_template(), encoding="utf-8")
    for name in APP_FILES:
        shutil.copy2(ROOT / name, repo / name)

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("az", "func"):
        shim = bin_dir / tool
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" {tool} "$@"\n', encoding="utf-8")
        shim.chmod(0o755)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    state_path = tmp_path / "cloud.json"
    state_path.write_text(
        json.dumps(
            {
                "account": {
                    "id": SUBSCRIPTION,
                    "tenantId": TENANT,
                    "name": "Contoso marketplace",
                    "user": {"name": "ops@contoso.example", "type": "user"},
                },
                "propagation_lag": 0,
            }
        ),
        encoding="utf-8",
    )
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TMPDIR": str(scratch),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),
        "FAKE_AZ_STATE": str(state_path),
        "FAKE_AZ_LOG": str(tmp_path / "calls.jsonl"),
        "AZURE_ENV_NAME": ENV_NAME,
        "AZ_RETRY_DELAYS": "0 0 0 0",
        "PUBLISH_RETRY_DELAYS": "0 0",
    }
    if os.environ.get("AZ_CALLS_EXPORT"):
        env["AZ_CALLS_EXPORT"] = os.environ["AZ_CALLS_EXPORT"]
    return Cloud(repo, scratch, state_path, tmp_path / "calls.jsonl", env)
