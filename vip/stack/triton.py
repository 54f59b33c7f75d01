"""NVIDIA Triton Inference Server, run from the binary that the nvidia-pytriton wheel bundles.

The server and its python-backend models live in their own Python 3.11 environment
(``venvs/triton`` under the cache directory), installed from ``triton_models/requirements*.txt``:
nvidia-pytriton needs numpy<2 while the project uses numpy 2, and in production Triton runs in
its own container anyway.
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

# The python-backend stub is built per Python minor version; 3.11 is the one we install.
PYTHON_VERSION = "3.11"
REQUIREMENTS = "requirements.txt"
REQUIREMENTS_NO_DEPS = "requirements-nodeps.txt"
_MARKER = ".vip-requirements.sha256"
_INSTALL_TIMEOUT_S = 1800


class TritonService:
    name = "triton"
    start_timeout_s = 120.0

    def __init__(
        self,
        settings: Settings,
        *,
        model_config_name: str | None = None,
        models: list[str] | None = None,
    ) -> None:
        """``model_config_name="gpu"`` loads each model's ``configs/gpu.pbtxt`` (KIND_GPU);
        ``models`` limits which models load (default: every folder with a config.pbtxt)."""
        self._settings = settings
        self._models = models
        self.port = settings.triton_http_port
        self.model_config_name = model_config_name
        self.models_dir = settings.triton_models_dir
        self.venv_dir = settings.venvs_dir / "triton"
        self.backends_dir = settings.state_dir / "triton" / "backends"

    # Paths inside the Triton environment ----------------------------------------------------
    @property
    def _site_packages(self) -> Path:
        return self.venv_dir / "lib" / f"python{PYTHON_VERSION}" / "site-packages"

    @property
    def _pytriton_server_dir(self) -> Path:
        return self._site_packages / "pytriton" / "tritonserver"

    @property
    def executable(self) -> Path:
        return self._pytriton_server_dir / "bin" / "tritonserver"

    def _backend_files(self) -> dict[str, Path]:
        server = self._pytriton_server_dir
        return {
            "libtriton_python.so": server / "backends" / "python" / "libtriton_python.so",
            "triton_python_backend_utils.py": (
                server / "backends" / "python" / "triton_python_backend_utils.py"
            ),
            "triton_python_backend_stub": (
                server / "python_backend_stubs" / PYTHON_VERSION / "triton_python_backend_stub"
            ),
        }

    def _requirement_files(self) -> tuple[list[Path], list[Path]]:
        """(resolved together, installed --no-deps): the base files plus one file per
        capability under requirements.d/ (``*.nodeps.txt`` for weight-carrier packages)."""
        extra = sorted((self.models_dir / "requirements.d").glob("*.txt"))
        resolved = [self.models_dir / REQUIREMENTS]
        resolved += [p for p in extra if not p.name.endswith(".nodeps.txt")]
        no_deps = [self.models_dir / REQUIREMENTS_NO_DEPS]
        no_deps += [p for p in extra if p.name.endswith(".nodeps.txt")]
        return resolved, no_deps

    def _requirements_digest(self) -> str:
        digest = hashlib.sha256(f"python{PYTHON_VERSION}\n".encode())
        resolved, no_deps = self._requirement_files()
        for path in [*resolved, *no_deps]:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()

    # Service protocol -----------------------------------------------------------------------
    def prepare(self) -> None:
        self._install_environment()
        self._link_backend()

    def _install_environment(self) -> None:
        marker = self.venv_dir / _MARKER
        wanted = self._requirements_digest()
        python = self.venv_dir / "bin" / "python"
        if python.exists() and marker.exists() and marker.read_text().strip() == wanted:
            return
        beside = Path(sys.executable).parent / "uv"
        uv = str(beside) if beside.exists() else shutil.which("uv")
        if uv is None:
            raise SetupFailed("triton: `uv` is not on PATH; it installs the Triton environment")
        if not python.exists():
            self._run([uv, "venv", "--clear", "--python", PYTHON_VERSION, str(self.venv_dir)])
        marker.unlink(missing_ok=True)
        resolved, no_deps = self._requirement_files()
        self._run([uv, "pip", "install", *(arg for p in resolved for arg in ("-r", str(p)))])
        self._run(
            [uv, "pip", "install", "--no-deps", *(arg for p in no_deps for arg in ("-r", str(p)))]
        )
        missing = [
            str(p) for p in [self.executable, *self._backend_files().values()] if not p.exists()
        ]
        if missing:
            raise SetupFailed(f"triton: installed, but these files are missing: {missing}")
        marker.write_text(wanted + "\n")

    def _run(self, argv: list[str]) -> None:
        env = {**os.environ, "VIRTUAL_ENV": str(self.venv_dir)}
        env.pop("UV_PROJECT_ENVIRONMENT", None)
        run_step(argv, f"triton: `{' '.join(argv)}`", _INSTALL_TIMEOUT_S, env=env)

    def _link_backend(self) -> None:
        # Symlinks, not copies: a copied stub makes the server hang while loading a model.
        python_backend = self.backends_dir / "python"
        python_backend.mkdir(parents=True, exist_ok=True)
        for name, target in self._backend_files().items():
            if not target.exists():
                raise SetupFailed(f"triton: {target} is missing; delete {self.venv_dir} and retry")
            link = python_backend / name
            if link.is_symlink() and link.readlink() == target:
                continue
            staged = python_backend / f".{name}.new"
            staged.unlink(missing_ok=True)
            staged.symlink_to(target)
            staged.replace(link)

    def model_names(self) -> list[str]:
        if self._models is not None:
            return list(self._models)
        return sorted(p.parent.name for p in self.models_dir.glob("*/config.pbtxt"))

    def launch(self) -> Launch:
        settings = self._settings
        host = settings.host
        argv = [
            str(self.executable),
            "--model-repository", str(self.models_dir),
            "--backend-directory", str(self.backends_dir),
            "--http-address", host,
            "--http-port", str(settings.triton_http_port),
            "--grpc-address", host,
            "--grpc-port", str(settings.triton_grpc_port),
            "--metrics-address", host,
            "--metrics-port", str(settings.triton_metrics_port),
            "--log-verbose", "0",
            "--exit-timeout-secs", "10",
            # Explicit mode: only folders with a config.pbtxt are models (the repository also
            # holds requirement files and READMEs, which the default mode would try to load).
            "--model-control-mode", "explicit",
        ]  # fmt: skip
        argv += [f"--load-model={name}" for name in self.model_names()]
        if self.model_config_name:
            argv += ["--model-config-name", self.model_config_name]

        # The stub embeds libpython: it needs the base interpreter's lib/ and, to find the
        # environment's site-packages, the environment's python first on PATH.
        library_path = [
            str(self._base_python_lib()),
            str(self._site_packages / "nvidia_pytriton.libs"),
        ]
        inherited_library_path = os.environ.get("LD_LIBRARY_PATH")
        if inherited_library_path:
            library_path.append(inherited_library_path)
        env = {
            "LD_LIBRARY_PATH": os.pathsep.join(library_path),
            "PATH": os.pathsep.join([str(self.venv_dir / "bin"), os.environ.get("PATH", "")]),
            "VIRTUAL_ENV": str(self.venv_dir),
            "PYTHONNOUSERSITE": "1",
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "2",
        }
        working_dir = settings.state_dir / "triton"
        working_dir.mkdir(parents=True, exist_ok=True)
        return Launch(argv=argv, env=env, cwd=working_dir)

    def _base_python_lib(self) -> Path:
        """``sys.base_prefix/lib`` of the environment's interpreter, read from pyvenv.cfg."""
        config = self.venv_dir / "pyvenv.cfg"
        try:
            lines = config.read_text().splitlines()
        except OSError as error:
            raise SetupFailed(f"triton: {config} is unreadable; run prepare() first") from error
        for line in lines:
            key, _, value = line.partition("=")
            if key.strip() == "home":
                return Path(value.strip()).parent / "lib"
        raise SetupFailed(f"triton: {config} names no `home` interpreter")

    def is_ready(self) -> bool:
        return answers_ok(f"{self._base_url}/v2/health/ready")

    def version(self) -> str:
        try:
            response = httpx.get(f"{self._base_url}/v2", timeout=1.0)
            response.raise_for_status()
            return f"tritonserver {response.json()['version']}"
        except (httpx.HTTPError, ValueError, KeyError):
            return "?"

    @property
    def _base_url(self) -> str:
        host = self._settings.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"
