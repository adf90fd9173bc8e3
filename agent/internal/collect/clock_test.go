package collect

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"kubemate.local/agent/internal/config"
)

// fakeNTP answers SNTP requests on loopback with a clock skewed by skew.
func fakeNTP(t *testing.T, skew time.Duration, stratum byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Skip("no loopback UDP:", err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 48 {
				continue
			}
			resp := make([]byte, 48)
			resp[0] = 0<<6 | 4<<3 | 4
			resp[1] = stratum
			copy(resp[24:32], buf[40:48]) // originate = client's transmit
			now := time.Now().Add(skew)
			binary.BigEndian.PutUint64(resp[32:], toNTP(now))
			binary.BigEndian.PutUint64(resp[40:], toNTP(now))
			pc.WriteTo(resp, addr)
		}
	}()
	return pc.LocalAddr().String()
}

func TestClockAgainstLocalSNTP(t *testing.T) {
	addr := fakeNTP(t, -3*time.Second, 2)
	cfg := config.Default()
	cfg.NTPServer = addr
	e := &Env{Cfg: &cfg, Now: time.Now}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	f, err := collectClock(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	c := f.(*Clock)
	// The server is 3 s behind, so the local clock is 3 s ahead.
	if c.Status != "ok" || c.OffsetSeconds == nil || *c.OffsetSeconds < 2.9 || *c.OffsetSeconds > 3.1 || c.Stratum != 2 {
		t.Fatalf("clock = %+v offset %v", c, c.OffsetSeconds)
	}
}

func TestClockUnreachableIsUnknown(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // never answers
	if err != nil {
		t.Skip(err)
	}
	defer pc.Close()
	for _, tc := range []struct{ name, server string }{
		{"silent", pc.LocalAddr().String()},
		{"unsynchronised", fakeNTP(t, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.NTPServer = tc.server
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			f, err := collectClock(ctx, &Env{Cfg: &cfg, Now: time.Now})
			if err != nil {
				t.Fatal(err)
			}
			if c := f.(*Clock); c.Status != "unknown" || c.OffsetSeconds != nil || c.Reason == "" {
				t.Fatalf("clock = %+v", c)
			}
		})
	}
}

func TestNTPTimestampRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 4, 1, 2, 3, 456789000, time.UTC)
	if d := fromNTP(toNTP(now)).Sub(now); d < -time.Microsecond || d > time.Microsecond {
		t.Fatalf("round trip off by %v", d)
	}
}
