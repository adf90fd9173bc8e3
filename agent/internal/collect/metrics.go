package collect

import (
	"bufio"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Label is one Prometheus label pair.
type Label struct{ Name, Value string }

// Sample is one value of a metric family.
type Sample struct {
	Labels []Label
	Value  float64
}

// Metric is one metric family in the Prometheus text exposition format.
type Metric struct {
	Name    string
	Help    string
	Type    string // "gauge" or "counter"
	Samples []Sample
}

func gauge(name, help string, v float64, labels ...Label) Metric {
	return Metric{Name: name, Help: help, Type: "gauge", Samples: []Sample{{Labels: labels, Value: v}}}
}

func counter(name, help string, v float64, labels ...Label) Metric {
	return Metric{Name: name, Help: help, Type: "counter", Samples: []Sample{{Labels: labels, Value: v}}}
}

func l(name, value string) Label { return Label{name, value} }

// WriteText writes metric families in the Prometheus text format 0.0.4.
// Families with the same name are merged; families are sorted by name and
// each gets exactly one # HELP and # TYPE line.
func WriteText(w io.Writer, metrics []Metric) error {
	byName := map[string]*Metric{}
	var names []string
	for _, m := range metrics {
		if cur, ok := byName[m.Name]; ok {
			cur.Samples = append(cur.Samples, m.Samples...)
			continue
		}
		cp := m
		cp.Samples = append([]Sample(nil), m.Samples...)
		byName[m.Name] = &cp
		names = append(names, m.Name)
	}
	sort.Strings(names)
	bw := bufio.NewWriter(w)
	for _, n := range names {
		m := byName[n]
		bw.WriteString("# HELP " + n + " " + escapeHelp(m.Help) + "\n")
		typ := m.Type
		if typ == "" {
			typ = "untyped"
		}
		bw.WriteString("# TYPE " + n + " " + typ + "\n")
		seen := map[string]bool{}
		for _, s := range m.Samples {
			key := labelKey(s.Labels)
			if seen[key] {
				continue // a series appears once; the first one wins
			}
			seen[key] = true
			bw.WriteString(n)
			if len(s.Labels) > 0 {
				bw.WriteByte('{')
				for i, lb := range s.Labels {
					if i > 0 {
						bw.WriteByte(',')
					}
					bw.WriteString(lb.Name + `="` + EscapeLabelValue(lb.Value) + `"`)
				}
				bw.WriteByte('}')
			}
			bw.WriteByte(' ')
			bw.WriteString(FormatValue(s.Value))
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

// EscapeLabelValue escapes backslash, double quote and newline.
func EscapeLabelValue(s string) string { return labelEscaper.Replace(s) }

func escapeHelp(s string) string { return helpEscaper.Replace(s) }

// FormatValue renders a float the way Prometheus expects.
func FormatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func labelKey(ls []Label) string {
	var b strings.Builder
	for _, lb := range ls {
		b.WriteString(lb.Name + "\x00" + lb.Value + "\x00")
	}
	return b.String()
}
