"""A single-node Kafka broker (KRaft, combined mode) run from Apache Kafka's jars on Maven Central.

No Docker and no tarball: `resolve()` has Maven copy `org.apache.kafka:kafka_2.13` and its runtime
classpath (plus a log4j2 backend) into `<home>/kafka/lib`, and `start()` runs `kafka.Kafka` from
there with plain `java -cp "<lib>/*"`, detached from the calling process. Data lives under
`<home>/kafka/data` and survives restarts, kills included.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import uuid
from importlib import resources
from pathlib import Path

from risklab.stack._common import (
    LOOPBACK,
    ComponentStatus,
    StackError,
    ensure_port_free,
    file_lock,
    live_process,
    read_pid,
    signal_process,
    tail,
    wait_gone,
)

KAFKA_VERSION = "4.1.1"
MIN_JAVA = 17
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
JVM_OPTS = [
    "-Xms512m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]
# Jars that must be in the lib folder for it to count as complete (besides the marker file).
_REQUIRED_JARS = ("kafka_2.13-", "kafka-clients-", "kafka-server-", "scala-library-", "log4j-core-")
_MARKER = ".resolved"
_LOG4J2_BROKER = """\
# Written by risklab.stack.kafka on every start.
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
"""
_LOG4J2_TOOLS = """\
# Written by risklab.stack.kafka: the storage tool logs only warnings, to stderr.
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
"""


def pom_path() -> Path:
    """The packaged POM listing the broker's classpath."""
    path = Path(str(resources.files("risklab.stack") / "kafka-pom.xml"))
    if not path.is_file():
        raise StackError(f"packaged Kafka POM not found at {path}")
    return path


def find_java() -> str:
    """The `java` executable (JAVA_HOME first, then PATH), checked to be Java 17 or newer."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    if found := shutil.which("java"):
        candidates.append(found)
    for java in candidates:
        if Path(java).is_file():
            break
    else:
        raise StackError(
            "Java is needed to run the local Kafka broker but no `java` was found (JAVA_HOME or PATH). "
            f"Install a JRE {MIN_JAVA}+ (e.g. `apt-get install openjdk-17-jre-headless`)."
        )
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"`{java} -version` failed: {exc}") from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match:
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8.0_x"
            major = int(match.group(2))
        if major < MIN_JAVA:
            raise StackError(
                f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+, but {java} is Java {major}. "
                "Set JAVA_HOME to a newer JDK/JRE."
            )
    return java


def find_maven() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Maven is needed once to fetch the Kafka broker's jars from Maven Central, but `mvn` is not on "
            "PATH. Install it (e.g. `apt-get install maven`) or put the jars in the lib folder yourself."
        )
    return mvn


def new_cluster_id() -> str:
    """A KRaft cluster id in Kafka's Uuid text form (URL-safe base64 of 16 random bytes, unpadded).

    Like Kafka's own `Uuid.randomUuid`, ids that start with '-' are drawn again: command-line tools
    would read such an id as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


