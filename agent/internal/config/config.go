// Package config loads the agent's collection rules from a small JSON file.
//
// JSON is used on purpose: the standard library parses it strictly, so the
// agent needs no third-party YAML parser. The file is bounded in size and
// unknown fields are refused, so a typo never silently disables a check.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// MaxFileSize bounds the configuration file.
const MaxFileSize = 64 << 10

// MaxTokenFileSize bounds the token file.
const MaxTokenFileSize = 4 << 10

// MinTokenLength is the shortest token the agent accepts.
const MinTokenLength = 16

// AllCollectors lists every collector the agent knows, in report order.
var AllCollectors = []string{
	"cpu", "load", "memory", "disk", "diskio", "network", "clock",
	"sysctl", "cron", "files", "zombies", "certs",
}

// Sysctl is one kernel parameter to read, with an optional baseline value.
type Sysctl struct {
	Name     string `json:"name"`
	Expected string `json:"expected,omitempty"`
}

// Config holds the collection rules. Durations are in milliseconds.
type Config struct {
	Listen      string `json:"listen"`
	TLSCertFile string `json:"tls_cert_file"`
	TLSKeyFile  string `json:"tls_key_file"`
	TokenFile   string `json:"token_file"`

	// Root prefixes every host path the agent reads ("/host" in a DaemonSet).
	Root string `json:"root"`
	// MountRoot prefixes mount points for statfs; defaults to Root.
	MountRoot string `json:"mount_root"`

	// Collectors turned on; empty means all of AllCollectors.
	Collectors []string `json:"collectors"`

	CPUSampleMS      int            `json:"cpu_sample_ms"`
	TimeoutMS        int            `json:"timeout_ms"`
	TimeoutsMS       map[string]int `json:"timeouts_ms"`
	CacheSeconds     int            `json:"cache_seconds"`
	Sysctls          []Sysctl       `json:"sysctls"`
	CertGlobs        []string       `json:"cert_globs"`
	CertWarnDays     int            `json:"cert_warn_days"`
	CronPaths        []string       `json:"cron_paths"`
	NTPServer        string         `json:"ntp_server"`
	IgnoreMountPaths []string       `json:"ignore_mount_prefixes"`
	MaxZombiesListed int            `json:"max_zombies_listed"`

	// Token is read from TokenFile; it is never serialised or logged.
	Token string `json:"-"`
}

var sysctlName = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// Default returns the configuration used for fields the file leaves out.
func Default() Config {
	return Config{
		Listen:       ":9443",
		Root:         "/",
		CPUSampleMS:  250,
		TimeoutMS:    3000,
		CacheSeconds: 5,
		CertWarnDays: 30,
		CronPaths: []string{
			"/etc/crontab", "/etc/cron.d/*", "/var/spool/cron/crontabs/*",
		},
		IgnoreMountPaths: []string{
			"/var/lib/kubelet/pods/", "/var/lib/docker/", "/var/lib/containerd/",
			"/run/containerd/", "/run/k3s/", "/snap/",
		},
		MaxZombiesListed: 10,
	}
}

// Load reads, validates and completes the configuration at path, including
// the token from its token file. A non-empty tokenFile overrides the file's
// token_file (systemd passes its credentials directory this way).
func Load(path, tokenFile string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: %s is larger than %d bytes", path, MaxFileSize)
	}
	c, err := parse(data, tokenFile)
	if err != nil {
		return nil, err
	}
	if err := c.LoadToken(); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes and validates configuration JSON (without reading the token).
func Parse(data []byte) (*Config, error) { return parse(data, "") }

