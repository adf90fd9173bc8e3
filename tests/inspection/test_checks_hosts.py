"""The host checks (apps/inspection/checks/hosts.py) through the runner, against the real agent binary reading a fake
host (tests/plugins/hostagent.py): each check passes on the healthy host and fails, with the measured values, when
one fact of the host is made wrong. The agent is registered the way a person registers it (certificate pinned)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.core.deferred import render
from apps.inspection import agents, runner
from apps.inspection.catalogue import CATALOGUE
from apps.inspection.checks.base import Domain, Severity
from apps.inspection.checks.context import Context
from apps.inspection.checks.hosts import masked
from apps.inspection.models import Finding, Outcome, Run, Template
from tests.factories import AdminFactory
from tests.helpers import login

PASSED, FAILED, NOT_CHECKED = Outcome.Status.PASSED, Outcome.Status.FAILED, Outcome.Status.NOT_CHECKED
HOST_CHECKS = sorted(k for k in CATALOGUE if k.startswith("hosts."))


@pytest.fixture
def agent(db, host_agent):
    return agents.register_agent(actor=None, name="node-a", url=host_agent.url, token=host_agent.token)


def run(check_id: str, agent, thresholds: dict | None = None, now=None) -> runner.Result:
    return runner.run_one(Context(thresholds=thresholds, now=now), CATALOGUE[check_id], agent)


def passes(check_id: str, agent, thresholds: dict | None = None) -> None:
    result = run(check_id, agent, thresholds)
    assert (result.status, result.reason, [render(f.message) for f in result.findings]) == (PASSED, "", [])


def failing(check_id: str, agent, thresholds: dict | None = None) -> list[tuple[str, str]]:
    """The (subject, sentence) of each finding of a check that must fail."""
    result = run(check_id, agent, thresholds)
    assert result.status == FAILED, (result.status, render(result.reason))
    return [(f.subject, render(f.message)) for f in result.findings]


def inspect(template: Template) -> Run:
    """One inspection run of ``template`` through the runner, stored as a scheduled one would be."""
    run_row = Run.objects.create(template=template)
    return runner.execute(run_row, lambda percent, sentence: None)


def outcomes(run_row: Run, check_id: str) -> tuple[str, list[tuple[str, str, str]]]:
    outcome = Outcome.objects.get(run=run_row, check_id=check_id)
    found = Finding.objects.filter(run=run_row, check_id=check_id).order_by("subject")
    return outcome.status, [(f.subject, f.change, render(f.message)) for f in found]


def test_the_catalogue_holds_the_host_checks_each_run_against_agents():
    assert len(HOST_CHECKS) >= 17
    for check_id in HOST_CHECKS:
        check = CATALOGUE[check_id]
        assert (check.target, check.domain) == ("agent", Domain.HOSTS)
        assert str(check.title) and str(check.why) and str(check.fix)


def test_a_healthy_host_passes_every_host_check_in_one_inspection_run(agent, host_agent):
    template = Template.objects.create(slug="host-baseline-test", name="Hosts", checks=["hosts."])
    done = inspect(template)
    statuses = dict(Outcome.objects.filter(run=done).values_list("check_id", "status"))
    assert statuses == dict.fromkeys(HOST_CHECKS, PASSED)
    assert done.scores == {"hosts": 100} and done.status == Run.Status.FINISHED
    assert set(Outcome.objects.filter(run=done).values_list("target", flat=True)) == {"agent:node-a"}

    host_agent.host.memory(total_mib=1000, available_mib=20)
    host_agent.host.mounts("/", "/data", "/full")
    second = inspect(template)
    assert outcomes(second, "hosts.memory.used") == (
        FAILED,
        [("node-a", "new", "node-a uses 98.0% of its memory (limit 90%); 20 MiB of 1000 MiB are available.")],
    )
    assert outcomes(second, "hosts.disk.space") == (
        FAILED,
        [("node-a:/full", "new", "/full on node-a is 97.7% full (limit 85%); 0 MiB free.")],
    )
    assert second.scores["hosts"] < 100

    host_agent.host.memory(total_mib=1000, available_mib=500)
    host_agent.host.mounts("/", "/data")
    third = inspect(template)
    assert [c for s, c, m in outcomes(third, "hosts.memory.used")[1]] == ["fixed"]
    assert [c for s, c, m in outcomes(third, "hosts.disk.space")[1]] == ["fixed"]
    assert third.scores == {"hosts": 100}


def test_an_agent_that_does_not_answer_fails_reachable_and_leaves_the_other_checks_not_checked(agent, host_agent):
    passes("hosts.agent.reachable", agent)
    host_agent.stop()
    sentence = f"Host agent node-a at {host_agent.url} could not be reached: Connection refused."
    assert failing("hosts.agent.reachable", agent) == [("node-a", sentence)]

    template = Template.objects.create(slug="hosts-down", name="Hosts", checks=["hosts."])
    done = inspect(template)
    statuses = dict(Outcome.objects.filter(run=done).values_list("check_id", "status"))
    assert statuses == {**dict.fromkeys(HOST_CHECKS, NOT_CHECKED), "hosts.agent.reachable": FAILED}
    reasons = {render(r) for r in Outcome.objects.filter(run=done, status=NOT_CHECKED).values_list("reason", flat=True)}
    assert reasons == {sentence}


def test_an_old_report_is_not_fresh(agent):
    result = run("hosts.agent.reachable", agent, now=timezone.now() + timedelta(hours=1))
    assert result.status == FAILED
    [finding] = result.findings
    assert finding.subject == "node-a" and 3590 <= finding.facts["age_seconds"] <= 3600
    assert "sent a report collected 3" in render(finding.message)
    assert "seconds away from Kubemate's clock (at most 300)" in render(finding.message)
    passes("hosts.agent.reachable", agent, {"host.report_max_age_seconds": 7200})


def test_a_collector_that_fails_is_a_finding_and_its_checks_are_not_checked(agent, host_agent):
    passes("hosts.agent.collectors", agent)
    host_agent.host.remove("/proc/meminfo")
    [(subject, sentence)] = failing("hosts.agent.collectors", agent)
    assert subject == "node-a:memory"
    assert sentence.startswith("Host agent node-a could not read memory on its host: open ")
    assert sentence.endswith("/proc/meminfo: no such file or directory")
    for check_id in ("hosts.memory.used", "hosts.swap.used"):
        result = run(check_id, agent)
        assert result.status == NOT_CHECKED and render(result.reason) == sentence


def test_cpu_usage(agent, host_agent):
    passes("hosts.cpu.usage", agent)
    host_agent.host.cpu(user=85, system=10, idle=5, iowait=0)
    assert failing("hosts.cpu.usage", agent) == [
        ("node-a", "CPU usage on node-a is 95.0% (limit 85%): 85.0% user, 10.0% system.")
    ]
    passes("hosts.cpu.usage", agent, {"host.cpu_percent": 96})


def test_cpu_steal(agent, host_agent):
    passes("hosts.cpu.steal", agent)
    host_agent.host.cpu(user=20, system=5, idle=45, iowait=0, steal=30)
    assert failing("hosts.cpu.steal", agent) == [
        ("node-a", "The hypervisor took 30.0% of the CPU time of node-a (limit 10%).")
    ]


def test_load_per_cpu(agent, host_agent):
    passes("hosts.load.per_cpu", agent)
    host_agent.host.load(12, 10, 8)
    assert failing("hosts.load.per_cpu", agent) == [
        ("node-a", "The 5-minute load of node-a is 10 on 4 CPUs, 2.50 per CPU (limit 2).")
    ]
    passes("hosts.load.per_cpu", agent, {"host.load_per_cpu": 3})


def test_memory_used(agent, host_agent):
    passes("hosts.memory.used", agent)
    host_agent.host.memory(total_mib=16384, available_mib=819)
    assert failing("hosts.memory.used", agent) == [
        ("node-a", "node-a uses 95.0% of its memory (limit 90%); 819 MiB of 16384 MiB are available.")
    ]


def test_swap_used(agent, host_agent):
    passes("hosts.swap.used", agent)  # no swap at all
    host_agent.host.memory(total_mib=16384, available_mib=8192, swap_total_mib=4096, swap_free_mib=3072)
    passes("hosts.swap.used", agent)  # 25 %
    host_agent.host.memory(total_mib=16384, available_mib=8192, swap_total_mib=4096, swap_free_mib=1024)
    assert failing("hosts.swap.used", agent) == [("node-a", "node-a uses 75.0% of its swap (limit 50%).")]


def test_disk_space_per_mount(agent, host_agent):
    passes("hosts.disk.space", agent)
    host_agent.host.mounts("/", "/data", "/full", "/inodes")
    result = run("hosts.disk.space", agent)
    assert result.status == FAILED and result.check.severity == Severity.CRITICAL
    [finding] = result.findings
    assert finding.subject == "node-a:/full" and finding.facts["used_percent"] == 97.66
    assert render(finding.message) == "/full on node-a is 97.7% full (limit 85%); 0 MiB free."
    passes("hosts.disk.space", agent, {"host.disk_percent": 98})


def test_inodes_per_mount(agent, host_agent):
    passes("hosts.disk.inodes", agent)
    host_agent.host.mounts("/", "/data", "/full", "/inodes")
    assert failing("hosts.disk.inodes", agent) == [
        ("node-a:/inodes", "/inodes on node-a uses 95.3% of its inodes (limit 85%).")
    ]


def test_disk_io_wait(agent, host_agent):
    passes("hosts.disk.iowait", agent)  # 5 %
    host_agent.host.cpu(user=10, system=5, idle=50, iowait=35)
    assert failing("hosts.disk.iowait", agent) == [
        ("node-a", "The CPUs of node-a spent 35.0% of their time waiting for disks (limit 20%).")
    ]


def test_network_errors_since_boot_then_since_the_previous_inspection(agent, host_agent):
    # The pod interface cali1234abcd has errors and drops from the start: only the host's own interfaces count.
    passes("hosts.network.errors", agent)
    host_agent.host.interface("eth0", errors=30)
    assert failing("hosts.network.errors", agent) == [
        (
            "node-a:eth0",
            "Interface eth0 of node-a: 30 errors in 2000000 packets since the host started (0.0015%, limit 0%).",
        )
    ]

    template = Template.objects.create(slug="net", name="Network", checks=["hosts.network."])
    first = inspect(template)
    assert outcomes(first, "hosts.network.errors")[0] == FAILED
    second = inspect(template)  # no new errors since the first run
    assert outcomes(second, "hosts.network.errors") == (
        PASSED,
        [
            (
                "node-a:eth0",
                "fixed",
                "Interface eth0 of node-a: 30 errors in 2000000 packets since the host started (0.0015%, limit 0%).",
            )
        ],
    )
    host_agent.host.interface("eth0", packets=1_000_500, errors=45)
    third = inspect(template)
    assert outcomes(third, "hosts.network.errors") == (
        FAILED,
        [
            (
                "node-a:eth0",
                "new",
                "Interface eth0 of node-a: 15 errors in 1000 packets since the previous inspection (1.5%, limit 0%).",
            )
        ],
    )


def test_network_drops(agent, host_agent):
    host_agent.host.interface("eth0", drops=100)  # 0.005 % of the packets
    passes("hosts.network.drops", agent)
    host_agent.host.interface("eth0", drops=50_000)
    assert failing("hosts.network.drops", agent) == [
        (
            "node-a:eth0",
            "Interface eth0 of node-a: 50000 of 2000000 packets dropped since the host started (2.5%, limit 1%).",
        )
    ]
    passes("hosts.network.drops", agent, {"host.network_drop_percent": 3})


def test_clock_offset_against_the_time_server(agent, host_agent):
    passes("hosts.clock.offset", agent)
    host_agent.sntp.offset = 2.0  # the time server is 2 s ahead: this host is behind
    result = run("hosts.clock.offset", agent)
    [finding] = result.findings
    assert result.status == FAILED and finding.subject == "node-a" and 1990 <= -finding.facts["offset_ms"] <= 2010
    assert render(finding.message).startswith("The clock of node-a is ")
    assert render(finding.message).endswith(f"ms behind the time server {host_agent.sntp.address} (limit 500 ms).")
    host_agent.sntp.offset = -3.0
    [(_subject, sentence)] = failing("hosts.clock.offset", agent)
    assert " ms ahead of the time server " in sentence
    host_agent.sntp.unsynchronised = True
    result = run("hosts.clock.offset", agent)
    assert result.status == NOT_CHECKED
    assert render(result.reason) == (
        "Host agent node-a does not know how far its clock is off: NTP server unsynchronised (kiss-o'-death or alarm)"
    )


def test_kernel_parameters_against_the_baseline(agent, host_agent):
    passes("hosts.kernel.parameters", agent)
    host = host_agent.host
    host.sysctl("vm.swappiness", "60")
    host.sysctl("net.ipv4.ip_forward", "0")
    host.sysctl("fs.file-max", "65536")
    host.remove("/proc/sys/net/bridge/bridge-nf-call-iptables")  # br_netfilter not loaded
    host.sysctl("vm.dirty_ratio", "40")  # off the agent's own baseline
    assert sorted(failing("hosts.kernel.parameters", agent)) == [
        ("node-a:fs.file-max", "Kernel parameter fs.file-max is 65536 on node-a; the baseline is ≥ 1048576."),
        ("node-a:net.bridge.bridge-nf-call-iptables", "Kernel parameter net.bridge.bridge-nf-call-iptables cannot "
         "be read on node-a (its module may not be loaded); the baseline is 1."),
        ("node-a:net.ipv4.ip_forward", "Kernel parameter net.ipv4.ip_forward is 0 on node-a; the baseline is 1."),
        ("node-a:vm.dirty_ratio", "Kernel parameter vm.dirty_ratio is 40 on node-a; the baseline is 20."),
        ("node-a:vm.swappiness", "Kernel parameter vm.swappiness is 60 on node-a; the baseline is ≤ 10."),
    ]  # fmt: skip
    # A template moves the baseline: a swappiness of 60 is then what is expected.
    subjects = [s for s, _m in failing("hosts.kernel.parameters", agent, {"sysctl.vm.swappiness": 60})]
    assert "node-a:vm.swappiness" not in subjects and len(subjects) == 4


def test_open_files_against_the_maximum(agent, host_agent):
    passes("hosts.files.open", agent)
    host_agent.host.open_files(900_000, 1_000_000)
    assert failing("hosts.files.open", agent) == [
        ("node-a", "node-a has 900000 file handles open of at most 1000000 (90.0%, limit 80%).")
    ]


def test_zombie_processes(agent, host_agent):
    host_agent.host.zombies(3)
    passes("hosts.processes.zombies", agent)  # at most 5
    host_agent.host.zombies(8)
    result = run("hosts.processes.zombies", agent)
    [finding] = result.findings
    assert result.status == FAILED and finding.subject == "node-a" and finding.facts["count"] == 8
    assert render(finding.message) == "Zombie processes on node-a: 8 (limit 5); their parent process ids: 4242."
    assert finding.facts["listed"][0] == {"pid": 5000, "ppid": 4242, "name": "report job"}


def test_certificate_files_near_expiry(agent, host_agent):
    passes("hosts.certificates.expiry", agent)
    host = host_agent.host
    soon = host.certificate("/etc/ssl/bank/payments.pem", days_left=20.5, name="payments.bank.example")
    urgent = host.certificate("/etc/kubernetes/pki/front-proxy-client.crt", days_left=3.5, name="front-proxy-client")
    gone = host.certificate("/etc/kubernetes/pki/etcd-peer.crt", days_left=-2, name="etcd-peer")
    result = run("hosts.certificates.expiry", agent)
    assert result.status == FAILED
    found = {f.subject: (f.severity, f.facts["days_left"], render(f.message)) for f in result.findings}
    assert set(found) == {
        f"node-a:/etc/ssl/bank/payments.pem#{soon}",
        f"node-a:/etc/kubernetes/pki/front-proxy-client.crt#{urgent}",
        f"node-a:/etc/kubernetes/pki/etcd-peer.crt#{gone}",
    }
    severity, days, sentence = found[f"node-a:/etc/ssl/bank/payments.pem#{soon}"]
    assert (severity, days) == (Severity.WARNING, 20)
    assert sentence.startswith(
        "Certificate CN=payments.bank.example in /etc/ssl/bank/payments.pem on node-a expires on"
    )
    assert sentence.endswith("(days left: 20).")
    assert found[f"node-a:/etc/kubernetes/pki/front-proxy-client.crt#{urgent}"][:2] == (Severity.CRITICAL, 3)
    severity, _days, sentence = found[f"node-a:/etc/kubernetes/pki/etcd-peer.crt#{gone}"]
    assert severity == Severity.CRITICAL and " on node-a expired on " in sentence
    # Shorter warning: only the expired one is left.
    [(subject, _)] = failing("hosts.certificates.expiry", agent, {"certificate.warning_days": 1})
    assert subject == f"node-a:/etc/kubernetes/pki/etcd-peer.crt#{gone}"


def test_root_cron_jobs_from_world_writable_folders(agent, host_agent):
    host = host_agent.host
    host.cron("/etc/cron.d/app", "*/5 * * * * app /tmp/app-cleanup.sh")  # not root
    passes("hosts.cron.unsafe", agent)
    host.cron("/etc/cron.d/cleanup", "*/5 * * * * root /tmp/cleanup.sh --password=hunter2 >/dev/null 2>&1")
    host.cron("/var/spool/cron/crontabs/root", "@reboot cd /var/tmp && ./start-batch")
    found = failing("hosts.cron.unsafe", agent)
    assert found == [
        ("node-a:/etc/cron.d/cleanup: */5 * * * * root /tmp/cleanup.sh --password=*** >/dev/null 2>&1",
         "A root cron job in /etc/cron.d/cleanup on node-a uses the world-writable /tmp/cleanup.sh: */5 * * * * root "
         "/tmp/cleanup.sh --password=*** >/dev/null 2>&1"),
        ("node-a:/var/spool/cron/crontabs/root: @reboot cd /var/tmp && ./start-batch",
         "A root cron job in /var/spool/cron/crontabs/root on node-a uses the world-writable /var/tmp: @reboot "
         "cd /var/tmp && ./start-batch"),
    ]  # fmt: skip
    assert "hunter2" not in str(found)


def test_cron_entries_changed_since_the_previous_inspection(agent, host_agent):
    template = Template.objects.create(slug="cron", name="Cron", checks=["hosts.cron.changed"])
    assert outcomes(inspect(template), "hosts.cron.changed") == (PASSED, [])  # the first look is the baseline
    assert outcomes(inspect(template), "hosts.cron.changed") == (PASSED, [])

    host = host_agent.host
    host.cron("/etc/cron.d/backup", "45 3 * * * root /usr/local/sbin/backup.sh --target /data/backup",
              "0 4 * * * root curl -s https://ops:s3cret@files.bank.example/upload")  # fmt: skip
    host.cron("/etc/cron.d/newjob", "*/10 * * * * root /opt/agent/run")
    changed = inspect(template)
    assert outcomes(changed, "hosts.cron.changed") == (
        FAILED,
        [
            ("node-a:/etc/cron.d/backup", "new", "Cron file /etc/cron.d/backup on node-a changed since the previous "
             "inspection (entries added: 2, removed: 1)."),
            ("node-a:/etc/cron.d/newjob", "new", "Cron file /etc/cron.d/newjob on node-a is new since the previous "
             "inspection (entries: 1)."),
        ],
    )  # fmt: skip
    facts = Finding.objects.get(run=changed, subject="node-a:/etc/cron.d/backup").facts
    assert facts == {
        "added": ["45 3 * * * root /usr/local/sbin/backup.sh --target /data/backup",
                  "0 4 * * * root curl -s https://ops:***@files.bank.example/upload"],
        "removed": 1,
    }  # fmt: skip

    unchanged = inspect(template)
    assert outcomes(unchanged, "hosts.cron.changed")[0] == PASSED
    host.remove("/etc/cron.d/newjob")
    removed = inspect(template)
    assert outcomes(removed, "hosts.cron.changed") == (
        FAILED,
        [("node-a:/etc/cron.d/newjob", "new", "Cron file /etc/cron.d/newjob on node-a was removed since the previous "
          "inspection (entries: 1).")],
    )  # fmt: skip


def test_credentials_on_cron_lines_are_masked():
    assert masked("0 1 * * * root mysqldump -uroot -pS3cret db") == "0 1 * * * root mysqldump -uroot -p*** db"
    assert masked("0 1 * * * root backup --token abc123 --password=xyz") == (
        "0 1 * * * root backup --token *** --password=***"
    )
    assert masked("PGPASSWORD=secret pg_dump") == "PGPASSWORD=*** pg_dump"
    assert masked("curl https://user:pw@host/x") == "curl https://user:***@host/x"


def test_every_collector_of_the_real_host_is_read(db, real_host_agent):
    """The same binary against this machine's own / (not a fake host): every report the checks read parses."""
    agent = agents.register_agent(actor=None, name="this-host", url=real_host_agent.url, token=real_host_agent.token)
    ctx = Context()
    results = {check_id: runner.run_one(ctx, CATALOGUE[check_id], agent) for check_id in HOST_CHECKS}
    assert {k: r.status for k, r in results.items() if r.status == NOT_CHECKED} == {}
    assert results["hosts.agent.reachable"].status == PASSED
    assert results["hosts.agent.collectors"].status == PASSED


def test_the_agents_host_checks_reach_the_report_page_and_its_pdf(agent, host_agent, client):
    """The real agent on loopback, the built-in host baseline template, the report a person reads."""
    host_agent.host.zombies(8)
    done = inspect(Template.objects.get(slug="host-baseline"))
    login(client, AdminFactory())

    page = client.get(reverse("inspection:run_detail", args=[done.pk])).content.decode()
    document = client.get(reverse("inspection:run_pdf", args=[done.pk]))

    assert 'data-check="hosts.processes.zombies"' in page and 'data-subject="node-a"' in page
    assert 'data-domain="hosts"' in page and "Zombie processes on node-a: 8" in page
    assert document.status_code == 200 and document.content.startswith(b"%PDF")
