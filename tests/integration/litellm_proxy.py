"""A real `litellm --config` proxy on 127.0.0.1 for the proxy tests (marker `proxy`)."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import httpx

from tests._harness import clean_env, free_port, http_ok, wait_until

BUDGET_MS = 1000  # generous: this machine is shared; speed is measured in bench/, not here


class Proxy:
    def __init__(self, sidecar_url: str, workdir: Path, config: Path, **env: str) -> None:
        self.key = "sk-" + secrets.token_hex(32)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = {
            "LITELLM_MASTER_KEY": self.key,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "ROUTEIQ_CLIENT_URL": sidecar_url,
            "ROUTEIQ_CLIENT_DEADLINE_MS": str(BUDGET_MS),
            "ROUTEIQ_CLIENT_FEEDBACK_INTERVAL_S": "0.1",
        }
        env = clean_env(**(settings | env))
        litellm_cli = Path(sys.executable).parent / "litellm"
        self.log_path = workdir / "proxy.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                str(litellm_cli),
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=env,
            cwd=workdir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {self.key}"}, timeout=30, trust_env=False
        )

    def post(self, path: str, body: dict[str, object], profile: str | None = None) -> httpx.Response:
        headers = {"x-routeiq-profile": profile} if profile else {}
        return self.http.post(path, json=body, headers=headers)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the proxy answers its liveness probe; else stop it and fail with its log."""
        try:
            wait_until(
                lambda: http_ok(self.url + "/health/liveliness"),
                timeout,
                "litellm proxy",
                interval=0.1,
                alive=lambda: None if self.alive() else f"exited with {self.proc.returncode}",
            )
        except (TimeoutError, RuntimeError):
            self.stop()
            raise RuntimeError(self.output()[-4000:]) from None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