class KafkaBroker:
    """One local Kafka broker in KRaft combined mode (broker + controller), on the loopback address."""

    def __init__(self, home: Path, port: int, controller_port: int, *, partitions: int = 6) -> None:
        self.home = Path(home).absolute()
        self.port = port
        self.controller_port = controller_port
        self.partitions = partitions
        self.dir = self.home / "kafka"
        self.lib = self.dir / "lib"
        self.data = self.dir / "data"
        self.config = self.dir / "server.properties"
        self.log4j = self.dir / "log4j2.properties"
        self.tools_log4j = self.dir / "tools-log4j2.properties"
        self.log = self.dir / "broker.log"
        self.pid_file = self.dir / "broker.pid"
        self.cluster_id_file = self.dir / "cluster.id"
        self._child: subprocess.Popen[bytes] | None = None

    # -- addresses and state -------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def pid(self) -> int | None:
        """The broker's pid when it is running (as started from this home), else None."""
        pid = read_pid(self.pid_file)
        return pid if live_process(pid, "kafka.Kafka", str(self.config)) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def status(self) -> ComponentStatus:
        pid = self.pid()
        return ComponentStatus(name="kafka", running=pid is not None, pid=pid, address=self.bootstrap)

    # -- classpath ----------------------------------------------------------------------

    def _pom_digest(self, pom: Path) -> str:
        return hashlib.sha256(pom.read_bytes()).hexdigest()

    def is_resolved(self) -> bool:
        marker = self.lib / _MARKER
        if not marker.is_file():
            return False
        if marker.read_text().strip() != self._pom_digest(pom_path()):
            return False
        names = [p.name for p in self.lib.glob("*.jar")]
        return all(any(n.startswith(prefix) for n in names) for prefix in _REQUIRED_JARS)

    def resolve(self) -> bool:
        """Fetch the broker's jars into `<home>/kafka/lib` unless already there; True when Maven ran."""
        if self.is_resolved():
            return False
        pom = pom_path()
        mvn = find_maven()
        if self.lib.exists():
            shutil.rmtree(self.lib)
        self.lib.mkdir(parents=True)
        cmd = [
            mvn,
            "-B",
            "-q",
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={self.lib}",
            "-f",
            str(pom),
        ]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=900, cwd=self.dir, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"Maven did not finish resolving the Kafka jars within 15 min: {' '.join(cmd)}") from exc
        if proc.returncode != 0:
            out = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
            raise StackError(
                f"Maven failed ({proc.returncode}) to resolve Kafka {KAFKA_VERSION} jars into {self.lib}:\n"
                f"$ {' '.join(cmd)}\n{out}"
            )
        (self.lib / _MARKER).write_text(self._pom_digest(pom) + "\n")
        if not self.is_resolved():
            found = sorted(p.name for p in self.lib.glob("*.jar"))
            raise StackError(f"Maven ran but {self.lib} lacks the broker's jars; found: {found}")
        return True

    # -- configuration --------------------------------------------------------------------

    def server_properties(self) -> str:
        c = self.controller_port
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{LOOPBACK}:{c}",
            "listeners": f"PLAINTEXT://{LOOPBACK}:{self.port},CONTROLLER://{LOOPBACK}:{c}",
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data),
            "auto.create.topics.enable": "false",
            "num.partitions": str(self.partitions),
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "delete.topic.enable": "true",
            # A restart after a crash (SIGKILL) waits until the controller fences the old incarnation
            # of the broker: 9 s by default, about 6 s with these.
            "broker.session.timeout.ms": "6000",
            "broker.heartbeat.interval.ms": "1000",
        }
        lines = ["# Written by risklab.stack.kafka on every start; edits are overwritten."]
        lines += [f"{k}={v}" for k, v in props.items()]
        return "\n".join(lines) + "\n"

    def _write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self.server_properties())
        self.log4j.write_text(_LOG4J2_BROKER)
        self.tools_log4j.write_text(_LOG4J2_TOOLS)

    def _classpath(self) -> str:
        return f"{self.lib}/*"

    def _format_storage(self, java: str) -> None:
        """Format the KRaft log directory once (a formatted directory is left as it is)."""
        if (self.data / "meta.properties").is_file():
            return
        if self.cluster_id_file.is_file():
            cluster_id = self.cluster_id_file.read_text().strip()
        else:
            cluster_id = new_cluster_id()
            self.cluster_id_file.write_text(cluster_id + "\n")
        cmd = [
            java,
            f"-Dlog4j2.configurationFile={self.tools_log4j}",
            "-cp",
            self._classpath(),
            "kafka.tools.StorageTool",
            "format",
            "-g",
            f"--cluster-id={cluster_id}",  # one token, so an id that starts with '-' is not read as an option
            "-c",
            str(self.config),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise StackError(
                f"formatting Kafka storage in {self.data} failed ({proc.returncode}):\n"
                f"$ {' '.join(cmd)}\n{(proc.stdout + proc.stderr).strip()}"
            )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> bool:
        """Start the broker and wait until it answers a metadata request.

        Returns False when it was already running (it is then reused), True when started here.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.dir / ".lock"):
            if self.is_running():
                if self.config.is_file() and self.config.read_text() != self.server_properties():
                    raise StackError(
                        f"a Kafka broker from {self.dir} is running with other settings (ports?) than asked "
                        f"for ({self.bootstrap}); stop it first (`risklab stack down`)"
                    )
                self.wait_ready(timeout)
                return False
            ensure_port_free(self.port, "Kafka broker")
            ensure_port_free(self.controller_port, "Kafka controller")
            java = find_java()
            self.resolve()
            self._write_config()
            self._format_storage(java)
            cmd = [
                java,
                *JVM_OPTS,
                f"-Dlog4j2.configurationFile={self.log4j}",
                "-cp",
                self._classpath(),
                "kafka.Kafka",
                str(self.config),
            ]
            with self.log.open("ab") as log:
                log.write(f"\n==== risklab: starting Kafka broker at {time.ctime()} ====\n".encode())
                log.flush()
                offset = log.tell()
                self._child = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.dir,
                    start_new_session=True,
                    close_fds=True,
                )
            self.pid_file.write_text(f"{self._child.pid}\n")
            try:
                self.wait_ready(timeout, log_offset=offset)
            except StackError:
                self.kill()
                raise
            return True

    def wait_ready(self, timeout: float = START_TIMEOUT, *, log_offset: int = 0) -> None:
        """Wait until the broker answers a metadata request listing itself; StackError on timeout/exit."""
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while True:
            pid = read_pid(self.pid_file)
            if live_process(pid, "kafka.Kafka") is None:
                code = None
                if self._child is not None and self._child.pid == pid:
                    code = self._child.poll()
                raise StackError(
                    f"the Kafka broker exited during start-up (exit code {code}); log {self.log}:\n"
                    f"{tail(self.log, 40, log_offset)}"
                )
            try:
                if metadata_ready(LOOPBACK, self.port, timeout=5.0):
                    return
                last_error = "metadata answer listed no broker yet"
            except OSError as exc:
                last_error = str(exc)
            if time.monotonic() >= deadline:
                raise StackError(
                    f"the Kafka broker did not become ready on {self.bootstrap} within {timeout:.0f} s "
                    f"(last probe: {last_error}); log {self.log}:\n{tail(self.log, 40, log_offset)}"
                )
            time.sleep(0.25)

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """SIGTERM (controlled shutdown), SIGKILL after `timeout`; False when it was not running."""
        with file_lock(self.dir / ".lock"):
            pid = self.pid()
            if pid is None:
                self._reap()
                return False
            signal_process(pid, signal.SIGTERM)
            if not wait_gone(pid, timeout, self._child):
                signal_process(pid, signal.SIGKILL)
                wait_gone(pid, 30.0, self._child)
            self._reap()
            return True

    def kill(self) -> bool:
        """SIGKILL the broker at once (a crash, for fault tests); False when it was not running."""
        pid = self.pid()
        if pid is None:
            self._reap()
            return False
        signal_process(pid, signal.SIGKILL)
        if not wait_gone(pid, 30.0, self._child):
            raise StackError(f"Kafka broker pid {pid} survived SIGKILL")
        self._reap()
        return True

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        self.stop()
        self.start(timeout)

    def _reap(self) -> None:
        if self._child is not None and self._child.poll() is not None:
            self._child = None


# -- a minimal Kafka wire-protocol probe ---------------------------------------------------
# Metadata v1 (non-flexible) with an empty topic list: "which brokers are there?". Supported by
# every broker from 0.10 to 4.x; a KRaft broker lists itself only once it is registered and
# unfenced, i.e. ready for clients.


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        buf += chunk
    return bytes(buf)


def metadata_ready(host: str, port: int, timeout: float = 5.0) -> bool:
    """True when the broker at host:port answers a Metadata request listing at least one broker."""
    client_id = b"risklab-stack-probe"
    correlation = 0x5157
    header = struct.pack(">hhih", 3, 1, correlation, len(client_id)) + client_id
    body = struct.pack(">i", 0)  # topics: empty array -> no topic metadata (v1+)
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        data = _recv_exact(sock, size)
    (got_correlation, n_brokers) = struct.unpack(">ii", data[:8])
    if got_correlation != correlation:
        raise ConnectionError(f"unexpected correlation id {got_correlation}")
    return n_brokers > 0
