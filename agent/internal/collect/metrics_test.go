package collect

import (
	"bytes"
	"math"
	"testing"
)

func TestWriteText(t *testing.T) {
	var buf bytes.Buffer
	err := WriteText(&buf, []Metric{
		gauge("b_metric", "Help with \\ and\nnewline.", 2.5, l("path", `C:\x "q"`+"\nz")),
		counter("a_total", "A counter.", 3),
		gauge("b_metric", "ignored second help", math.Inf(1), l("path", "other")),
		gauge("b_metric", "dup", 9, l("path", "other")), // duplicate series dropped
		gauge("c", "nan", math.NaN()),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `# HELP a_total A counter.
# TYPE a_total counter
a_total 3
# HELP b_metric Help with \\ and\nnewline.
# TYPE b_metric gauge
b_metric{path="C:\\x \"q\"\nz"} 2.5
b_metric{path="other"} +Inf
# HELP c nan
# TYPE c gauge
c NaN
`
	if got := buf.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1e21: "1e+21", 0.25: "0.25", -3: "-3", 9223372036854775807: "9.223372036854776e+18"} {
		if got := FormatValue(v); got != want {
			t.Errorf("FormatValue(%v) = %s, want %s", v, got, want)
		}
	}
}
