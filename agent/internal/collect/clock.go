package collect

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

// Clock is the local clock's offset against the configured NTP server.
// Status is "ok", or "unknown" when no server is configured or it did not
// answer; the report never fails for lack of NTP.
type Clock struct {
	Status        string   `json:"status"`
	Server        string   `json:"server,omitempty"`
	OffsetSeconds *float64 `json:"offset_seconds"`
	RTTSeconds    *float64 `json:"rtt_seconds,omitempty"`
	Stratum       int      `json:"stratum,omitempty"`
	Reason        string   `json:"reason,omitempty"`
}

func (c *Clock) Metrics() []Metric {
	ms := []Metric{gauge("kubemate_host_clock_offset_known", "1 if the clock offset against NTP is known.", boolf(c.OffsetSeconds != nil))}
	if c.OffsetSeconds != nil {
		ms = append(ms, gauge("kubemate_host_clock_offset_seconds", "Local clock minus NTP server time (SNTP).", *c.OffsetSeconds))
	}
	return ms
}

const ntpEpochOffset = 2208988800 // seconds from 1900 to 1970

func toNTP(t time.Time) uint64 {
	sec := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

func fromNTP(v uint64) time.Time {
	sec := int64(v>>32) - ntpEpochOffset
	nsec := int64((v & 0xffffffff) * 1e9 >> 32)
	return time.Unix(sec, nsec)
}

// sntpQuery sends one SNTP v4 client request and computes the offset of the
// local clock: ((T2-T1)+(T3-T4))/2 is server minus local, negated here.
func sntpQuery(ctx context.Context, server string, now func() time.Time) (offset, rtt time.Duration, stratum int, err error) {
	if _, _, e := net.SplitHostPort(server); e != nil {
		server = net.JoinHostPort(server, "123")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return 0, 0, 0, err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = now().Add(2 * time.Second)
	}
	conn.SetDeadline(deadline)
	req := make([]byte, 48)
	req[0] = 0<<6 | 4<<3 | 3 // LI=0, VN=4, Mode=3 (client)
	t1 := now()
	binary.BigEndian.PutUint64(req[40:], toNTP(t1))
	if _, err = conn.Write(req); err != nil {
		return 0, 0, 0, err
	}
	resp := make([]byte, 128)
	n, err := conn.Read(resp)
	t4 := now()
	if err != nil {
		return 0, 0, 0, err
	}
	if n < 48 {
		return 0, 0, 0, errors.New("short NTP reply")
	}
	mode := resp[0] & 7
	stratum = int(resp[1])
	if mode != 4 && mode != 5 {
		return 0, 0, 0, fmt.Errorf("unexpected NTP mode %d", mode)
	}
	if stratum == 0 || resp[0]>>6 == 3 {
		return 0, 0, stratum, errors.New("NTP server unsynchronised (kiss-o'-death or alarm)")
	}
	if binary.BigEndian.Uint64(resp[24:]) != toNTP(t1) {
		return 0, 0, 0, errors.New("NTP reply does not match the request")
	}
	t2 := fromNTP(binary.BigEndian.Uint64(resp[32:]))
	t3 := fromNTP(binary.BigEndian.Uint64(resp[40:]))
	serverMinusLocal := (t2.Sub(t1) + t3.Sub(t4)) / 2
	rtt = t4.Sub(t1) - t3.Sub(t2)
	return -serverMinusLocal, rtt, stratum, nil
}

func collectClock(ctx context.Context, e *Env) (Facts, error) {
	c := &Clock{Status: "unknown", Server: e.Cfg.NTPServer}
	if e.Cfg.NTPServer == "" {
		c.Reason = "no ntp_server configured"
		return c, nil
	}
	// Leave some of the collector's budget for reporting "unknown".
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		if rest := time.Until(dl) * 8 / 10; rest < 2*time.Second {
			cancel()
			qctx, cancel = context.WithTimeout(ctx, rest)
			defer cancel()
		}
	}
	off, rtt, stratum, err := sntpQuery(qctx, e.Cfg.NTPServer, e.Now)
	if err != nil {
		c.Reason = err.Error()
		return c, nil
	}
	o, r := round(off.Seconds(), 6), round(rtt.Seconds(), 6)
	c.Status, c.OffsetSeconds, c.RTTSeconds, c.Stratum = "ok", &o, &r, stratum
	return c, nil
}
