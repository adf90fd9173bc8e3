"""Host checks: each host agent's report (agent/README.md lists its facts), judged against the thresholds.

The report is fetched once per run and agent (``report_of``); the runner checks agents one after another, so only
the current agent's report is kept in memory. An agent that does not answer is the finding of
``hosts.agent.reachable``; every other host check is then "not checked" with the agent's sentence, as is a check
whose collector failed on the host (``hosts.agent.collectors`` reports those).

Counters that only mean something as a change (network errors and drops) and the cron entries are kept as
measurements of the run (``ctx.record``) and compared with the previous run that measured the same agent.
"""

from __future__ import annotations

import hashlib
import math
import re

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from apps.core.deferred import N_
from apps.core.deferred import text as D
from apps.inspection.agents import AgentError, fetch_report
from apps.inspection.checks.base import CannotCheck, Domain, Finding, Severity, check
from apps.inspection.models import HostAgent, Measurement

HOSTS = Domain.HOSTS

# Kernel parameters a Kubernetes node of a bank is expected to hold: the values the kubelet's
# --protect-kernel-defaults insists on, what pod networking and busy nodes need, and the CIS benchmark's network
# hardening. (rule, value): "==" exactly, ">=" at least, "<=" at most. A template overrides a value with the
# threshold "sysctl.<name>" (for example "sysctl.vm.swappiness": 60).
BASELINE: dict[str, tuple[str, float]] = {
    "vm.swappiness": ("<=", 10),
    "net.ipv4.ip_forward": ("==", 1),
    "net.bridge.bridge-nf-call-iptables": ("==", 1),
    "fs.file-max": (">=", 1_048_576),
    "fs.inotify.max_user_watches": (">=", 524_288),
    "fs.inotify.max_user_instances": (">=", 8192),
    "vm.max_map_count": (">=", 262_144),
    "vm.overcommit_memory": ("==", 1),
    "vm.panic_on_oom": ("==", 0),
    "kernel.panic": ("==", 10),
    "kernel.panic_on_oops": ("==", 1),
    "kernel.randomize_va_space": ("==", 2),
    "net.ipv4.tcp_syncookies": ("==", 1),
    "net.ipv4.conf.all.accept_redirects": ("==", 0),
    "net.ipv4.conf.all.accept_source_route": ("==", 0),
}
RULE_WORDS = {"==": "", ">=": "≥ ", "<=": "≤ "}

# Interfaces that are per pod, per container or a tunnel's inside: their counters say little about the host and a
# node has hundreds of them.
VIRTUAL_INTERFACES = (
    "lo", "veth", "cali", "lxc", "cni", "flannel", "docker", "kube-", "tunl", "vxlan", "genev", "cilium", "br-",
    "virbr", "weave", "tap", "vnet", "nodelocaldns", "dummy",
)  # fmt: skip
MAX_INTERFACES = 64
MAX_CRON_LINES = 1000  # per host, for the comparison with the previous run
MAX_LISTED = 20  # entries (cron lines, zombies) named in a finding's facts
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")  # noqa: S108 (folders judged, not used)
SYSTEM_CRONTABS = re.compile(r"^/etc/crontab$|^/etc/cron\.d/")
USER_CRONTABS = re.compile(r"^/var/spool/cron/(crontabs/)?(?P<user>[^/]+)$")


def target_of(agent: HostAgent) -> str:
    # The runner's label of an agent target (runner.target_label, which this module cannot import: the runner
    # imports the catalogue, which imports the checks).
    return f"agent:{agent.name}"


# Reading the report -------------------------------------------------------------------------------------------


def _fetch(agent: HostAgent):
    try:
        return fetch_report(agent)
    except AgentError as exc:
        return exc


def report_of(ctx, agent: HostAgent) -> dict:
    """The agent's report for this run, fetched once; AgentError when it gave none."""
    current = ctx.once(("hosts", "current agent"), dict)
    if current.get("pk") != agent.pk:
        # The runner checks agents one after another: keep one report in memory, not one per host.
        ctx.forget("agent")
        current["pk"] = agent.pk
    got = ctx.once(("agent", agent.pk), lambda: _fetch(agent))
    if isinstance(got, AgentError):
        raise got
    return got


def _unreadable(agent: HostAgent, field: str) -> CannotCheck:
    sentence = N_("Host agent %(agent)s reported %(field)s in a form Kubemate cannot read.")
    return CannotCheck(D(sentence, agent=agent.name, field=field))


