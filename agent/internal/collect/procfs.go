package collect

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Memory is /proc/meminfo's memory and swap, in bytes.
type Memory struct {
	TotalBytes     uint64  `json:"total_bytes"`
	AvailableBytes uint64  `json:"available_bytes"`
	UsedRatio      float64 `json:"used_ratio"`
	SwapTotalBytes uint64  `json:"swap_total_bytes"`
	SwapFreeBytes  uint64  `json:"swap_free_bytes"`
	SwapUsedRatio  float64 `json:"swap_used_ratio"`
}

func (m *Memory) Metrics() []Metric {
	return []Metric{
		gauge("kubemate_host_memory_total_bytes", "MemTotal.", float64(m.TotalBytes)),
		gauge("kubemate_host_memory_available_bytes", "MemAvailable.", float64(m.AvailableBytes)),
		gauge("kubemate_host_memory_used_ratio", "1 - MemAvailable/MemTotal.", m.UsedRatio),
		gauge("kubemate_host_swap_total_bytes", "SwapTotal.", float64(m.SwapTotalBytes)),
		gauge("kubemate_host_swap_free_bytes", "SwapFree.", float64(m.SwapFreeBytes)),
		gauge("kubemate_host_swap_used_ratio", "1 - SwapFree/SwapTotal (0 without swap).", m.SwapUsedRatio),
	}
}

func parseMeminfo(data []byte) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range strings.Split(string(data), "\n") {
		k, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		out[strings.TrimSpace(k)] = v
	}
	return out
}

func collectMemory(ctx context.Context, e *Env) (Facts, error) {
	data, err := e.readLimited("/proc/meminfo", 1<<16)
	if err != nil {
		return nil, err
	}
	mi := parseMeminfo(data)
	total, ok := mi["MemTotal"]
	if !ok || total == 0 {
		return nil, errors.New("/proc/meminfo: no MemTotal")
	}
	avail, ok := mi["MemAvailable"]
	if !ok { // kernels before 3.14
		avail = mi["MemFree"] + mi["Buffers"] + mi["Cached"]
	}
	m := &Memory{TotalBytes: total, AvailableBytes: avail, SwapTotalBytes: mi["SwapTotal"], SwapFreeBytes: mi["SwapFree"]}
	m.UsedRatio = round(clamp01(1-float64(avail)/float64(total)), 4)
	if m.SwapTotalBytes > 0 {
		m.SwapUsedRatio = round(clamp01(1-float64(m.SwapFreeBytes)/float64(m.SwapTotalBytes)), 4)
	}
	return m, nil
}

// Files is /proc/sys/fs/file-nr: allocated file handles against the maximum.
type Files struct {
	Allocated uint64  `json:"allocated"`
	Unused    uint64  `json:"unused"`
	Max       uint64  `json:"max"`
	UsedRatio float64 `json:"used_ratio"`
}

func (f *Files) Metrics() []Metric {
	return []Metric{
		gauge("kubemate_host_open_files_allocated", "Allocated file handles (file-nr, first field).", float64(f.Allocated)),
		gauge("kubemate_host_open_files_max", "Maximum file handles (file-nr, third field).", float64(f.Max)),
		gauge("kubemate_host_open_files_used_ratio", "Allocated / max file handles.", f.UsedRatio),
	}
}

func collectFiles(ctx context.Context, e *Env) (Facts, error) {
	data, err := e.readLimited("/proc/sys/fs/file-nr", 256)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(data))
	if len(f) != 3 {
		return nil, errors.New("/proc/sys/fs/file-nr: expected 3 fields")
	}
	var v [3]uint64
	for i := range f {
		if v[i], err = strconv.ParseUint(f[i], 10, 64); err != nil {
			return nil, fmt.Errorf("/proc/sys/fs/file-nr: %w", err)
		}
	}
	out := &Files{Allocated: v[0], Unused: v[1], Max: v[2]}
	if out.Max > 0 {
		out.UsedRatio = round(float64(out.Allocated)/float64(out.Max), 6)
	}
	return out, nil
}

// Interface is one network interface's traffic and error counters.
type Interface struct {
	Name      string `json:"name"`
	RxBytes   uint64 `json:"rx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxErrors  uint64 `json:"rx_errors"`
	RxDrops   uint64 `json:"rx_drops"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxErrors  uint64 `json:"tx_errors"`
	TxDrops   uint64 `json:"tx_drops"`
}

