"""A real devnet for the SDK's tests: anvil with the market deployed (`stp devnet up`), and
three `stp provider run` nodes staked through the SDK, the third lying on purpose
(`--fault wrong-result`, so the `stp` binary must be built with `fault-injection`).

The binary is `$STP_BIN`, else `debug/stp` in this repository's target dir (`$CARGO_TARGET_DIR`); anvil comes from the
repository's node_modules (`npm ci`). Anything missing fails the tests: nothing is skipped.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sharethepower as stp

ROOT = Path(__file__).resolve().parents[3]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
KEY_LINE = re.compile(r"^  \((\d+)\) (0x[0-9a-fA-F]{40})  (0x[0-9a-f]{64})$", re.M)
NODE_UP = re.compile(r"provider node up peer_id=(\S+) addrs=\[([^\],]+)")

# The tests pass the chain, deployment and keys explicitly; nothing from the caller's shell.
for _var in ("ETH_RPC_URL", "STP_DEPLOYMENT", "STP_PRIVATE_KEY", "STP_KEYSTORE", "STP_KEYSTORE_PASSWORD", "STP_CONSUMER_DIR"):
    os.environ.pop(_var, None)

# Provider i stakes STAKES[i]; the liar holds half the stake so the draw picks it at once.
STAKES = {1: "1", 2: "1", 3: "2"}
LIAR = 3


def stp_bin() -> Path:
    target = ROOT / os.environ.get("CARGO_TARGET_DIR", "target")
    path = Path(os.environ.get("STP_BIN", target / "debug" / "stp"))
    if not path.is_file():
        pytest.fail(
            f"{path} not found: build it with `cargo build -p stp-node --bin stp --features fault-injection`"
        )
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    if "fault-injection" not in version:
        pytest.fail(f"{path} lacks the fault-injection feature ({version.strip()!r}): rebuild it with --features fault-injection")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(path: Path, pattern: re.Pattern[str], proc: subprocess.Popen, secs: float) -> re.Match[str]:
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        text = ANSI.sub("", path.read_text(errors="replace")) if path.exists() else ""
        if m := pattern.search(text):
            return m
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"
    pytest.fail(f"{path.name}: {pattern.pattern!r} did not appear (exit {proc.poll()}):\n{tail}")


@dataclass
class Devnet:
    """The running devnet: its RPC URL, deployment file, dev keys and provider nodes."""

    dir: Path
    rpc_url: str
    deployment: Path
    keys: list[str]
    addresses: list[str]
    bootstrap: str = ""
    procs: list[subprocess.Popen] = field(default_factory=list)

    def market(self, account: int, **kw) -> stp.Market:
        """The market as dev account `account`, its consumer node bootstrapped from node 1."""
        kw.setdefault("consumer_dir", self.dir / f"consumer{account}")
        if self.bootstrap:
            kw.setdefault("bootstrap", [self.bootstrap])
        return stp.Market.connect(
            rpc_url=self.rpc_url, deployment=self.deployment, private_key=self.keys[account], **kw
        )

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start(devnet: Devnet, binary: Path, args: list[str], log: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STP_") and k != "RUST_LOG"}
    env.setdefault("XDG_RUNTIME_DIR", str(devnet.dir))
    env.update(ETH_RPC_URL=devnet.rpc_url, STP_DEPLOYMENT=str(devnet.deployment))
    out = open(devnet.dir / log, "wb")
    p = subprocess.Popen([binary, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    devnet.procs.append(p)
    return p


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory):
    binary = stp_bin()
    d = tmp_path_factory.mktemp("devnet")
    os.chmod(d, 0o700)
    port = free_port()
    net = Devnet(d, f"http://127.0.0.1:{port}", d / "deployments" / "31337.json", [], [])
    try:
        chain = start(net, binary, ["devnet", "up", "--port", str(port), "--out", str(d / "deployments")], "devnet.log")
        wait_for(d / "devnet.log", re.compile("Press Ctrl-C"), chain, 60)
        found = KEY_LINE.findall((d / "devnet.log").read_text())
        assert len(found) >= 10, "could not read the dev keys from devnet.log"
        net.addresses = [a for _, a, _ in found]
        net.keys = [k for _, _, k in found]
        for i, amount in STAKES.items():
            net.market(i).stake(amount)
            args = ["provider", "run", "--private-key", net.keys[i], "--data-dir", str(d / f"provider{i}"), "--poll-ms", "200"]
            if net.bootstrap:
                args += ["--bootstrap", net.bootstrap]
            if i == LIAR:
                args += ["--fault", "wrong-result"]
            node = start(net, binary, args, f"provider{i}.log")
            up = wait_for(d / f"provider{i}.log", NODE_UP, node, 90)
            if i == 1:
                net.bootstrap = f"{up.group(2)}/p2p/{up.group(1)}"
        # A stake counts in the draw of jobs posted in later blocks.
        time.sleep(1)
        yield net
    finally:
        net.stop()