def facts_of(ctx, agent: HostAgent, collector: str) -> dict:
    """What ``collector`` found on the host; CannotCheck when the agent or the collector could not say."""
    try:
        report = report_of(ctx, agent)
    except AgentError as exc:
        raise CannotCheck(exc.stored) from None
    entry = report["collectors"].get(collector)
    if entry is None:
        sentence = N_("Host agent %(agent)s does not run the %(collector)s collector (see its configuration).")
        raise CannotCheck(D(sentence, agent=agent.name, collector=collector))
    if not isinstance(entry, dict):
        raise _unreadable(agent, collector)
    if not entry.get("ok"):
        sentence = N_("Host agent %(agent)s could not read %(collector)s on its host: %(error)s")
        raise CannotCheck(D(sentence, agent=agent.name, collector=collector, error=str(entry.get("error"))[:200]))
    facts = entry.get("facts")
    if not isinstance(facts, dict):
        raise _unreadable(agent, collector)
    return facts


def number(agent: HostAgent, facts: dict, key: str) -> float:
    value = facts.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _unreadable(agent, key)
    return float(value)


def items(agent: HostAgent, facts: dict, key: str, limit: int = 1024) -> list[dict]:
    value = facts.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _unreadable(agent, key)
    return [item for item in value[:limit] if isinstance(item, dict)]


def pct(ratio: float) -> str:
    return f"{ratio * 100:.1f}"


