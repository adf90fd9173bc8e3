package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kubemate.local/agent/internal/collect"
	"kubemate.local/agent/internal/config"
)

const token = "test-token-0123456789abcdef"

// startServer runs the real server on 127.0.0.1:0 over a tiny fake root.
func startServer(t *testing.T) (base string, client *http.Client, fp string) {
	t.Helper()
	root := t.TempDir()
	for p, c := range map[string]string{
		"proc/loadavg":            "0.10 0.20 0.30 1/100 999\n",
		"proc/stat":               "cpu  1 0 1 10 0 0 0 0\ncpu0 1 0 1 10 0 0 0 0\n",
		"proc/meminfo":            "MemTotal: 1000 kB\nMemAvailable: 500 kB\n",
		"proc/sys/fs/file-nr":     "10\t0\t1000\n",
		"proc/sys/kernel/ostype":  "Linux\n",
		"etc/hostname":            "fake-node\n",
		"proc/sys/vm/swappiness":  "1\n",
		"proc/12/stat":            "12 (zz) Z 1 0 0\n",
		"proc/sys/kernel/version": "x\n",
	} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(c), 0o644)
	}
	cfg := config.Default()
	cfg.TokenFile = "/unused"
	cfg.Root = root
	cfg.CPUSampleMS = 10
	cfg.Collectors = []string{"load", "memory", "files", "sysctl", "zombies", "network"} // network fails: no /proc/net/dev
	cfg.Sysctls = []config.Sysctl{{Name: "vm.swappiness", Expected: "1"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Token = token
	cert, fp, err := LoadOrGenerateCert("", "", []string{"fake-node"})
	if err != nil {
		t.Fatal(err)
	}
	s := New(&cfg, collect.NewEnv(&cfg), "9.9.9", nil)
	hs := s.HTTPServer(cert)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })

	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"},
	}}
	return "https://" + ln.Addr().String(), client, fp
}

func do(t *testing.T, c *http.Client, method, url, auth string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader("ignored body"))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestEndpoints(t *testing.T) {
	base, c, _ := startServer(t)
	for _, tc := range []struct {
		name, method, path, auth string
		status                   int
	}{
		{"healthz without token", "GET", "/healthz", "", 200},
		{"metrics without token", "GET", "/metrics", "", 401},
		{"report without token", "GET", "/report", "", 401},
		{"wrong token", "GET", "/report", "Bearer wrong-token-0123456789abcde", 401},
		{"token without Bearer", "GET", "/report", token, 401},
		{"basic auth", "GET", "/report", "Basic " + token, 401},
		{"token prefix", "GET", "/report", "Bearer " + token[:10], 401},
		{"right token", "GET", "/report", "Bearer " + token, 200},
		{"metrics with token", "GET", "/metrics", "Bearer " + token, 200},
		{"POST refused", "POST", "/report", "Bearer " + token, 405},
		{"DELETE healthz refused", "DELETE", "/healthz", "", 405},
		{"PUT metrics refused", "PUT", "/metrics", "", 405},
		{"unknown path", "GET", "/admin", "Bearer " + token, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, c, tc.method, base+tc.path, tc.auth)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if resp.StatusCode == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Fatal("405 without Allow")
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatal("no Cache-Control: no-store")
			}
			if strings.Contains(body, token) {
				t.Fatal("token echoed in body")
			}
		})
	}
}

func TestReportAndMetrics(t *testing.T) {
	base, c, _ := startServer(t)
	resp, body := do(t, c, "GET", base+"/report", "Bearer "+token)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var rep struct {
		Host struct {
			Hostname string `json:"hostname"`
		} `json:"host"`
		AgentVersion string    `json:"agent_version"`
		CollectedAt  time.Time `json:"collected_at"`
		Collectors   map[string]struct {
			OK    bool            `json:"ok"`
			Error string          `json:"error"`
			Facts json.RawMessage `json:"facts"`
		} `json:"collectors"`
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err, body)
	}
	if rep.Host.Hostname != "fake-node" || rep.AgentVersion != "9.9.9" || rep.CollectedAt.IsZero() || len(rep.Collectors) != 6 {
		t.Fatalf("report = %s", body)
	}
	if n := rep.Collectors["network"]; n.OK || n.Error == "" || n.Facts != nil {
		t.Fatalf("network should fail alone: %+v", n)
	}
	var z struct {
		Count  int `json:"count"`
		Listed []struct {
			PID  int    `json:"pid"`
			Name string `json:"name"`
		} `json:"listed"`
	}
	json.Unmarshal(rep.Collectors["zombies"].Facts, &z)
	if z.Count != 1 || z.Listed[0].PID != 12 || z.Listed[0].Name != "zz" {
		t.Fatalf("zombies = %s", rep.Collectors["zombies"].Facts)
	}

	resp, body = do(t, c, "GET", base+"/metrics", "Bearer "+token)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("content type %q", ct)
	}
	for _, want := range []string{
		"# HELP kubemate_host_load1 ", "# TYPE kubemate_host_load1 gauge\n", "kubemate_host_load1 0.1\n",
		"kubemate_host_memory_used_ratio 0.5\n", "kubemate_host_zombie_processes 1\n",
		`kubemate_agent_collector_success{collector="network"} 0` + "\n",
		`kubemate_host_sysctl_matches_baseline{name="vm.swappiness",expected="1"} 1` + "\n",
		`kubemate_agent_build_info{version="9.9.9"} 1` + "\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Every sample line belongs to a family announced by # TYPE.
	typed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "# TYPE ") {
			typed[f[2]] = true
		} else if !strings.HasPrefix(line, "#") {
			name, _, _ := strings.Cut(f[0], "{")
			if !typed[name] {
				t.Errorf("sample without TYPE: %s", line)
			}
		}
	}
}

func TestTLSPolicy(t *testing.T) {
	base, _, fp := startServer(t)
	if !strings.HasPrefix(fp, "sha256:") || len(fp) != len("sha256:")+32*3-1 {
		t.Fatalf("fingerprint %q", fp)
	}
	addr := strings.TrimPrefix(base, "https://")
	// TLS 1.1 is refused.
	if conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil {
		conn.Close()
		t.Fatal("TLS 1.1 accepted")
	}
	// The served certificate is the one whose fingerprint was logged (pinning).
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := Fingerprint(conn.ConnectionState().PeerCertificates[0].Raw); got != fp {
		t.Fatalf("served %s, logged %s", got, fp)
	}
	// Plain HTTP gets no data.
	resp, err := http.Get("http://" + addr + "/healthz")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("plain HTTP served: %s", b)
		}
	}
}

func TestSnapshotCache(t *testing.T) {
	cfg := config.Default()
	cfg.TokenFile, cfg.Root, cfg.Collectors, cfg.CacheSeconds = "/t", t.TempDir(), []string{"files"}, 60
	cfg.Validate()
	s := New(&cfg, collect.NewEnv(&cfg), "v", nil)
	a, b := s.Snapshot(), s.Snapshot()
	if a != b {
		t.Fatal("second call within cache_seconds collected again")
	}
	cfg.CacheSeconds = 0
	if s.Snapshot() == a {
		t.Fatal("cache_seconds 0 must always collect")
	}
}
