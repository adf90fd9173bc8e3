package collect

import (
	"context"
	"os"
	"sort"
	"strconv"
	"strings"
)

const maxProcsScanned = 1 << 17

// Zombie is one process in state Z.
type Zombie struct {
	PID  int    `json:"pid"`
	PPID int    `json:"ppid"`
	Name string `json:"name"`
}

// Zombies counts processes in state Z and lists a few of them.
type Zombies struct {
	Processes int      `json:"processes"`
	Count     int      `json:"count"`
	Listed    []Zombie `json:"listed"`
}

func (z *Zombies) Metrics() []Metric {
	return []Metric{
		gauge("kubemate_host_processes", "Processes seen in /proc.", float64(z.Processes)),
		gauge("kubemate_host_zombie_processes", "Processes in state Z (zombie).", float64(z.Count)),
	}
}

// parseProcStat parses /proc/<pid>/stat: "pid (comm) S ppid ...". The
// command name may hold spaces and parentheses, so it ends at the last ')'.
func parseProcStat(data string) (pid int, comm string, state byte, ppid int, ok bool) {
	open := strings.IndexByte(data, '(')
	close := strings.LastIndexByte(data, ')')
	if open < 0 || close < open {
		return 0, "", 0, 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(data[:open]))
	if err != nil {
		return 0, "", 0, 0, false
	}
	comm = data[open+1 : close]
	rest := strings.Fields(data[close+1:])
	if len(rest) < 2 || len(rest[0]) != 1 {
		return 0, "", 0, 0, false
	}
	ppid, _ = strconv.Atoi(rest[1])
	return pid, comm, rest[0][0], ppid, true
}

func collectZombies(ctx context.Context, e *Env) (Facts, error) {
	dir, err := os.Open(e.Path("/proc"))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	z := &Zombies{Listed: []Zombie{}}
	for _, n := range names {
		if n == "" || n[0] < '0' || n[0] > '9' {
			continue
		}
		if _, err := strconv.Atoi(n); err != nil {
			continue
		}
		if z.Processes >= maxProcsScanned || ctx.Err() != nil {
			break
		}
		data, err := e.readLimited("/proc/"+n+"/stat", 4096)
		if err != nil {
			continue // the process ended meanwhile
		}
		pid, comm, state, ppid, ok := parseProcStat(string(data))
		if !ok {
			continue
		}
		z.Processes++
		if state == 'Z' {
			z.Count++
			z.Listed = append(z.Listed, Zombie{PID: pid, PPID: ppid, Name: comm})
		}
	}
	sort.Slice(z.Listed, func(i, j int) bool { return z.Listed[i].PID < z.Listed[j].PID })
	if len(z.Listed) > e.Cfg.MaxZombiesListed {
		z.Listed = z.Listed[:e.Cfg.MaxZombiesListed]
	}
	return z, ctx.Err()
}
