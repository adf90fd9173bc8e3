package collect

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// cpuTimes is the aggregate "cpu" line of /proc/stat, in USER_HZ ticks.
type cpuTimes struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
}

func (t cpuTimes) total() uint64 {
	return t.User + t.Nice + t.System + t.Idle + t.IOWait + t.IRQ + t.SoftIRQ + t.Steal
}

// parseStat returns the aggregate CPU times and the number of CPUs.
func parseStat(data []byte) (cpuTimes, int, error) {
	var t cpuTimes
	n := 0
	found := false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			n++
			continue
		}
		if len(f) < 5 {
			return t, 0, errors.New("/proc/stat: short cpu line")
		}
		v := make([]uint64, 8)
		for i := 0; i < 8 && i+1 < len(f); i++ {
			x, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return t, 0, errors.New("/proc/stat: bad cpu field")
			}
			v[i] = x
		}
		t = cpuTimes{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}
		found = true
	}
	if !found {
		return t, 0, errors.New("/proc/stat: no aggregate cpu line")
	}
	return t, n, nil
}

// cpuShares turns two readings into the busy and iowait shares (0..1).
func cpuShares(a, b cpuTimes) (usage, iowait float64) {
	if b.total() <= a.total() {
		return 0, 0
	}
	dt := float64(b.total() - a.total())
	idle := float64((b.Idle + b.IOWait) - (a.Idle + a.IOWait))
	usage = clamp01(1 - idle/dt)
	iowait = clamp01(float64(b.IOWait-a.IOWait) / dt)
	return usage, iowait
}

func clamp01(v float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// CPU is the CPU usage over a short sample.
type CPU struct {
	Count         int     `json:"count"`
	SampleSeconds float64 `json:"sample_seconds"`
	UsageRatio    float64 `json:"usage_ratio"`
	IOWaitRatio   float64 `json:"iowait_ratio"`
	UsagePercent  float64 `json:"usage_percent"`
	IOWaitPercent float64 `json:"iowait_percent"`
	StealPercent  float64 `json:"steal_percent"`
	SystemPercent float64 `json:"system_percent"`
	UserPercent   float64 `json:"user_percent"`
}

func (c *CPU) Metrics() []Metric {
	return []Metric{
		gauge("kubemate_host_cpus", "Number of CPUs listed in /proc/stat.", float64(c.Count)),
		gauge("kubemate_host_cpu_usage_ratio", "Share of CPU time not idle over the sample (0..1).", c.UsageRatio),
		gauge("kubemate_host_cpu_iowait_ratio", "Share of CPU time waiting for IO over the sample (0..1).", c.IOWaitRatio),
	}
}

// sampleStat reads /proc/stat, waits the sample interval and reads it again.
func sampleStat(ctx context.Context, e *Env) (a, b cpuTimes, n int, d time.Duration, err error) {
	data, err := e.readLimited("/proc/stat", 1<<20)
	if err != nil {
		return
	}
	if a, _, err = parseStat(data); err != nil {
		return
	}
	d = e.Cfg.CPUSample()
	if err = e.Sleep(ctx, d); err != nil {
		return
	}
	if data, err = e.readLimited("/proc/stat", 1<<20); err != nil {
		return
	}
	b, n, err = parseStat(data)
	return
}

func collectCPU(ctx context.Context, e *Env) (Facts, error) {
	a, b, n, d, err := sampleStat(ctx, e)
	if err != nil {
		return nil, err
	}
	usage, iowait := cpuShares(a, b)
	c := &CPU{Count: n, SampleSeconds: d.Seconds(), UsageRatio: round(usage, 4), IOWaitRatio: round(iowait, 4)}
	c.UsagePercent = round(usage*100, 2)
	c.IOWaitPercent = round(iowait*100, 2)
	if dt := float64(b.total() - a.total()); b.total() > a.total() {
		c.StealPercent = round(float64(b.Steal-a.Steal)/dt*100, 2)
		c.SystemPercent = round(float64(b.System-a.System)/dt*100, 2)
		c.UserPercent = round(float64((b.User+b.Nice)-(a.User+a.Nice))/dt*100, 2)
	}
	return c, nil
}

// Load is the load average and the CPU count to judge it against.
type Load struct {
	Load1       float64 `json:"load1"`
	Load5       float64 `json:"load5"`
	Load15      float64 `json:"load15"`
	CPUCount    int     `json:"cpu_count"`
	PerCPU1     float64 `json:"load1_per_cpu"`
	Running     int     `json:"running"`
	TotalThread int     `json:"threads"`
}

func (x *Load) Metrics() []Metric {
	return []Metric{
		gauge("kubemate_host_load1", "1-minute load average.", x.Load1),
		gauge("kubemate_host_load5", "5-minute load average.", x.Load5),
		gauge("kubemate_host_load15", "15-minute load average.", x.Load15),
	}
}

func collectLoad(ctx context.Context, e *Env) (Facts, error) {
	data, err := e.readLimited("/proc/loadavg", 4096)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return nil, errors.New("/proc/loadavg: too few fields")
	}
	x := &Load{Load1: parseFloat(f[0]), Load5: parseFloat(f[1]), Load15: parseFloat(f[2])}
	if len(f) >= 4 {
		if r, t, ok := strings.Cut(f[3], "/"); ok {
			x.Running, _ = strconv.Atoi(r)
			x.TotalThread, _ = strconv.Atoi(t)
		}
	}
	if st, err := e.readLimited("/proc/stat", 1<<20); err == nil {
		if _, n, err := parseStat(st); err == nil {
			x.CPUCount = n
		}
	}
	if x.CPUCount > 0 {
		x.PerCPU1 = round(x.Load1/float64(x.CPUCount), 3)
	}
	return x, nil
}

func parseFloat(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}