def shown(value: float) -> str:
    """A threshold or a count as people write it: 1048576, 0.5 (never 1.04858e+06)."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"


# The agent itself ---------------------------------------------------------------------------------------------


@check(
    "hosts.agent.reachable",
    HOSTS,
    Severity.CRITICAL,
    _("Host agent answers with a fresh report"),
    _(
        "A host whose agent does not answer, or answers with an old report, is not inspected at all: every other "
        "host check is skipped for it."
    ),
    _(
        "Start the agent (systemctl status kubemate-agent, or its DaemonSet pod), open port 9443 from Kubemate, and "
        "register it again if its certificate or token changed."
    ),
    target="agent",
)
def agent_reachable(ctx, agent: HostAgent):
    try:
        report = report_of(ctx, agent)
    except AgentError as exc:
        yield Finding(subject=agent.name, message=exc.stored, facts={"url": agent.url})
        return
    collected = parse_datetime(str(report.get("collected_at") or ""))
    if collected is None or collected.tzinfo is None:
        raise _unreadable(agent, "collected_at")
    limit = ctx.threshold("host.report_max_age_seconds", 300)
    age = (ctx.now - collected).total_seconds()
    if abs(age) > limit:
        sentence = N_(
            "Host agent %(agent)s sent a report collected %(seconds)s seconds away from Kubemate's clock (at most "
            "%(limit)s): the agent serves an old collection, or the host's clock is wrong."
        )
        yield Finding(
            subject=agent.name,
            message=D(sentence, agent=agent.name, seconds=abs(round(age)), limit=shown(limit)),
            facts={"collected_at": collected.isoformat(), "age_seconds": round(age)},
        )


@check(
    "hosts.agent.collectors",
    HOSTS,
    Severity.WARNING,
    _("Host agent reads everything it is asked to"),
    _(
        "A collector that fails on the host leaves its checks unchecked: a full disk or an expiring certificate "
        "would go unseen."
    ),
    _(
        "Read the error in the finding and the agent's log; usually a path the agent may not read or a collector "
        "timeout too short for the host (timeouts_ms in the agent's configuration)."
    ),
    target="agent",
)
def agent_collectors(ctx, agent: HostAgent):
    try:
        report = report_of(ctx, agent)
    except AgentError as exc:
        raise CannotCheck(exc.stored) from None
    for name, entry in sorted(report["collectors"].items())[:64]:
        if isinstance(entry, dict) and entry.get("ok"):
            continue
        error = str(entry.get("error") if isinstance(entry, dict) else "")[:200]
        sentence = N_("Host agent %(agent)s could not read %(collector)s on its host: %(error)s")
        yield Finding(
            subject=f"{agent.name}:{name}",
            message=D(sentence, agent=agent.name, collector=str(name)[:40], error=error),
            facts={"collector": str(name)[:40], "error": error},
        )


# CPU, load, memory ----------------------------------------------------------------------------------------------


@check(
    "hosts.cpu.usage",
    HOSTS,
    Severity.WARNING,
    _("CPU usage below the limit"),
    _(
        "A host whose CPUs are busy all the time answers slowly and has no room left when load peaks (month end, "
        "batch windows)."
    ),
    _("Find the busy processes (top, pidstat), move or limit workloads (CPU limits, anti-affinity), or add CPUs."),
    target="agent",
)
def cpu_usage(ctx, agent: HostAgent):
    facts = facts_of(ctx, agent, "cpu")
    usage = number(agent, facts, "usage_percent")
    limit = ctx.threshold("host.cpu_percent")
    if usage > limit:
        sentence = N_(
            "CPU usage on %(agent)s is %(percent)s%% (limit %(limit)s%%): %(user)s%% user, %(system)s%% system."
        )
        yield Finding(
            subject=agent.name,
            message=D(
                sentence,
                agent=agent.name,
                percent=f"{usage:.1f}",
                limit=shown(limit),
                user=f"{number(agent, facts, 'user_percent'):.1f}",
                system=f"{number(agent, facts, 'system_percent'):.1f}",
            ),
            facts={"usage_percent": usage, "cpus": facts.get("count"), "limit": limit},
        )


@check(
    "hosts.cpu.steal",
    HOSTS,
    Severity.WARNING,
    _("CPU time is not taken by the hypervisor"),
    _(
        "Steal is time a virtual machine wanted the CPU but the hypervisor gave it to another guest: the host is "
        "slow although it looks idle."
    ),
    _("Ask the virtualisation team to move the VM to a less loaded host or to reserve its CPUs."),
    target="agent",
)
def cpu_steal(ctx, agent: HostAgent):
    facts = facts_of(ctx, agent, "cpu")
    steal = number(agent, facts, "steal_percent")
    limit = ctx.threshold("host.steal_percent", 10)
    if steal > limit:
        sentence = N_("The hypervisor took %(percent)s%% of the CPU time of %(agent)s (limit %(limit)s%%).")
        yield Finding(
            subject=agent.name,
            message=D(sentence, agent=agent.name, percent=f"{steal:.1f}", limit=shown(limit)),
            facts={"steal_percent": steal, "limit": limit},
        )


@check(
    "hosts.load.per_cpu",
    HOSTS,
    Severity.WARNING,
    _("Load per CPU below the limit"),
    _(
        "A load above the number of CPUs means processes wait for a CPU or for the disk: everything on the host "
        "slows down."
    ),
    _("Find what waits (top, vmstat 1: r and b columns); spread the workloads or add CPUs, or fix the slow disk."),
    target="agent",
)
def load_per_cpu(ctx, agent: HostAgent):
    facts = facts_of(ctx, agent, "load")
    cpus = number(agent, facts, "cpu_count")
    if cpus < 1:
        raise _unreadable(agent, "cpu_count")
    load5 = number(agent, facts, "load5")
    per_cpu = load5 / cpus
    limit = ctx.threshold("host.load_per_cpu")
    if per_cpu > limit:
        sentence = N_(
            "The 5-minute load of %(agent)s is %(load)s on %(cpus)s CPUs, %(per_cpu)s per CPU (limit %(limit)s)."
        )
        yield Finding(
            subject=agent.name,
            message=D(
                sentence,
                agent=agent.name,
                load=shown(load5),
                cpus=int(cpus),
                per_cpu=f"{per_cpu:.2f}",
                limit=shown(limit),
            ),
            facts={"load1": facts.get("load1"), "load5": load5, "load15": facts.get("load15"), "cpus": int(cpus)},
        )


@check(
    "hosts.memory.used",
    HOSTS,
    Severity.WARNING,
    _("Memory use below the limit"),
    _("When memory runs out the kernel kills processes (the OOM killer) and the kubelet evicts pods."),
    _("Find the largest processes (ps aux --sort=-rss), set memory limits on pods, or add memory."),
    target="agent",
)
def memory_used(ctx, agent: HostAgent):
    facts = facts_of(ctx, agent, "memory")
    used = number(agent, facts, "used_ratio")
    limit = ctx.threshold("host.memory_percent")
    if used * 100 > limit:
        sentence = N_(
            "%(agent)s uses %(percent)s%% of its memory (limit %(limit)s%%); %(available)s MiB of "
            "%(total)s MiB are available."
        )
        yield Finding(
            subject=agent.name,
            message=D(
                sentence,
                agent=agent.name,
                percent=pct(used),
                limit=shown(limit),
                available=round(number(agent, facts, "available_bytes") / 2**20),
                total=round(number(agent, facts, "total_bytes") / 2**20),
            ),
            facts={"used_percent": round(used * 100, 2), "limit": limit},
        )


@check(
    "hosts.swap.used",
    HOSTS,
    Severity.WARNING,
    _("Swap use below the limit"),
    _("A host that swaps is short of memory; memory pages read back from disk make every process slow."),
    _("Find what uses the memory, add memory or move workloads; Kubernetes nodes should run without swap."),
    target="agent",
)
def swap_used(ctx, agent: HostAgent):
    facts = facts_of(ctx, agent, "memory")
    if number(agent, facts, "swap_total_bytes") <= 0:
        return
    used = number(agent, facts, "swap_used_ratio")
    limit = ctx.threshold("host.swap_percent")
    if used * 100 > limit:
        sentence = N_("%(agent)s uses %(percent)s%% of its swap (limit %(limit)s%%).")
        yield Finding(
            subject=agent.name,
            message=D(sentence, agent=agent.name, percent=pct(used), limit=shown(limit)),
            facts={"used_percent": round(used * 100, 2), "limit": limit},
        )


@check(
    "hosts.files.open",
    HOSTS,
    Severity.WARNING,
    _("Open files below the system's maximum"),
    _("When the host runs out of file handles, programs fail to open files and sockets: connections are refused."),
    _("Find the process holding the files (lsof | sort), fix the leak, or raise fs.file-max."),
    target="agent",
)
def files_open(ctx, agent: HostAgent):
    facts = facts_of(ctx, agent, "files")
    used = number(agent, facts, "used_ratio")
    limit = ctx.threshold("host.open_files_percent")
    if used * 100 > limit:
        sentence = N_("%(agent)s has %(open)s file handles open of at most %(max)s (%(percent)s%%, limit %(limit)s%%).")
        yield Finding(
            subject=agent.name,
            message=D(
                sentence,
                agent=agent.name,
                open=int(number(agent, facts, "allocated")),
                max=int(number(agent, facts, "max")),
                percent=pct(used),
                limit=shown(limit),
            ),
            facts={"used_percent": round(used * 100, 2), "limit": limit},
        )


@check(
    "hosts.processes.zombies",
    HOSTS,
    Severity.WARNING,
    _("Few zombie processes"),
    _(
        "Zombies are finished processes their parent never collected; many of them show a faulty parent and "
        "they use up process ids."
    ),
    _("Restart or fix the parent process named in the finding (its ppid); the zombies go with it."),
    target="agent",
)
def zombies(ctx, agent: HostAgent):
    facts = facts_of(ctx, agent, "zombies")
    count = int(number(agent, facts, "count"))
    limit = ctx.threshold("host.zombies")
    if count > limit:
        listed = items(agent, facts, "listed", MAX_LISTED)
        parents = sorted({str(z.get("ppid")) for z in listed})
        sentence = N_(
            "Zombie processes on %(agent)s: %(count)s (limit %(limit)s); their parent process ids: %(parents)s."
        )
        yield Finding(
            subject=agent.name,
            message=D(sentence, agent=agent.name, count=count, limit=shown(limit), parents=", ".join(parents)),
            facts={"count": count, "listed": [{k: z.get(k) for k in ("pid", "ppid", "name")} for z in listed]},
        )


# Disks -----------------------------------------------------------------------------------------------------------


def _filesystems(ctx, agent: HostAgent) -> list[dict]:
    return [
        fs
        for fs in items(agent, facts_of(ctx, agent, "disk"), "filesystems", 512)
        if not fs.get("error") and not fs.get("readonly") and isinstance(fs.get("mountpoint"), str)
    ]


@check(
    "hosts.disk.space",
    HOSTS,
    Severity.CRITICAL,
    _("Disk space below the limit on every filesystem"),
    _(
        "A full filesystem stops databases, logs and container images from being written; the kubelet evicts "
        "pods when its disks fill up."
    ),
    _("Remove old logs and images (crictl rmi --prune), move data, or grow the filesystem."),
    target="agent",
)
def disk_space(ctx, agent: HostAgent):
    limit = ctx.threshold("host.disk_percent")
    for fs in _filesystems(ctx, agent):
        used = number(agent, fs, "used_ratio")
        if used * 100 > limit:
            sentence = N_("%(mountpoint)s on %(agent)s is %(percent)s%% full (limit %(limit)s%%); %(free)s MiB free.")
            yield Finding(
                subject=f"{agent.name}:{fs['mountpoint']}",
                message=D(
                    sentence,
                    agent=agent.name,
                    mountpoint=fs["mountpoint"],
                    percent=pct(used),
                    limit=shown(limit),
                    free=round(number(agent, fs, "avail_bytes") / 2**20),
                ),
                facts={"used_percent": round(used * 100, 2), "device": str(fs.get("device"))[:200], "limit": limit},
            )


@check(
    "hosts.disk.inodes",
    HOSTS,
    Severity.CRITICAL,
    _("Free inodes on every filesystem"),
    _(
        "A filesystem out of inodes refuses new files even with space left: many small files (mail queues, "
        "sessions, cache) use them up."
    ),
    _("Find the directory with the most files (du --inodes), clean it up, or rebuild the filesystem with more inodes."),
    target="agent",
)
def disk_inodes(ctx, agent: HostAgent):
    limit = ctx.threshold("host.inode_percent")
    for fs in _filesystems(ctx, agent):
        if number(agent, fs, "inodes") <= 0:  # filesystems without a fixed inode table (btrfs) report none
            continue
        used = number(agent, fs, "inodes_used_ratio")
        if used * 100 > limit:
            sentence = N_("%(mountpoint)s on %(agent)s uses %(percent)s%% of its inodes (limit %(limit)s%%).")
            yield Finding(
                subject=f"{agent.name}:{fs['mountpoint']}",
                message=D(
                    sentence, agent=agent.name, mountpoint=fs["mountpoint"], percent=pct(used), limit=shown(limit)
                ),
                facts={"inodes_used_percent": round(used * 100, 2), "inodes": int(number(agent, fs, "inodes"))},
            )


@check(
    "hosts.disk.iowait",
    HOSTS,
    Severity.WARNING,
    _("CPUs do not wait for the disks"),
    _("A high IO wait means the disks cannot keep up: databases and logs slow down although the CPUs are free."),
    _("Find the busy disk (iostat -x 1) and the process behind it (iotop); move the load to faster storage."),
    target="agent",
)
def disk_iowait(ctx, agent: HostAgent):
    facts = facts_of(ctx, agent, "diskio")
    iowait = number(agent, facts, "iowait_ratio")
    limit = ctx.threshold("host.iowait_percent")
    if iowait * 100 > limit:
        devices = sorted(items(agent, facts, "devices"), key=lambda d: -float(d.get("util_ratio") or 0))
        busiest = str(devices[0].get("name", ""))[:64] if devices else ""
        sentence = N_("The CPUs of %(agent)s spent %(percent)s%% of their time waiting for disks (limit %(limit)s%%).")
        yield Finding(
            subject=agent.name,
            message=D(sentence, agent=agent.name, percent=pct(iowait), limit=shown(limit)),
            facts={"iowait_percent": round(iowait * 100, 2), "busiest_device": busiest, "limit": limit},
        )


# Network ---------------------------------------------------------------------------------------------------------


def _previous(target: str, anchor: str, prefix: str) -> dict[str, float] | None:
    """The measurements under ``prefix`` of the last run that measured ``anchor`` on ``target``; None when no run
    did. (Context.history reads one key; these are read as one set, in two queries.)"""
    last = (
        Measurement.objects.filter(target=target, key=anchor)
        .order_by("-measured_at")
        .values_list("run_id", flat=True)
        .first()
    )
    if last is None:
        return None
    rows = Measurement.objects.filter(run_id=last, target=target, key__startswith=prefix)
    return dict(rows.values_list("key", "value")[:5000])


def _network(ctx, agent: HostAgent) -> list[dict]:
    """Per interface: errors, drops and packets since the previous run that measured them (or since the host
    started), measured once for both network checks."""

    def build():
        facts = facts_of(ctx, agent, "network")
        target = target_of(agent)
        before = _previous(target, "net:interfaces", "net:") or {}
        out = []
        for iface in items(agent, facts, "interfaces", 4096):
            name = str(iface.get("name", ""))[:64]
            if not name or name.startswith(VIRTUAL_INTERFACES) or len(out) >= MAX_INTERFACES:
                continue
            now = {
                "packets": number(agent, iface, "rx_packets") + number(agent, iface, "tx_packets"),
                "errors": number(agent, iface, "rx_errors") + number(agent, iface, "tx_errors"),
                "drops": number(agent, iface, "rx_drops") + number(agent, iface, "tx_drops"),
            }
            for what, value in now.items():
                ctx.record(target, f"net:{name}:{what}", value)
            then = {what: before.get(f"net:{name}:{what}") for what in now}
            # A counter lower than before was reset by a restart: count from the start then.
            since_boot = any(v is None or v > now[what] for what, v in then.items())
            delta = now if since_boot else {what: now[what] - then[what] for what in now}
            out.append({"name": name, "since_boot": since_boot, **delta})
        ctx.record(target, "net:interfaces", len(out))
        return out

    return ctx.once(("agent", agent.pk, "network"), build)


def _network_findings(ctx, agent: HostAgent, what: str, limit: float):
    for iface in _network(ctx, agent):
        count, packets = iface[what], iface["packets"]
        share = count / packets * 100 if packets else (math.inf if count else 0.0)
        if count <= 0 or share <= limit:
            continue
        if what == "errors":
            sentence = (
                N_(
                    "Interface %(interface)s of %(agent)s: %(count)s errors in %(packets)s packets since the host "
                    "started (%(percent)s%%, limit %(limit)s%%)."
                )
                if iface["since_boot"]
                else N_(
                    "Interface %(interface)s of %(agent)s: %(count)s errors in %(packets)s packets since the "
                    "previous inspection (%(percent)s%%, limit %(limit)s%%)."
                )
            )
        else:
            sentence = (
                N_(
                    "Interface %(interface)s of %(agent)s: %(count)s of %(packets)s packets dropped since the host "
                    "started (%(percent)s%%, limit %(limit)s%%)."
                )
                if iface["since_boot"]
                else N_(
                    "Interface %(interface)s of %(agent)s: %(count)s of %(packets)s packets dropped since the "
                    "previous inspection (%(percent)s%%, limit %(limit)s%%)."
                )
            )
        percent = "100" if math.isinf(share) else f"{share:.3g}"
        yield Finding(
            subject=f"{agent.name}:{iface['name']}",
            message=D(
                sentence,
                agent=agent.name,
                interface=iface["name"],
                count=int(count),
                packets=int(packets),
                percent=percent,
                limit=shown(limit),
            ),
            facts={what: int(count), "packets": int(packets), "since": "boot" if iface["since_boot"] else "previous"},
        )


@check(
    "hosts.network.errors",
    HOSTS,
    Severity.WARNING,
    _("Network interfaces count no errors"),
    _(
        "Receive and transmit errors come from bad cables, optics, switch ports or drivers: connections slow down "
        "and break without a clear cause."
    ),
    _(
        "Read the interface's counters (ip -s link, ethtool -S), check the cable, optic and switch port, and the "
        "NIC's driver and firmware."
    ),
    target="agent",
)
def network_errors(ctx, agent: HostAgent):
    # The threshold is the share of packets in error, in percent.
    yield from _network_findings(ctx, agent, "errors", ctx.threshold("host.network_error_rate"))


@check(
    "hosts.network.drops",
    HOSTS,
    Severity.INFO,
    _("Network interfaces drop few packets"),
    _(
        "Dropped packets mean full receive queues or traffic the host refuses: retransmissions and latency for "
        "the applications."
    ),
    _(
        "Read ethtool -S for the kind of drop; enlarge ring buffers (ethtool -G) or spread interrupts (irqbalance) "
        "for full queues."
    ),
    target="agent",
)
def network_drops(ctx, agent: HostAgent):
    yield from _network_findings(ctx, agent, "drops", ctx.threshold("host.network_drop_percent", 1))


# Clock and kernel ----------------------------------------------------------------------------------------------------


@check(
    "hosts.clock.offset",
    HOSTS,
    Severity.CRITICAL,
    _("Clock agrees with the time server"),
    _(
        "A host whose clock is off breaks TLS and Kerberos, puts transactions and logs in the wrong order, and "
        "fails the bank's time-keeping rules."
    ),
    _("Check chronyd or ntpd on the host (chronyc tracking) and that it reaches the bank's time servers."),
    target="agent",
)
def clock_offset(ctx, agent: HostAgent):
    facts = facts_of(ctx, agent, "clock")
    if facts.get("status") != "ok":
        sentence = N_("Host agent %(agent)s does not know how far its clock is off: %(reason)s")
        raise CannotCheck(D(sentence, agent=agent.name, reason=str(facts.get("reason") or "")[:200]))
    offset_ms = number(agent, facts, "offset_seconds") * 1000
    limit = ctx.threshold("host.clock_offset_ms")
    if abs(offset_ms) > limit:
        sentence = (
            N_("The clock of %(agent)s is %(ms)s ms ahead of the time server %(server)s (limit %(limit)s ms).")
            if offset_ms > 0
            else N_("The clock of %(agent)s is %(ms)s ms behind the time server %(server)s (limit %(limit)s ms).")
        )
        yield Finding(
            subject=agent.name,
            message=D(
                sentence,
                agent=agent.name,
                ms=round(abs(offset_ms)),
                server=str(facts.get("server"))[:100],
                limit=shown(limit),
            ),
            facts={"offset_ms": round(offset_ms, 1), "limit": limit},
        )


def _off_baseline(value: str, rule: str, expected: float) -> bool:
    try:
        actual = float(value)
    except ValueError:
        return True
    if rule == ">=":
        return actual < expected
    if rule == "<=":
        return actual > expected
    return actual != expected


@check(
    "hosts.kernel.parameters",
    HOSTS,
    Severity.WARNING,
    _("Kernel parameters match the baseline"),
    _(
        "Kubernetes nodes need some kernel settings (forwarding, bridge filtering, panic on oops) and the "
        "security baseline others; a host set up by hand drifts from them."
    ),
    _("Set the value in /etc/sysctl.d/ (for example 90-kubemate.conf) and apply it with sysctl --system."),
    target="agent",
)
def kernel_parameters(ctx, agent: HostAgent):
    facts = facts_of(ctx, agent, "sysctl")
    params = items(agent, facts, "params", 256)
    if not params:
        sentence = N_("Host agent %(agent)s reads no kernel parameters: list them under sysctls in its configuration.")
        raise CannotCheck(D(sentence, agent=agent.name))
    for param in params:
        name = str(param.get("name", ""))[:200]
        value = str(param.get("value", ""))[:200]
        if name in BASELINE:
            rule, default = BASELINE[name]
            expected = ctx.threshold(f"sysctl.{name}", default)
            wanted = f"{RULE_WORDS[rule]}{shown(expected)}"
            if param.get("error"):
                sentence = N_(
                    "Kernel parameter %(name)s cannot be read on %(agent)s (its module may not be "
                    "loaded); the baseline is %(expected)s."
                )
                message = D(sentence, agent=agent.name, name=name, expected=wanted)
            elif _off_baseline(value, rule, expected):
                sentence = N_("Kernel parameter %(name)s is %(value)s on %(agent)s; the baseline is %(expected)s.")
                message = D(sentence, agent=agent.name, name=name, value=value, expected=wanted)
            else:
                continue
        elif param.get("matches") is False:
            # Not in Kubemate's baseline, but in the agent's own (sysctls[].expected in its configuration).
            wanted = str(param.get("expected", ""))[:200]
            sentence = N_("Kernel parameter %(name)s is %(value)s on %(agent)s; the baseline is %(expected)s.")
            message = D(sentence, agent=agent.name, name=name, value=value, expected=wanted)
        else:
            continue
        yield Finding(
            subject=f"{agent.name}:{name}",
            message=message,
            facts={"parameter": name, "value": value, "expected": wanted},
        )


# Cron ------------------------------------------------------------------------------------------------------------

SECRETS = (
    (re.compile(r"(://[^/\s:@]+:)[^@\s]+(@)"), r"\1***\2"),
    (re.compile(r"(?i)(--?(?:password|passwd|pass|token|secret|api-?key)[= ])\S+"), r"\1***"),
    (re.compile(r"(?i)\b((?:[a-z_]*(?:password|passwd|pwd|secret|token|apikey|api_key))\s*[=:]\s*)\S+"), r"\1***"),
    (re.compile(r"(\s-p)[^\s-]\S*"), r"\1***"),  # mysql -pSECRET
)


def masked(line: str) -> str:
    """A cron line as a finding may show it: credentials typed on the command line replaced by ***."""
    for pattern, replacement in SECRETS:
        line = pattern.sub(replacement, line)
    return line[:300]


def _cron_files(ctx, agent: HostAgent) -> list[tuple[str, list[str]]]:
    files = []
    for entry in items(agent, facts_of(ctx, agent, "cron"), "files", 200):
        path, lines = entry.get("path"), entry.get("lines")
        if isinstance(path, str) and isinstance(lines, list):
            files.append((path[:250], [str(line)[:600] for line in lines[:200]]))
    return files


def _digest(text: str, size: int) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:size]


@check(
    "hosts.cron.changed",
    HOSTS,
    Severity.INFO,
    _("Cron jobs unchanged since the previous inspection"),
    _(
        "A cron entry nobody announced is how changes slip past change management, and how an intruder keeps a "
        "foothold: every new or removed entry should match an approved change."
    ),
    _("Match each change with its change request; remove entries nobody owns."),
    target="agent",
)
def cron_changed(ctx, agent: HostAgent):
    files = _cron_files(ctx, agent)
    target = target_of(agent)
    before = _previous(target, "cron:entries", "cron:")
    # Per file, each entry under a key of its own (file and line hashed), so the next run tells added from removed.
    now_lines: dict[str, dict[str, str]] = {}
    counted = 0
    for path, lines in files:
        ctx.record(target, f"cron:file:{path}", len(lines))
        keyed = now_lines.setdefault(path, {})
        for line in lines:
            key = f"cron:line:{_digest(path, 12)}:{_digest(path + chr(0) + line, 24)}"
            if key not in keyed and counted < MAX_CRON_LINES:
                keyed[key] = line
                ctx.record(target, key, 1)
                counted += 1
    ctx.record(target, "cron:entries", counted)
    if before is None:
        return  # the first look at this host: what is there now is the baseline
    for path, _lines in files:
        prefix = f"cron:line:{_digest(path, 12)}:"
        old = {k for k in before if k.startswith(prefix)}
        added = [line for key, line in now_lines[path].items() if key not in old]
        removed = len(old - now_lines[path].keys())
        if f"cron:file:{path}" not in before:
            sentence = N_("Cron file %(path)s on %(agent)s is new since the previous inspection (entries: %(count)s).")
            message = D(sentence, agent=agent.name, path=path, count=len(added))
        elif added or removed:
            sentence = N_(
                "Cron file %(path)s on %(agent)s changed since the previous inspection (entries added: "
                "%(added)s, removed: %(removed)s)."
            )
            message = D(sentence, agent=agent.name, path=path, added=len(added), removed=removed)
        else:
            continue
        yield Finding(
            subject=f"{agent.name}:{path}",
            message=message,
            facts={"added": [masked(line) for line in added[:MAX_LISTED]], "removed": removed},
        )
    present = {f"cron:file:{path}" for path, _lines in files}
    for key, count in sorted(before.items()):
        if key.startswith("cron:file:") and key not in present:
            path = key.removeprefix("cron:file:")
            sentence = N_(
                "Cron file %(path)s on %(agent)s was removed since the previous inspection (entries: %(count)s)."
            )
            yield Finding(
                subject=f"{agent.name}:{path}",
                message=D(sentence, agent=agent.name, path=path, count=int(count)),
                facts={"removed": int(count)},
            )


def _runs_as(path: str, line: str) -> tuple[str, list[str]] | None:
    """(user, command words) of a cron entry; None for a variable assignment or a line that is not an entry."""
    if re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s*=", line):
        return None
    words = line.split()
    times = 1 if words and words[0].startswith("@") else 5
    if SYSTEM_CRONTABS.match(path):
        if len(words) < times + 2:
            return None
        return words[times], words[times + 1 :]
    user = USER_CRONTABS.match(path)
    if user and len(words) > times:
        return user.group("user"), words[times:]
    return None


def _world_writable(words: list[str]) -> str:
    for word in words:
        for part in re.split(r"[;&|<>()=`'\"]+", word):
            for folder in WORLD_WRITABLE:
                if part == folder or part.startswith(folder + "/"):
                    return part
    return ""


@check(
    "hosts.cron.unsafe",
    HOSTS,
    Severity.CRITICAL,
    _("No root cron job runs from a world-writable folder"),
    _(
        "Anyone on the host may write to /tmp, /var/tmp and /dev/shm: a root cron job that runs a program from "
        "there runs whatever a local user put there, as root."
    ),
    _(
        "Move the script to a root-owned folder (/usr/local/sbin), make it writable by root only, and point the "
        "cron entry at it."
    ),
    target="agent",
)
def cron_unsafe(ctx, agent: HostAgent):
    for path, lines in _cron_files(ctx, agent):
        for line in lines:
            entry = _runs_as(path, line)
            if entry is None or entry[0] != "root":
                continue
            place = _world_writable(entry[1])
            if place:
                shown_line = masked(line)
                sentence = N_("A root cron job in %(path)s on %(agent)s uses the world-writable %(place)s: %(entry)s")
                yield Finding(
                    subject=f"{agent.name}:{path}: {shown_line[:150]}",
                    message=D(sentence, agent=agent.name, path=path, place=place[:200], entry=shown_line),
                    facts={"path": path, "entry": shown_line, "place": place[:200]},
                )


# Certificates ------------------------------------------------------------------------------------------------------


@check(
    "hosts.certificates.expiry",
    HOSTS,
    Severity.WARNING,
    _("Certificate files on the host are not about to expire"),
    _(
        "An expired certificate stops the apiserver, the kubelet or etcd from talking to each other, or clients "
        "from trusting a service: an outage on a known date."
    ),
    _("Renew the certificate (kubeadm certs renew for the Kubernetes ones) and restart what uses it."),
    target="agent",
)
def certificates_expiry(ctx, agent: HostAgent):
    facts = facts_of(ctx, agent, "certs")
    warning, critical = ctx.threshold("certificate.warning_days"), ctx.threshold("certificate.critical_days")
    for cert in items(agent, facts, "certificates", 1000):
        if cert.get("error") or not isinstance(cert.get("path"), str):
            continue
        days = number(agent, cert, "days_left")
        if days > warning:
            continue
        path, serial = cert["path"][:250], str(cert.get("serial", ""))[:64]
        subject_name = str(cert.get("subject", ""))[:200]
        not_after = str(cert.get("not_after", ""))[:40]
        if cert.get("expired") or days < 0:
            sentence = N_("Certificate %(subject)s in %(path)s on %(agent)s expired on %(date)s.")
        else:
            sentence = N_("Certificate %(subject)s in %(path)s on %(agent)s expires on %(date)s (days left: %(days)s).")
        yield Finding(
            subject=f"{agent.name}:{path}#{serial}",
            message=D(sentence, agent=agent.name, subject=subject_name, path=path, date=not_after[:10], days=int(days)),
            severity=Severity.CRITICAL if days <= critical else Severity.WARNING,
            facts={"days_left": int(days), "not_after": not_after, "serial": serial},
        )
