// Package collect reads host facts from procfs, sysfs and host files under a
// root prefix. Every collector is read-only, bounded in what it reads, and
// runs under its own timeout; one collector failing never fails the others.
package collect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"kubemate.local/agent/internal/config"
)

// Facts is what one collector found. It marshals to JSON for /report and
// renders to Prometheus metrics for /metrics.
type Facts interface {
	Metrics() []Metric
}

// Env is what collectors read from.
type Env struct {
	Cfg *config.Config
	// Now and Sleep are replaceable in tests.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// NewEnv returns an Env with the real clock.
func NewEnv(cfg *config.Config) *Env {
	return &Env{Cfg: cfg, Now: time.Now, Sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Path maps a host path ("/proc/stat") under the configured root.
func (e *Env) Path(hostPath string) string {
	return filepath.Join(e.Cfg.Root, hostPath)
}

// HostPath maps a path under the root back to the host's view of it.
func (e *Env) HostPath(p string) string {
	rel, err := filepath.Rel(filepath.Clean(e.Cfg.Root), p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return p
	}
	return "/" + strings.TrimPrefix(rel, ".")
}

// readLimited reads at most max bytes of a host file (under the root).
func (e *Env) readLimited(hostPath string, max int64) ([]byte, error) {
	return readFileLimit(e.Path(hostPath), max)
}

func readFileLimit(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max))
	if err != nil {
		return nil, err
	}
	return data, nil
}

// readFirst reads the first of several host paths that exists.
func (e *Env) readFirst(max int64, hostPaths ...string) ([]byte, error) {
	var firstErr error
	for _, p := range hostPaths {
		data, err := e.readLimited(p, max)
		if err == nil {
			return data, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// Func is one collector.
type Func func(ctx context.Context, e *Env) (Facts, error)

// Registry maps collector names to their functions.
var Registry = map[string]Func{
	"cpu":     collectCPU,
	"load":    collectLoad,
	"memory":  collectMemory,
	"disk":    collectDisk,
	"diskio":  collectDiskIO,
	"network": collectNetwork,
	"clock":   collectClock,
	"sysctl":  collectSysctl,
	"cron":    collectCron,
	"files":   collectFiles,
	"zombies": collectZombies,
	"certs":   collectCerts,
}

// Result is one collector's outcome in the report.
type Result struct {
	OK         bool    `json:"ok"`
	DurationMS float64 `json:"duration_ms"`
	Error      string  `json:"error,omitempty"`
	Facts      Facts   `json:"facts,omitempty"`
	duration   time.Duration
}

// Host identifies the host in the report.
type Host struct {
	Hostname      string  `json:"hostname"`
	Kernel        string  `json:"kernel"`
	UptimeSeconds float64 `json:"uptime_seconds"`
}

// Snapshot is one full collection.
type Snapshot struct {
	Host         Host              `json:"host"`
	AgentVersion string            `json:"agent_version"`
	CollectedAt  time.Time         `json:"collected_at"`
	Collectors   map[string]Result `json:"collectors"`
	order        []string
}

// Collect runs the configured collectors concurrently, each under its own
// timeout, and returns what they found. It never fails as a whole.
func Collect(ctx context.Context, e *Env, version string) *Snapshot {
	s := &Snapshot{
		Host:         readHost(e),
		AgentVersion: version,
		CollectedAt:  e.Now().UTC(),
		Collectors:   map[string]Result{},
		order:        append([]string(nil), e.Cfg.Collectors...),
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range e.Cfg.Collectors {
		fn := Registry[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := runOne(ctx, e, name, fn)
			mu.Lock()
			s.Collectors[name] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	return s
}

func runOne(parent context.Context, e *Env, name string, fn Func) Result {
	timeout := e.Cfg.Timeout(name)
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	start := time.Now()
	type out struct {
		f   Facts
		err error
	}
	ch := make(chan out, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- out{nil, fmt.Errorf("collector panicked: %v", p)}
			}
		}()
		f, err := fn(ctx, e)
		ch <- out{f, err}
	}()
	var o out
	select {
	case o = <-ch:
	case <-ctx.Done():
		o.err = fmt.Errorf("timed out after %s", timeout)
	}
	took := time.Since(start)
	r := Result{DurationMS: round(float64(took.Microseconds())/1000, 3), duration: took}
	if o.err != nil {
		if errors.Is(o.err, context.DeadlineExceeded) {
			o.err = fmt.Errorf("timed out after %s", timeout)
		}
		r.Error = o.err.Error()
		return r
	}
	r.OK = true
	r.Facts = o.f
	return r
}

// Metrics renders the whole snapshot, including per-collector health.
func (s *Snapshot) Metrics() []Metric {
	ms := []Metric{
		gauge("kubemate_agent_build_info", "Agent version, always 1.", 1, l("version", s.AgentVersion)),
		gauge("kubemate_host_uptime_seconds", "Seconds since the host booted.", s.Host.UptimeSeconds),
		gauge("kubemate_host_info", "Host name and kernel release, always 1.", 1,
			l("hostname", s.Host.Hostname), l("kernel", s.Host.Kernel)),
		gauge("kubemate_agent_collected_timestamp_seconds", "When this collection started (Unix time).",
			float64(s.CollectedAt.UnixNano())/1e9),
	}
	for _, name := range s.order {
		r, ok := s.Collectors[name]
		if !ok {
			continue
		}
		ms = append(ms,
			gauge("kubemate_agent_collector_success", "1 if the collector succeeded, 0 if it failed.", boolf(r.OK), l("collector", name)),
			gauge("kubemate_agent_collector_duration_seconds", "Time the collector took.", round(r.duration.Seconds(), 6), l("collector", name)),
		)
		if r.OK && r.Facts != nil {
			ms = append(ms, r.Facts.Metrics()...)
		}
	}
	return ms
}

func readHost(e *Env) Host {
	var h Host
	// /etc/hostname is the host's own name even when the agent runs in its
	// own UTS namespace; /proc/sys/kernel/hostname is the fallback.
	if name := os.Getenv("KUBEMATE_NODE_NAME"); name != "" {
		h.Hostname = name
	} else if b, err := e.readFirst(256, "/etc/hostname", "/proc/sys/kernel/hostname"); err == nil {
		h.Hostname = strings.TrimSpace(string(b))
	}
	if b, err := e.readLimited("/proc/sys/kernel/osrelease", 256); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := e.readLimited("/proc/uptime", 256); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			h.UptimeSeconds = parseFloat(f[0])
		}
	}
	return h
}
