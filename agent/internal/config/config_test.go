package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	tok := writeFile(t, dir, "token", "  s3cr3t-token-0123456789\n")
	cfgPath := writeFile(t, dir, "agent.json", `{
  "listen": "127.0.0.1:9443",
  "token_file": "`+tok+`",
  "collectors": ["cpu", "sysctl"],
  "sysctls": [{"name": "vm.swappiness", "expected": "10"}],
  "timeouts_ms": {"cpu": 1500},
  "ntp_server": "ntp.example:123"
}`)
	c, err := Load(cfgPath, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Token != "s3cr3t-token-0123456789" || c.Root != "/" || c.MountRoot != "/" || len(c.Collectors) != 2 {
		t.Fatalf("config = %+v", c)
	}
	if c.Timeout("cpu") != 1500*time.Millisecond || c.Timeout("sysctl") != 3*time.Second || c.CPUSample() != 250*time.Millisecond {
		t.Fatalf("timeouts = %v %v", c.Timeout("cpu"), c.Timeout("sysctl"))
	}
}

func TestTokenFileOverride(t *testing.T) {
	dir := t.TempDir()
	tok := writeFile(t, dir, "cred", "override-token-0123456789")
	cfgPath := writeFile(t, dir, "agent.json", `{"listen": ":1"}`)
	c, err := Load(cfgPath, tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Token != "override-token-0123456789" || c.TokenFile != tok {
		t.Fatalf("config = %+v", c)
	}
}

func TestDefaultsToAllCollectors(t *testing.T) {
	c, err := Parse([]byte(`{"token_file": "/t"}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Collectors, ",") != strings.Join(AllCollectors, ",") {
		t.Fatalf("collectors = %v", c.Collectors)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"unknown field", `{"token_file": "/t", "tokne": "x"}`, "unknown field"},
		{"too large", `{"token_file": "/t", "listen": "` + strings.Repeat("x", MaxFileSize) + `"}`, "larger than"},
		{"no token file", `{}`, "token_file is required"},
		{"trailing data", `{"token_file": "/t"} {}`, "trailing data"},
		{"not json", `token_file = /t`, "invalid character"},
		{"unknown collector", `{"token_file": "/t", "collectors": ["cpu", "gpu"]}`, "unknown collector"},
		{"duplicate collector", `{"token_file": "/t", "collectors": ["cpu", "cpu"]}`, "twice"},
		{"bad sysctl", `{"token_file": "/t", "sysctls": [{"name": "../../etc/shadow"}]}`, "bad sysctl name"},
		{"relative glob", `{"token_file": "/t", "cert_globs": ["etc/*.pem"]}`, "absolute"},
		{"dotdot glob", `{"token_file": "/t", "cron_paths": ["/etc/../root/x"]}`, "absolute"},
		{"cert without key", `{"token_file": "/t", "tls_cert_file": "/c"}`, "go together"},
		{"bad sample", `{"token_file": "/t", "cpu_sample_ms": 1}`, "cpu_sample_ms"},
		{"bad timeout", `{"token_file": "/t", "timeouts_ms": {"cpu": 0}}`, "timeouts_ms"},
		{"timeout for unknown", `{"token_file": "/t", "timeouts_ms": {"gpu": 10}}`, "unknown collector"},
		{"wrong type", `{"token_file": "/t", "cache_seconds": "5"}`, "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	short := writeFile(t, dir, "short", "abc\n")
	spaced := writeFile(t, dir, "spaced", "abcdefgh ijklmnopq\n")
	big := writeFile(t, dir, "big.json", `{"token_file":"/t","listen":"`+strings.Repeat("x", MaxFileSize)+`"}`)
	for _, tc := range []struct{ name, path, want string }{
		{"missing config", filepath.Join(dir, "nope.json"), "no such file"},
		{"too large config", big, "larger than"},
		{"missing token file", writeFile(t, dir, "a.json", `{"token_file": "`+filepath.Join(dir, "none")+`"}`), "token file"},
		{"short token", writeFile(t, dir, "b.json", `{"token_file": "`+short+`"}`), "shorter than"},
		{"token with space", writeFile(t, dir, "c.json", `{"token_file": "`+spaced+`"}`), "whitespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.path, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
