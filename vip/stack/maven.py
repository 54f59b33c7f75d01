"""Fetch a POM's runtime jars from Maven Central into a cache folder, once per POM version."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from vip.stack.errors import SetupFailed
from vip.stack.steps import run_step

MARKER_NAME = ".vip-pom.sha256"
MAVEN_TIMEOUT_S = 1200.0


def file_digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_jars(pom: Path, dest: Path) -> Path:
    """Make ``dest`` hold exactly the jars ``pom`` depends on; returns ``dest``.

    A marker in ``dest`` records the POM's hash, so a repeat call returns at once and an edited
    POM refetches. Jars are copied into a sibling folder that replaces ``dest`` only after Maven
    succeeds, so an interrupted fetch never leaves a half-filled classpath or a stale version.
    """
    wanted = file_digest(pom)
    marker = dest / MARKER_NAME
    if marker.is_file() and marker.read_text().strip() == wanted:
        return dest
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SetupFailed(f"Maven (mvn) is not on PATH; it is needed to fetch the jars of {pom}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        mvn,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
    ]
    try:
        run_step(command, f"mvn fetching the jars of {pom}", MAVEN_TIMEOUT_S)
        if not any(staging.glob("*.jar")):
            raise SetupFailed(f"mvn fetched no jars for {pom}")
    except SetupFailed:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (staging / MARKER_NAME).write_text(wanted + "\n")
    retired = dest.with_name(dest.name + ".old")
    shutil.rmtree(retired, ignore_errors=True)
    if dest.exists():
        dest.rename(retired)
    staging.rename(dest)
    shutil.rmtree(retired, ignore_errors=True)
    return dest


def java_tool(tool: str = "java") -> str:
    """``$JAVA_HOME/bin/<tool>`` when JAVA_HOME is set (as Kafka's and Neo4j's scripts do),
    else ``<tool>`` from PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / tool
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(tool)
    if found is None:
        raise SetupFailed(f"{tool} is not on PATH and JAVA_HOME is unset; install a Java 17 JDK")
    return found


def classpath(*entries: Path | str) -> str:
    return os.pathsep.join(str(entry) for entry in entries)