// Network lists interfaces from /proc/net/dev.
type Network struct {
	Interfaces []Interface `json:"interfaces"`
}

func (n *Network) Metrics() []Metric {
	var ms []Metric
	for _, i := range n.Interfaces {
		il := l("interface", i.Name)
		ms = append(ms,
			counter("kubemate_host_network_receive_bytes_total", "Bytes received.", float64(i.RxBytes), il),
			counter("kubemate_host_network_transmit_bytes_total", "Bytes transmitted.", float64(i.TxBytes), il),
			counter("kubemate_host_network_receive_errors_total", "Receive errors.", float64(i.RxErrors), il),
			counter("kubemate_host_network_transmit_errors_total", "Transmit errors.", float64(i.TxErrors), il),
			counter("kubemate_host_network_receive_drops_total", "Received packets dropped.", float64(i.RxDrops), il),
			counter("kubemate_host_network_transmit_drops_total", "Transmitted packets dropped.", float64(i.TxDrops), il),
		)
	}
	return ms
}

const maxInterfaces = 1024

func parseNetDev(data []byte) ([]Interface, error) {
	var out []Interface
	for _, line := range strings.Split(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.Contains(name, "|") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return nil, fmt.Errorf("/proc/net/dev: short line for %q", strings.TrimSpace(name))
		}
		var v [16]uint64
		for i := 0; i < 16; i++ {
			v[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		out = append(out, Interface{
			Name:    strings.TrimSpace(name),
			RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDrops: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDrops: v[11],
		})
		if len(out) >= maxInterfaces {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func collectNetwork(ctx context.Context, e *Env) (Facts, error) {
	// /proc/net/dev is per network namespace; the DaemonSet uses hostNetwork.
	data, err := e.readLimited("/proc/net/dev", 1<<20)
	if err != nil {
		return nil, err
	}
	ifs, err := parseNetDev(data)
	if err != nil {
		return nil, err
	}
	return &Network{Interfaces: ifs}, nil
}

// SysctlValue is one kernel parameter against its baseline.
type SysctlValue struct {
	Name     string `json:"name"`
	Value    string `json:"value,omitempty"`
	Expected string `json:"expected,omitempty"`
	// Matches is null when no baseline was configured or the read failed.
	Matches *bool  `json:"matches"`
	Error   string `json:"error,omitempty"`
}

// Sysctls lists the configured kernel parameters.
type Sysctls struct {
	Params     []SysctlValue `json:"params"`
	Mismatches int           `json:"mismatches"`
}

func (s *Sysctls) Metrics() []Metric {
	var ms []Metric
	for _, p := range s.Params {
		if p.Error != "" {
			continue
		}
		if v, err := strconv.ParseFloat(p.Value, 64); err == nil {
			ms = append(ms, gauge("kubemate_host_sysctl_value", "Numeric kernel parameter value.", v, l("name", p.Name)))
		}
		if p.Matches != nil {
			ms = append(ms, gauge("kubemate_host_sysctl_matches_baseline", "1 if the kernel parameter equals its configured baseline.",
				boolf(*p.Matches), l("name", p.Name), l("expected", p.Expected)))
		}
	}
	ms = append(ms, gauge("kubemate_host_sysctl_mismatches", "Kernel parameters that differ from their baseline.", float64(s.Mismatches)))
	return ms
}

// normalizeSysctl collapses whitespace, as sysctl(8) prints tabs as spaces.
func normalizeSysctl(s string) string { return strings.Join(strings.Fields(s), " ") }

func collectSysctl(ctx context.Context, e *Env) (Facts, error) {
	out := &Sysctls{Params: []SysctlValue{}}
	for _, sc := range e.Cfg.Sysctls {
		p := SysctlValue{Name: sc.Name, Expected: sc.Expected}
		// The name was validated in config: dots and [A-Za-z0-9_-] only.
		path := "/proc/sys/" + strings.ReplaceAll(sc.Name, ".", "/")
		data, err := e.readLimited(path, 4096)
		if err != nil {
			p.Error = err.Error()
		} else {
			p.Value = normalizeSysctl(string(data))
			if sc.Expected != "" {
				m := p.Value == normalizeSysctl(sc.Expected)
				p.Matches = &m
				if !m {
					out.Mismatches++
				}
			}
		}
		out.Params = append(out.Params, p)
	}
	return out, nil
}
