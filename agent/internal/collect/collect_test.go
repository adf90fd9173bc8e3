package collect

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kubemate.local/agent/internal/config"
)

var fixedNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

const stat1 = `cpu  1000 0 500 8000 500 0 0 0 0 0
cpu0 500 0 250 4000 250 0 0 0 0 0
cpu1 500 0 250 4000 250 0 0 0 0 0
intr 1
ctxt 2
`

// stat2 is stat1 plus 1000 ticks: 300 user, 100 system, 400 idle, 200 iowait.
const stat2 = `cpu  1300 0 600 8400 700 0 0 0 0 0
cpu0 650 0 300 4200 350 0 0 0 0 0
cpu1 650 0 300 4200 350 0 0 0 0 0
`

func write(t *testing.T, root, hostPath, content string) {
	t.Helper()
	p := filepath.Join(root, hostPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func pemCert(t *testing.T, cn string, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(4242),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notAfter.Add(-365 * 24 * time.Hour),
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	// A key block in the same file must be skipped.
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// fakeRoot builds a fake host under a temp dir and returns an Env on it.
func fakeRoot(t *testing.T) (*Env, string) {
	t.Helper()
	root := t.TempDir()
	write(t, root, "/proc/stat", stat1)
	write(t, root, "/proc/loadavg", "1.50 0.75 0.25 3/456 7890\n")
	write(t, root, "/proc/uptime", "12345.67 23456.78\n")
	write(t, root, "/proc/sys/kernel/osrelease", "6.1.0-test\n")
	write(t, root, "/etc/hostname", "node-a\n")
	write(t, root, "/proc/meminfo", `MemTotal:        8000000 kB
MemFree:         1000000 kB
MemAvailable:    2000000 kB
Buffers:          100000 kB
Cached:          1000000 kB
SwapTotal:       1000000 kB
SwapFree:         250000 kB
`)
	write(t, root, "/proc/mounts", `/dev/sda1 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid 0 0
tmpfs /run tmpfs rw 0 0
/dev/sdb1 /data\040dir xfs ro,relatime 0 0
overlay /var/lib/docker/overlay2/abc/merged overlay rw 0 0
/dev/sdc1 /var/lib/kubelet/pods/x/volumes/y ext4 rw 0 0
`)
	write(t, root, "/proc/diskstats", `   8       0 sda 100 0 800 50 200 0 1600 80 0 1000 130 0 0 0 0
   7       0 loop0 1 0 1 1 0 0 0 0 0 1 1 0 0 0 0
`)
	write(t, root, "/proc/net/dev", `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0: 99999     500    3    7    0     0          0         0    88888     400    2    5    0     0       0          0
`)
	write(t, root, "/proc/sys/vm/swappiness", "60\n")
	write(t, root, "/proc/sys/net/ipv4/ip_forward", "1\n")
	write(t, root, "/proc/sys/fs/file-max", "9223372036854775807\n")
	write(t, root, "/proc/sys/net/ipv4/ip_local_port_range", "32768\t60999\n")
	write(t, root, "/proc/sys/fs/file-nr", "2048\t0\t100000\n")
	write(t, root, "/proc/1/stat", "1 (systemd) S 0 1 1 0 -1 4194560 0 0\n")
	write(t, root, "/proc/42/stat", "42 (bad (worker) x) Z 1 42 42 0 -1 4194560 0 0\n")
	write(t, root, "/proc/43/stat", "43 (nginx) Z 1 43 43 0 -1 4194560 0 0\n")
	write(t, root, "/proc/44/stat", "44 (bash) R 1 44 44 0 -1 4194560 0 0\n")
	write(t, root, "/proc/self/stat", "not a pid dir\n")
	write(t, root, "/etc/crontab", "SHELL=/bin/sh\n# comment\n\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n")
	write(t, root, "/etc/cron.d/backup", "0 2 * * * root /usr/local/bin/backup\n")
	write(t, root, "/etc/cron.d/.placeholder", "# ignored\n")
	write(t, root, "/var/spool/cron/crontabs/alice", "*/5 * * * * /home/alice/poll\n")
	write(t, root, "/etc/pki/soon.pem", pemCert(t, "soon.example", fixedNow.Add(10*24*time.Hour+time.Hour)))
	write(t, root, "/etc/pki/later.crt", pemCert(t, "later.example", fixedNow.Add(400*24*time.Hour)))
	write(t, root, "/etc/pki/old.pem", pemCert(t, "old.example", fixedNow.Add(-2*24*time.Hour)))

	cfg := config.Default()
	cfg.TokenFile = "/unused"
	cfg.Root = root
	cfg.CPUSampleMS = 100
	cfg.CertGlobs = []string{"/etc/pki/*.pem", "/etc/pki/*.crt"}
	cfg.Sysctls = []config.Sysctl{
		{Name: "vm.swappiness", Expected: "10"},
		{Name: "net.ipv4.ip_forward", Expected: "1"},
		{Name: "fs.file-max"},
		{Name: "net.ipv4.ip_local_port_range", Expected: "32768 60999"},
		{Name: "kernel.missing", Expected: "1"},
	}
	cfg.MaxZombiesListed = 1
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e := &Env{Cfg: &cfg, Now: func() time.Time { return fixedNow }}
	// The "sleep" of a CPU sample advances the fake /proc/stat.
	e.Sleep = func(ctx context.Context, d time.Duration) error {
		write(t, root, "/proc/stat", stat2)
		return nil
	}
	return e, root
}

func run(t *testing.T, e *Env, name string) Facts {
	t.Helper()
	f, err := Registry[name](context.Background(), e)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f
}

func TestCPU(t *testing.T) {
	e, _ := fakeRoot(t)
	c := run(t, e, "cpu").(*CPU)
	if c.Count != 2 || c.UsageRatio != 0.4 || c.IOWaitRatio != 0.2 || c.UserPercent != 30 || c.SystemPercent != 10 {
		t.Fatalf("cpu = %+v", c)
	}
}

func TestCPUShares(t *testing.T) {
	for _, tc := range []struct {
		name          string
		a, b          cpuTimes
		usage, iowait float64
	}{
		{"idle", cpuTimes{Idle: 100}, cpuTimes{Idle: 200}, 0, 0},
		{"busy", cpuTimes{User: 0}, cpuTimes{User: 100}, 1, 0},
		{"half iowait", cpuTimes{}, cpuTimes{IOWait: 50, Idle: 50}, 0, 0.5},
		{"no progress", cpuTimes{User: 5}, cpuTimes{User: 5}, 0, 0},
		{"counter went back", cpuTimes{User: 9}, cpuTimes{User: 5}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, w := cpuShares(tc.a, tc.b)
			if u != tc.usage || w != tc.iowait {
				t.Fatalf("got %v %v, want %v %v", u, w, tc.usage, tc.iowait)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	e, _ := fakeRoot(t)
	x := run(t, e, "load").(*Load)
	if x.Load1 != 1.5 || x.Load5 != 0.75 || x.Load15 != 0.25 || x.CPUCount != 2 || x.PerCPU1 != 0.75 || x.Running != 3 || x.TotalThread != 456 {
		t.Fatalf("load = %+v", x)
	}
}

func TestMemory(t *testing.T) {
	e, _ := fakeRoot(t)
	m := run(t, e, "memory").(*Memory)
	if m.TotalBytes != 8000000*1024 || m.AvailableBytes != 2000000*1024 || m.UsedRatio != 0.75 ||
		m.SwapTotalBytes != 1000000*1024 || m.SwapUsedRatio != 0.75 {
		t.Fatalf("memory = %+v", m)
	}
}

func TestDisk(t *testing.T) {
	e, root := fakeRoot(t)
	// statfs needs the mount points to exist under the mount root.
	os.MkdirAll(filepath.Join(root, "data dir"), 0o755)
	d := run(t, e, "disk").(*Disk)
	if len(d.Filesystems) != 2 {
		t.Fatalf("want / and /data dir only (pseudo and container mounts skipped), got %+v", d.Filesystems)
	}
	rootFS, data := d.Filesystems[0], d.Filesystems[1]
	if rootFS.MountPoint != "/" || rootFS.Device != "/dev/sda1" || rootFS.FSType != "ext4" || rootFS.Error != "" {
		t.Fatalf("root fs = %+v", rootFS)
	}
	if rootFS.SizeBytes == 0 || rootFS.Inodes == 0 || rootFS.UsedRatio < 0 || rootFS.UsedRatio > 1 {
		t.Fatalf("statfs values = %+v", rootFS)
	}
	if data.MountPoint != "/data dir" || !data.ReadOnly || data.FSType != "xfs" {
		t.Fatalf("escaped mount = %+v", data)
	}
	// A missing mount point is an error on that entry, not on the collector.
	write(t, root, "/proc/mounts", "/dev/sdz /nowhere ext4 rw 0 0\n")
	d = run(t, e, "disk").(*Disk)
	if len(d.Filesystems) != 1 || d.Filesystems[0].Error == "" {
		t.Fatalf("missing mount point = %+v", d.Filesystems)
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`: "/plain", `/a\040b`: "/a b", `/tab\011x`: "/tab\tx", `/back\134slash`: `/back\slash`, `/trail\04`: `/trail\04`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDiskIO(t *testing.T) {
	e, root := fakeRoot(t)
	e.Sleep = func(ctx context.Context, d time.Duration) error {
		write(t, root, "/proc/stat", stat2)
		write(t, root, "/proc/diskstats", "   8       0 sda 110 0 880 55 230 0 1800 90 2 1050 140 0 0 0 0\n")
		return nil
	}
	d := run(t, e, "diskio").(*DiskIO)
	if d.IOWaitRatio != 0.2 || len(d.Devices) != 1 {
		t.Fatalf("diskio = %+v", d)
	}
	s := d.Devices[0]
	// 50 ms busy over a 100 ms sample.
	if s.Name != "sda" || s.ReadsCompleted != 110 || s.WritesCompleted != 230 || s.IOInProgress != 2 || s.UtilRatio != 0.5 {
		t.Fatalf("sda = %+v", s)
	}
}

func TestNetwork(t *testing.T) {
	e, _ := fakeRoot(t)
	n := run(t, e, "network").(*Network)
	if len(n.Interfaces) != 2 {
		t.Fatalf("interfaces = %+v", n.Interfaces)
	}
	eth := n.Interfaces[0]
	if eth.Name != "eth0" || eth.RxErrors != 3 || eth.RxDrops != 7 || eth.TxErrors != 2 || eth.TxDrops != 5 || eth.RxBytes != 99999 || eth.TxBytes != 88888 {
		t.Fatalf("eth0 = %+v", eth)
	}
}

func TestSysctl(t *testing.T) {
	e, _ := fakeRoot(t)
	s := run(t, e, "sysctl").(*Sysctls)
	type want struct {
		value   string
		matches string // "", "true", "false"
		err     bool
	}
	wants := map[string]want{
		"vm.swappiness":                {"60", "false", false},
		"net.ipv4.ip_forward":          {"1", "true", false},
		"fs.file-max":                  {"9223372036854775807", "", false},
		"net.ipv4.ip_local_port_range": {"32768 60999", "true", false},
		"kernel.missing":               {"", "", true},
	}
	if len(s.Params) != len(wants) || s.Mismatches != 1 {
		t.Fatalf("sysctls = %+v", s)
	}
	for _, p := range s.Params {
		w := wants[p.Name]
		m := ""
		if p.Matches != nil {
			m = map[bool]string{true: "true", false: "false"}[*p.Matches]
		}
		if p.Value != w.value || m != w.matches || (p.Error != "") != w.err {
			t.Errorf("%s = %+v (matches %q), want %+v", p.Name, p, m, w)
		}
	}
}

func TestFiles(t *testing.T) {
	e, _ := fakeRoot(t)
	f := run(t, e, "files").(*Files)
	if f.Allocated != 2048 || f.Max != 100000 || f.UsedRatio != 0.02048 {
		t.Fatalf("files = %+v", f)
	}
}

func TestZombies(t *testing.T) {
	e, _ := fakeRoot(t)
	z := run(t, e, "zombies").(*Zombies)
	if z.Processes != 4 || z.Count != 2 || len(z.Listed) != 1 {
		t.Fatalf("zombies = %+v", z)
	}
	if got := z.Listed[0]; got.PID != 42 || got.PPID != 1 || got.Name != "bad (worker) x" {
		t.Fatalf("listed = %+v", got)
	}
}

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		in    string
		ok    bool
		comm  string
		state byte
	}{
		{"7 (a b) S 1 2", true, "a b", 'S'},
		{"8 ((x)) Z 1", true, "(x)", 'Z'},
		{"garbage", false, "", 0},
		{"9 (x)", false, "", 0},
	} {
		_, comm, st, _, ok := parseProcStat(tc.in)
		if ok != tc.ok || comm != tc.comm || st != tc.state {
			t.Errorf("parseProcStat(%q) = %q %c %v", tc.in, comm, st, ok)
		}
	}
}

func TestCron(t *testing.T) {
	e, root := fakeRoot(t)
	// An unreadable crontab is listed as unreadable (skipped when run as root).
	secret := filepath.Join(root, "var/spool/cron/crontabs/root")
	os.WriteFile(secret, []byte("* * * * * /secret\n"), 0o000)
	c := run(t, e, "cron").(*Cron)
	paths := []string{}
	for _, f := range c.Files {
		paths = append(paths, f.Path)
	}
	got := strings.Join(paths, ",")
	if os.Geteuid() != 0 {
		if len(c.Unreadable) != 1 || c.Unreadable[0].Path != "/var/spool/cron/crontabs/root" {
			t.Fatalf("unreadable = %+v", c.Unreadable)
		}
	} else {
		got = strings.Replace(got, ",/var/spool/cron/crontabs/root", "", 1)
	}
	if got != "/etc/cron.d/backup,/etc/crontab,/var/spool/cron/crontabs/alice" {
		t.Fatalf("cron files = %s", got)
	}
	if c.Files[1].Lines[0] != "SHELL=/bin/sh" || len(c.Files[1].Lines) != 2 {
		t.Fatalf("crontab lines = %q", c.Files[1].Lines)
	}
}

func TestCerts(t *testing.T) {
	e, _ := fakeRoot(t)
	c := run(t, e, "certs").(*Certs)
	if len(c.Certificates) != 3 || c.Expired != 1 || c.ExpiringSoon != 1 {
		t.Fatalf("certs = %+v", c)
	}
	old, soon, later := c.Certificates[0], c.Certificates[1], c.Certificates[2]
	if old.Subject != "CN=old.example" || !old.Expired || old.DaysLeft != -2 {
		t.Errorf("old = %+v", old)
	}
	if soon.Path != "/etc/pki/soon.pem" || soon.DaysLeft != 10 || !soon.ExpiringSoon || soon.Expired || soon.Serial != "1092" {
		t.Errorf("soon = %+v", soon)
	}
	if later.DaysLeft != 400 || later.ExpiringSoon {
		t.Errorf("later = %+v", later)
	}
}

func TestClockUnknownWithoutServer(t *testing.T) {
	e, _ := fakeRoot(t)
	c := run(t, e, "clock").(*Clock)
	if c.Status != "unknown" || c.OffsetSeconds != nil {
		t.Fatalf("clock = %+v", c)
	}
	var buf bytes.Buffer
	WriteText(&buf, c.Metrics())
	if !strings.Contains(buf.String(), "kubemate_host_clock_offset_known 0\n") || strings.Contains(buf.String(), "offset_seconds") {
		t.Fatalf("metrics = %s", buf.String())
	}
}

func TestCollectIsolatesFailures(t *testing.T) {
	e, root := fakeRoot(t)
	os.Remove(filepath.Join(root, "proc/meminfo"))
	e.Cfg.TimeoutsMS = map[string]int{"cpu": 20, "diskio": 20}
	e.Sleep = func(ctx context.Context, d time.Duration) error { <-ctx.Done(); return ctx.Err() }
	s := Collect(context.Background(), e, "1.2.3")
	if s.Host.Hostname != "node-a" || s.Host.Kernel != "6.1.0-test" || s.Host.UptimeSeconds != 12345.67 || s.AgentVersion != "1.2.3" {
		t.Fatalf("host = %+v", s.Host)
	}
	if len(s.Collectors) != len(config.AllCollectors) {
		t.Fatalf("collectors = %d", len(s.Collectors))
	}
	if r := s.Collectors["memory"]; r.OK || r.Error == "" {
		t.Fatalf("memory = %+v", r)
	}
	if r := s.Collectors["cpu"]; r.OK || !strings.Contains(r.Error, "timed out") {
		t.Fatalf("cpu = %+v", r)
	}
	if r := s.Collectors["load"]; !r.OK {
		t.Fatalf("load = %+v", r)
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	json.Unmarshal(data, &back)
	for _, k := range []string{"host", "agent_version", "collected_at", "collectors"} {
		if _, ok := back[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	var buf bytes.Buffer
	WriteText(&buf, s.Metrics())
	out := buf.String()
	for _, want := range []string{
		`kubemate_agent_collector_success{collector="memory"} 0`,
		`kubemate_agent_collector_success{collector="load"} 1`,
		`kubemate_host_load1 1.5`,
		`kubemate_host_zombie_processes 2`,
		`kubemate_host_network_receive_drops_total{interface="eth0"} 7`,
		`kubemate_host_sysctl_matches_baseline{name="vm.swappiness",expected="10"} 0`,
		`kubemate_host_certificate_remaining_seconds{path="/etc/pki/soon.pem",subject="CN=soon.example",serial="1092"} 867600`,
		`kubemate_agent_build_info{version="1.2.3"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
}
