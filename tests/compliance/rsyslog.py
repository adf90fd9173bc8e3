"""rsyslog from Debian as the SIEM's syslog receiver: TLS (RFC 5425) and plain TCP on loopback ports, UDP too,
every message written as received, one per line, to a file the tests read."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.helpers import free_port
from tests.tls import server_files

SERVER_NAME = "siem.bank.test"
CONFIG = """
global(workDirectory="{work}" maxMessageSize="64k" DefaultNetstreamDriverCAFile="{ca}"
       DefaultNetstreamDriverCertFile="{cert}" DefaultNetstreamDriverKeyFile="{key}")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" name="tls" port="{tls_port}" address="127.0.0.1"
      StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" name="tcp" port="{tcp_port}" address="127.0.0.1")
input(type="imudp" name="udp" port="{udp_port}" address="127.0.0.1")
template(name="received" type="string" string="%inputname% %rawmsg%\\n")
action(type="omfile" file="{out}" template="received")
"""


class Rsyslog:
    def __init__(self, folder: Path):
        self.folder = folder
        (folder / "work").mkdir(parents=True, exist_ok=True)
        self.tls = server_files(folder, SERVER_NAME, dns=(SERVER_NAME,))
        self.tls_port, self.tcp_port, self.udp_port = free_port(), free_port(), free_port()
        self.out = folder / "received.log"
        self.config = folder / "rsyslog.conf"
        self.config.write_text(
            CONFIG.format(
                work=folder / "work",
                ca=self.tls.ca,
                cert=self.tls.cert,
                key=self.tls.key,
                tls_port=self.tls_port,
                tcp_port=self.tcp_port,
                udp_port=self.udp_port,
                out=self.out,
            )
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
        log = (self.folder / "rsyslogd.log").open("a")
        self.process = subprocess.Popen(
            [binary, "-n", "-f", str(self.config), "-i", str(self.folder / "rsyslogd.pid")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while not self._listening():
            assert self.process.poll() is None, (self.folder / "rsyslogd.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "rsyslogd did not listen within 20 s"
            time.sleep(0.1)

    def _listening(self) -> bool:
        for port in (self.tls_port, self.tcp_port):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) != 0:
                    return False
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def received(self, transport: str | None = None) -> list[str]:
        """The messages received so far (on ``transport``: "tls", "tcp" or "udp"), in order."""
        if not self.out.exists():
            return []
        lines = self.out.read_text(encoding="utf-8", errors="replace").splitlines()
        found = [line.split(" ", 1) for line in lines if " " in line]
        return [text for name, text in found if transport is None or name == transport]

    def seqs(self, transport: str | None = None) -> list[int]:
        """The chain positions of the received messages, in the order they arrived."""
        return [int(m.group(1)) for text in self.received(transport) if (m := re.search(r' seq="(\d+)"', text))]

    def wait_for(self, predicate, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"rsyslog did not receive it within {timeout} s: {self.received()[-5:]}"
            time.sleep(0.1)
