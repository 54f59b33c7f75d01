"""Neo4j 5.26 embedded in a tiny launcher (Neo4jLauncher.java) with only Bolt enabled."""

from __future__ import annotations

import hashlib
import shutil
import socket

from neo4j import GraphDatabase

from vip.settings import REPO_ROOT, Settings
from vip.stack.maven import MARKER_NAME, classpath, ensure_jars, java_tool
from vip.stack.service import Launch
from vip.stack.steps import run_step

JAVA_DIR = REPO_ROOT / "vip" / "stack" / "java" / "neo4j"
POM = JAVA_DIR / "pom.xml"
LAUNCHER_SOURCE = JAVA_DIR / "Neo4jLauncher.java"
LAUNCHER_CLASS = "Neo4jLauncher"
COMPILE_TIMEOUT_S = 300.0

# Neo4j's own launcher passes these: Netty and the page cache reach into JDK internals.
JDK_OPENS = (
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
)


class Neo4jService:
    name = "neo4j"
    start_timeout_s = 120.0

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.port = settings.neo4j_port
        self.jars_dir = settings.jars_dir / "neo4j"
        self.launcher_dir = settings.cache_dir / "neo4j-launcher"
        self.home = settings.data_dir / "neo4j"

    @property
    def bolt_uri(self) -> str:
        return f"bolt://{self._settings.host}:{self.port}"

    def prepare(self) -> None:
        ensure_jars(POM, self.jars_dir)
        self._compile_launcher()
        self.home.mkdir(parents=True, exist_ok=True)

    def _compile_launcher(self) -> None:
        """javac the launcher once per (source, jar set).

        Java's single-file source mode would recompile it against 200+ jars on every start,
        which measured 2-4 s of extra wall time here; javac once costs about the same.
        """
        digest = hashlib.sha256(LAUNCHER_SOURCE.read_bytes())
        digest.update((self.jars_dir / MARKER_NAME).read_bytes())
        wanted = digest.hexdigest()
        marker = self.launcher_dir / ".vip-source.sha256"
        if marker.is_file() and marker.read_text().strip() == wanted:
            return
        shutil.rmtree(self.launcher_dir, ignore_errors=True)
        self.launcher_dir.mkdir(parents=True)
        command = [
            java_tool("javac"),
            "--release",
            "17",
            "-d",
            str(self.launcher_dir),
            "-cp",
            classpath(self.jars_dir / "*"),
            str(LAUNCHER_SOURCE),
        ]
        run_step(command, f"javac {LAUNCHER_SOURCE.name}", COMPILE_TIMEOUT_S)
        marker.write_text(wanted + "\n")

    def launch(self) -> Launch:
        settings = self._settings
        argv = [
            java_tool(),
            f"-Xmx{settings.neo4j_heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:-OmitStackTraceInFastThrow",
            "-XX:+ExitOnOutOfMemoryError",
            # Neo4j's defaults: cap the JDK's per-thread cache of temporary direct buffers and
            # skip log4j's JMX beans.
            "-Djdk.nio.maxCachedBufferSize=1024",
            "-Dlog4j2.disable.jmx=true",
            "-Djava.awt.headless=true",
            *JDK_OPENS,
            "-cp",
            classpath(self.jars_dir / "*", self.launcher_dir),
            LAUNCHER_CLASS,
            "--home",
            str(self.home),
            "--bolt",
            f"{settings.host}:{self.port}",
            "--pagecache",
            settings.neo4j_pagecache,
        ]
        # cwd is the home too, so nothing (a JVM crash file included) lands in the caller's cwd.
        return Launch(argv=argv, cwd=self.home)

    def is_ready(self) -> bool:
        try:
            with socket.create_connection((self._settings.host, self.port), timeout=0.5):
                pass
        except OSError:
            return False
        try:
            with GraphDatabase.driver(self.bolt_uri, auth=None, connection_timeout=2.0) as driver:
                driver.verify_connectivity()
                # Bolt can accept connections a moment before the home database is online.
                driver.execute_query("RETURN 1")
        except Exception:
            return False
        return True

    def version(self) -> str:
        try:
            with GraphDatabase.driver(self.bolt_uri, auth=None, connection_timeout=2.0) as driver:
                records, _, _ = driver.execute_query(
                    "CALL dbms.components() YIELD name, versions, edition "
                    "WHERE name = 'Neo4j Kernel' RETURN versions[0] AS version, edition"
                )
        except Exception:
            return "?"
        if not records:
            return "?"
        return f"{records[0]['version']} {records[0]['edition']}"
