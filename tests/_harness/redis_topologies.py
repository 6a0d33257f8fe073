"""Real Redis topologies from the Debian packages: a Sentinel-managed primary with a replica,
and a Redis Cluster. Every process listens on 127.0.0.1, persists nothing and is killed on exit.

`redis-cli` (redis-tools) does the admin steps: it is what an operator would run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import TracebackType

from tests._harness.net import free_port, wait_until
from tests._harness.redis import RedisServer

SENTINEL_HINT = "redis-sentinel not found: `apt-get install redis-sentinel` (.ci/run does it)"


def cli(port: int, *args: str, timeout: float = 5.0) -> str:
    """One redis-cli command against 127.0.0.1:port; its output ('' if it could not connect)."""
    binary = shutil.which("redis-cli")
    assert binary is not None, "redis-cli not found: `apt-get install redis-tools`"
    done = subprocess.run(
        [binary, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout.strip()


class SentinelSet:
    """One primary, `replicas` replicas and `sentinels` Sentinels (quorum: a majority) watching
    `service`. Failure detection is set short (`down_after_ms`) so a failover takes seconds."""

    def __init__(
        self,
        directory: Path,
        *,
        replicas: int = 1,
        sentinels: int = 3,
        service: str = "mymaster",
        down_after_ms: int = 500,
    ) -> None:
        self.directory = directory
        self.service = service
        self.down_after_ms = down_after_ms
        self.primary = RedisServer(directory / "primary", tcp=True)
        self.replicas = [
            RedisServer(
                directory / f"replica{i}",
                tcp=True,
                extra=["--replicaof", "127.0.0.1", str(self.primary.port)],
            )
            for i in range(replicas)
        ]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.quorum = sentinels // 2 + 1
        self._sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def addresses(self) -> str:
        """The value of ROUTEIQ_REDIS_SENTINELS."""
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def nodes(self) -> list[RedisServer]:
        return [self.primary, *self.replicas]

    def start(self) -> SentinelSet:
        binary = shutil.which("redis-sentinel")
        if binary is None:
            raise FileNotFoundError(SENTINEL_HINT)
        try:
            return self._start(binary)
        except BaseException:
            self.stop()
            raise

    def _start(self, binary: str) -> SentinelSet:
        self.primary.start()
        for replica in self.replicas:  # the primary's port is known only once it has started
            replica.extra = ["--replicaof", "127.0.0.1", str(self.primary.port)]
            replica.start()
        for replica in self.replicas:
            assert replica.port is not None
            port = replica.port
            wait_until(
                lambda port=port: "master_link_status:up" in cli(port, "info", "replication"),  # type: ignore[misc]
                10,
                "replica in sync",
            )
        for i, port in enumerate(self.sentinel_ports):
            folder = self.directory / f"sentinel{i}"
            folder.mkdir(parents=True, exist_ok=True)
            conf = folder / "sentinel.conf"  # Sentinel rewrites its config: a file of its own
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} {self.quorum}\n"
                f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.service} 5000\n",
                encoding="utf-8",
            )
            self._sentinels.append(
                subprocess.Popen(
                    [binary, str(conf), "--loglevel", "warning"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        # Ready once every Sentinel knows the replicas and the other Sentinels: only then can
        # they agree on a failover.
        others = str(len(self.sentinel_ports) - 1)
        for port in self.sentinel_ports:
            wait_until(
                lambda port=port: (  # type: ignore[misc]
                    cli(port, "sentinel", "master", self.service).count("\n") > 0
                    and _field(cli(port, "sentinel", "master", self.service), "num-other-sentinels") == others
                    and _field(cli(port, "sentinel", "master", self.service), "num-slaves")
                    == str(len(self.replicas))
                ),
                20,
                f"sentinel on {port} sees the topology",
                interval=0.1,
            )
        return self

    def primary_port(self) -> int:
        """Where the Sentinels say the primary is now."""
        out = cli(self.sentinel_ports[0], "sentinel", "get-master-addr-by-name", self.service)
        return int(out.splitlines()[1])

    def kill_primary(self) -> int:
        """SIGKILL whichever node is the primary now; returns its port."""
        port = self.primary_port()
        for node in self.nodes():
            if node.port == port:
                node.kill()
        return port

    def wait_failover(self, old_port: int, timeout: float = 30) -> float:
        def moved() -> bool:
            try:
                port = self.primary_port()
            except (IndexError, ValueError):
                return False
            return port != old_port and "role:master" in cli(port, "info", "replication")

        return wait_until(moved, timeout, "sentinel failover", interval=0.05)

    def stop(self) -> None:
        for process in self._sentinels:
            process.kill()
            process.wait()
        self._sentinels.clear()
        for node in self.nodes():
            node.kill()

    def __enter__(self) -> SentinelSet:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _field(reply: str, name: str) -> str | None:
    """A field of a redis-cli flat key/value reply (one item per line)."""
    lines = reply.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line == name:
            return lines[i + 1]
    return None


class RedisClusterNodes:
    """`primaries` cluster-mode redis-servers, each with `replicas_each` replicas, joined with
    `redis-cli --cluster create`. The URL names one node; the client discovers the rest."""

    def __init__(self, directory: Path, *, primaries: int = 3, replicas_each: int = 1) -> None:
        self.directory = directory
        self.replicas_each = replicas_each
        self.nodes = [
            RedisServer(directory / f"node{i}", tcp=True, extra=self._options(directory / f"node{i}"))
            for i in range(primaries * (1 + replicas_each))
        ]

    @staticmethod
    def _options(folder: Path) -> list[str]:
        # The bus port is set, else it is the port + 10000, which may be past 65535; a node
        # timeout of 1 s makes a failover take seconds; any replica may be promoted.
        return [
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(folder / "nodes.conf"),
            "--cluster-port", str(free_port()),
            "--cluster-node-timeout", "1000",
            "--cluster-replica-validity-factor", "0",
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> RedisClusterNodes:
        try:
            return self._start()
        except BaseException:
            self.stop()  # no node left running (and no process object dropped while it runs)
            raise

    def _start(self) -> RedisClusterNodes:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        binary = shutil.which("redis-cli")
        assert binary is not None
        subprocess.run(
            [binary, "--cluster", "create", *addresses,
             "--cluster-replicas", str(self.replicas_each), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        for node in self.nodes:
            assert node.port is not None
            port = node.port
            wait_until(
                lambda port=port: "cluster_state:ok" in cli(port, "cluster", "info"),  # type: ignore[misc]
                20,
                "cluster state ok",
                interval=0.1,
            )
        return self

    def port_of_slot(self, slot: int) -> int:
        """The primary serving `slot` now."""
        assert self.nodes[0].port is not None
        for node in self.nodes:
            if node.process is None or node.port is None:
                continue
            for line in cli(node.port, "cluster", "nodes").splitlines():
                parts = line.split()
                if "master" not in parts[2] or "fail" in parts[2]:
                    continue
                for span in parts[8:]:
                    lo, _, hi = span.partition("-")
                    if lo.isdigit() and int(lo) <= slot <= int(hi or lo):
                        return int(parts[1].split(":")[1].split("@")[0])
            break
        raise LookupError(f"no primary serves slot {slot}")

    def kill_port(self, port: int) -> None:
        for node in self.nodes:
            if node.port == port:
                node.kill()

    def wait_promoted(self, slot: int, old_port: int, timeout: float = 30) -> float:
        def moved() -> bool:
            try:
                return self.port_of_slot(slot) != old_port and all(
                    "cluster_state:ok" in cli(n.port, "cluster", "info")
                    for n in self.nodes
                    if n.process is not None and n.port is not None
                )
            except LookupError:
                return False

        return wait_until(moved, timeout, "cluster failover", interval=0.1)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()

    def __enter__(self) -> RedisClusterNodes:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


__all__ = ["RedisClusterNodes", "SentinelSet", "cli"]
