package collect

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"
)

const (
	maxCertFiles     = 1000
	maxCertsPerFile  = 50
	maxCertFileBytes = 1 << 20
)

// Certificate is one certificate found in a PEM file.
type Certificate struct {
	Path         string    `json:"path"`
	Subject      string    `json:"subject"`
	Issuer       string    `json:"issuer"`
	Serial       string    `json:"serial"`
	NotBefore    time.Time `json:"not_before"`
	NotAfter     time.Time `json:"not_after"`
	DaysLeft     int       `json:"days_left"`
	Expired      bool      `json:"expired"`
	ExpiringSoon bool      `json:"expiring_soon"`
	Error        string    `json:"error,omitempty"`
}

// Certs lists certificates from the configured PEM globs, soonest expiry first.
type Certs struct {
	WarnDays     int           `json:"warn_days"`
	Certificates []Certificate `json:"certificates"`
	Expired      int           `json:"expired"`
	ExpiringSoon int           `json:"expiring_soon"`
	Unreadable   []Unreadable  `json:"unreadable,omitempty"`
	Truncated    bool          `json:"truncated,omitempty"`
	now          time.Time
}

func (c *Certs) Metrics() []Metric {
	now := c.now
	ms := []Metric{
		gauge("kubemate_host_certificates_expired", "Certificates past notAfter.", float64(c.Expired)),
		gauge("kubemate_host_certificates_expiring_soon", "Certificates within warn_days of notAfter.", float64(c.ExpiringSoon)),
	}
	for _, x := range c.Certificates {
		if x.Error != "" {
			continue
		}
		lb := []Label{l("path", x.Path), l("subject", x.Subject), l("serial", x.Serial)}
		ms = append(ms,
			gauge("kubemate_host_certificate_not_after_timestamp_seconds", "Certificate notAfter (Unix time).", float64(x.NotAfter.Unix()), lb...),
			gauge("kubemate_host_certificate_remaining_seconds", "Seconds until notAfter (negative when expired); days_left is in /report.", math.Round(x.NotAfter.Sub(now).Seconds()), lb...),
		)
	}
	return ms
}

func collectCerts(ctx context.Context, e *Env) (Facts, error) {
	now := e.Now()
	c := &Certs{WarnDays: e.Cfg.CertWarnDays, Certificates: []Certificate{}, now: now}
	var paths []string
	for _, g := range e.Cfg.CertGlobs {
		m, err := filepath.Glob(e.Path(g))
		if err == nil {
			paths = append(paths, m...)
		}
	}
	sort.Strings(paths)
	seen := map[string]bool{}
	files := 0
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
		if files >= maxCertFiles {
			c.Truncated = true
			break
		}
		files++
		if st.Size() > maxCertFileBytes {
			c.Unreadable = append(c.Unreadable, Unreadable{Path: e.HostPath(p), Error: "file larger than 1 MiB"})
			continue
		}
		data, err := readFileLimit(p, maxCertFileBytes)
		if err != nil {
			c.Unreadable = append(c.Unreadable, Unreadable{Path: e.HostPath(p), Error: errText(err)})
			continue
		}
		n := 0
		// Only CERTIFICATE blocks are parsed; any key material in the same
		// file is skipped and never kept.
		for len(data) > 0 && n < maxCertsPerFile {
			var b *pem.Block
			b, data = pem.Decode(data)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			n++
			x := Certificate{Path: e.HostPath(p)}
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				x.Error = err.Error()
				c.Certificates = append(c.Certificates, x)
				continue
			}
			x.Subject = cert.Subject.String()
			x.Issuer = cert.Issuer.String()
			x.Serial = cert.SerialNumber.Text(16)
			x.NotBefore, x.NotAfter = cert.NotBefore.UTC(), cert.NotAfter.UTC()
			x.DaysLeft = int(math.Floor(cert.NotAfter.Sub(now).Hours() / 24))
			x.Expired = now.After(cert.NotAfter)
			x.ExpiringSoon = !x.Expired && cert.NotAfter.Sub(now) < time.Duration(e.Cfg.CertWarnDays)*24*time.Hour
			if x.Expired {
				c.Expired++
			} else if x.ExpiringSoon {
				c.ExpiringSoon++
			}
			c.Certificates = append(c.Certificates, x)
		}
	}
	sort.SliceStable(c.Certificates, func(i, j int) bool {
		return c.Certificates[i].NotAfter.Before(c.Certificates[j].NotAfter)
	})
	return c, nil
}