func parse(data []byte, tokenFile string) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: larger than %d bytes", MaxFileSize)
	}
	c := Default()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if dec.More() {
		return nil, errors.New("config: trailing data after the JSON object")
	}
	if tokenFile != "" {
		c.TokenFile = tokenFile
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks the configuration and fills derived defaults.
func (c *Config) Validate() error {
	if c.TokenFile == "" {
		return errors.New("config: token_file is required")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("config: tls_cert_file and tls_key_file go together")
	}
	if c.Listen == "" {
		return errors.New("config: listen is empty")
	}
	if c.Root == "" {
		c.Root = "/"
	}
	if c.MountRoot == "" {
		c.MountRoot = c.Root
	}
	if len(c.Collectors) == 0 {
		c.Collectors = append([]string(nil), AllCollectors...)
	}
	known := map[string]bool{}
	for _, n := range AllCollectors {
		known[n] = true
	}
	seen := map[string]bool{}
	for _, n := range c.Collectors {
		if !known[n] {
			return fmt.Errorf("config: unknown collector %q (known: %s)", n, strings.Join(AllCollectors, ", "))
		}
		if seen[n] {
			return fmt.Errorf("config: collector %q listed twice", n)
		}
		seen[n] = true
	}
	for n, ms := range c.TimeoutsMS {
		if !known[n] {
			return fmt.Errorf("config: timeouts_ms names unknown collector %q", n)
		}
		if ms <= 0 || ms > 60000 {
			return fmt.Errorf("config: timeouts_ms[%s] must be 1..60000", n)
		}
	}
	if c.TimeoutMS <= 0 || c.TimeoutMS > 60000 {
		return errors.New("config: timeout_ms must be 1..60000")
	}
	if c.CPUSampleMS < 10 || c.CPUSampleMS > 10000 {
		return errors.New("config: cpu_sample_ms must be 10..10000")
	}
	if c.CacheSeconds < 0 || c.CacheSeconds > 3600 {
		return errors.New("config: cache_seconds must be 0..3600")
	}
	if c.CertWarnDays < 0 || c.CertWarnDays > 3650 {
		return errors.New("config: cert_warn_days must be 0..3650")
	}
	if c.MaxZombiesListed < 0 || c.MaxZombiesListed > 1000 {
		return errors.New("config: max_zombies_listed must be 0..1000")
	}
	if len(c.Sysctls) > 256 || len(c.CertGlobs) > 64 || len(c.CronPaths) > 64 {
		return errors.New("config: too many sysctls (256), cert_globs (64) or cron_paths (64)")
	}
	names := map[string]bool{}
	for _, s := range c.Sysctls {
		if !sysctlName.MatchString(s.Name) || len(s.Name) > 200 {
			return fmt.Errorf("config: bad sysctl name %q", s.Name)
		}
		if names[s.Name] {
			return fmt.Errorf("config: sysctl %q listed twice", s.Name)
		}
		names[s.Name] = true
	}
	for _, g := range append(append([]string(nil), c.CertGlobs...), c.CronPaths...) {
		if !strings.HasPrefix(g, "/") || strings.Contains(g, "..") {
			return fmt.Errorf("config: path %q must be absolute and must not contain '..'", g)
		}
	}
	sort.Strings(c.IgnoreMountPaths)
	return nil
}

// Timeout returns the time budget of one collector.
func (c *Config) Timeout(collector string) time.Duration {
	if ms, ok := c.TimeoutsMS[collector]; ok {
		return time.Duration(ms) * time.Millisecond
	}
	return time.Duration(c.TimeoutMS) * time.Millisecond
}

// CPUSample returns the CPU sample interval.
func (c *Config) CPUSample() time.Duration {
	return time.Duration(c.CPUSampleMS) * time.Millisecond
}

// LoadToken reads the bearer token from TokenFile. The token is trimmed of
// surrounding whitespace and must be at least MinTokenLength characters.
func (c *Config) LoadToken() error {
	f, err := os.Open(c.TokenFile)
	if err != nil {
		return fmt.Errorf("config: token file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxTokenFileSize+1))
	if err != nil {
		return fmt.Errorf("config: token file: %w", err)
	}
	if len(data) > MaxTokenFileSize {
		return fmt.Errorf("config: token file is larger than %d bytes", MaxTokenFileSize)
	}
	tok := strings.TrimSpace(string(data))
	if len(tok) < MinTokenLength {
		return fmt.Errorf("config: token in %s is shorter than %d characters", c.TokenFile, MinTokenLength)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return fmt.Errorf("config: token in %s contains whitespace", c.TokenFile)
	}
	c.Token = tok
	return nil
}
