package collect

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const (
	maxCronFiles     = 200
	maxCronLines     = 200
	maxCronLineBytes = 512
	maxCronFileBytes = 256 << 10
)

// CronFile is one readable cron file and its entry lines (comments and
// blank lines dropped, bounded in number and length).
type CronFile struct {
	Path      string   `json:"path"`
	Lines     []string `json:"lines"`
	Truncated bool     `json:"truncated,omitempty"`
}

// Unreadable is a file the agent could not read.
type Unreadable struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// Cron lists cron files and their entries.
type Cron struct {
	Files      []CronFile   `json:"files"`
	Unreadable []Unreadable `json:"unreadable,omitempty"`
	Entries    int          `json:"entries"`
	Truncated  bool         `json:"truncated,omitempty"`
}

func (c *Cron) Metrics() []Metric {
	return []Metric{
		gauge("kubemate_host_cron_files", "Readable cron files.", float64(len(c.Files))),
		gauge("kubemate_host_cron_entries", "Non-comment lines in readable cron files.", float64(c.Entries)),
		gauge("kubemate_host_cron_unreadable_files", "Cron files the agent could not read.", float64(len(c.Unreadable))),
	}
}

func collectCron(ctx context.Context, e *Env) (Facts, error) {
	c := &Cron{Files: []CronFile{}}
	var paths []string
	for _, g := range e.Cfg.CronPaths {
		m, err := filepath.Glob(e.Path(g))
		if err != nil {
			continue
		}
		paths = append(paths, m...)
		// Glob hides unreadable directories (the crontabs spool is often
		// root:crontab 0730); say so rather than report "no cron jobs".
		if dir := filepath.Dir(e.Path(g)); len(m) == 0 && filepath.Base(g) != filepath.Base(dir) {
			if _, err := os.ReadDir(dir); err != nil && errors.Is(err, fs.ErrPermission) {
				c.Unreadable = append(c.Unreadable, Unreadable{Path: e.HostPath(dir), Error: errText(err)})
			}
		}
	}
	sort.Strings(paths)
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		base := filepath.Base(p)
		// run-parts ignores dot files and editor/package leftovers.
		if strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") ||
			strings.Contains(base, ".dpkg-") || base == "placeholder" {
			continue
		}
		if len(c.Files) >= maxCronFiles {
			c.Truncated = true
			break
		}
		data, err := readFileLimit(p, maxCronFileBytes)
		if err != nil {
			c.Unreadable = append(c.Unreadable, Unreadable{Path: e.HostPath(p), Error: errText(err)})
			continue
		}
		f := CronFile{Path: e.HostPath(p), Lines: []string{}}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if len(f.Lines) >= maxCronLines {
				f.Truncated = true
				break
			}
			if len(line) > maxCronLineBytes {
				line = line[:maxCronLineBytes] + "…"
			}
			f.Lines = append(f.Lines, line)
		}
		c.Entries += len(f.Lines)
		c.Files = append(c.Files, f)
	}
	return c, nil
}

// errText drops the path from filesystem errors (the path is reported apart).
func errText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
