package collect

import (
	"context"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// pseudoFS are filesystems without disk space worth checking.
var pseudoFS = map[string]bool{
	"autofs": true, "binfmt_misc": true, "bpf": true, "cgroup": true, "cgroup2": true,
	"configfs": true, "debugfs": true, "devpts": true, "devtmpfs": true, "efivarfs": true,
	"fusectl": true, "hugetlbfs": true, "mqueue": true, "nsfs": true, "overlay": true,
	"proc": true, "pstore": true, "rpc_pipefs": true, "securityfs": true, "selinuxfs": true,
	"squashfs": true, "sysfs": true, "tracefs": true, "tmpfs": true, "ramfs": true,
	"fuse.lxcfs": true, "fuse.gvfsd-fuse": true, "fuse.portal": true, "nfsd": true,
	"iso9660": true, "erofs": true, "shm": true, "rootfs": true,
}

// Mount is one /proc/mounts entry.
type Mount struct {
	Device, MountPoint, FSType string
	ReadOnly                   bool
}

// unescapeMount decodes the octal escapes of /proc/mounts (\040 is a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseMounts returns the real filesystems of a mounts file, one per mount
// point (the last mount on a point wins, as it hides the earlier ones).
func parseMounts(data []byte, ignorePrefixes []string) []Mount {
	byPoint := map[string]Mount{}
	var order []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || pseudoFS[f[2]] {
			continue
		}
		m := Mount{Device: unescapeMount(f[0]), MountPoint: unescapeMount(f[1]), FSType: f[2]}
		for _, o := range strings.Split(f[3], ",") {
			if o == "ro" {
				m.ReadOnly = true
			}
		}
		skip := false
		for _, p := range ignorePrefixes {
			if strings.HasPrefix(m.MountPoint+"/", p) || strings.HasPrefix(m.MountPoint, p) {
				skip = true
				break
			}
		}
		if skip {
			continue
		}
		if _, seen := byPoint[m.MountPoint]; !seen {
			order = append(order, m.MountPoint)
		}
		byPoint[m.MountPoint] = m
	}
	sort.Strings(order)
	out := make([]Mount, 0, len(order))
	for _, p := range order {
		out = append(out, byPoint[p])
	}
	return out
}

// Filesystem is the space and inode use of one mount.
type Filesystem struct {
	MountPoint      string  `json:"mountpoint"`
	Device          string  `json:"device"`
	FSType          string  `json:"fstype"`
	ReadOnly        bool    `json:"readonly"`
	SizeBytes       uint64  `json:"size_bytes"`
	AvailBytes      uint64  `json:"avail_bytes"`
	UsedBytes       uint64  `json:"used_bytes"`
	UsedRatio       float64 `json:"used_ratio"`
	Inodes          uint64  `json:"inodes"`
	InodesFree      uint64  `json:"inodes_free"`
	InodesUsedRatio float64 `json:"inodes_used_ratio"`
	Error           string  `json:"error,omitempty"`
}

// Disk lists filesystems from the host's mount table.
type Disk struct {
	Filesystems []Filesystem `json:"filesystems"`
	Skipped     int          `json:"skipped_over_limit,omitempty"`
}

func (d *Disk) Metrics() []Metric {
	var ms []Metric
	for _, f := range d.Filesystems {
		if f.Error != "" {
			continue
		}
		lb := []Label{l("mountpoint", f.MountPoint), l("device", f.Device), l("fstype", f.FSType)}
		ms = append(ms,
			gauge("kubemate_host_filesystem_size_bytes", "Filesystem size.", float64(f.SizeBytes), lb...),
			gauge("kubemate_host_filesystem_avail_bytes", "Space available to unprivileged users.", float64(f.AvailBytes), lb...),
			gauge("kubemate_host_filesystem_used_ratio", "Used / (used + available), as df reports it.", f.UsedRatio, lb...),
			gauge("kubemate_host_filesystem_inodes", "Total inodes.", float64(f.Inodes), lb...),
			gauge("kubemate_host_filesystem_inodes_free", "Free inodes.", float64(f.InodesFree), lb...),
			gauge("kubemate_host_filesystem_inodes_used_ratio", "Used inodes / total inodes.", f.InodesUsedRatio, lb...),
			gauge("kubemate_host_filesystem_readonly", "1 if mounted read-only.", boolf(f.ReadOnly), lb...),
		)
	}
	return ms
}

const maxMounts = 512

func collectDisk(ctx context.Context, e *Env) (Facts, error) {
	// /proc/1/mounts is the host's mount table when the agent sees host PIDs
	// (DaemonSet with hostPID, or systemd with a private mount namespace);
	// /proc/mounts is the fallback.
	data, err := e.readFirst(4<<20, "/proc/1/mounts", "/proc/mounts")
	if err != nil {
		return nil, err
	}
	mounts := parseMounts(data, e.Cfg.IgnoreMountPaths)
	d := &Disk{Filesystems: []Filesystem{}}
	if len(mounts) > maxMounts {
		d.Skipped = len(mounts) - maxMounts
		mounts = mounts[:maxMounts]
	}
	for _, m := range mounts {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fs := Filesystem{MountPoint: m.MountPoint, Device: m.Device, FSType: m.FSType, ReadOnly: m.ReadOnly}
		var st syscall.Statfs_t
		if err := syscall.Statfs(filepath.Join(e.Cfg.MountRoot, m.MountPoint), &st); err != nil {
			fs.Error = "statfs: " + err.Error()
		} else {
			bs := uint64(st.Bsize)
			fs.SizeBytes = st.Blocks * bs
			fs.AvailBytes = st.Bavail * bs
			free := st.Bfree * bs
			if fs.SizeBytes >= free {
				fs.UsedBytes = fs.SizeBytes - free
			}
			if fs.UsedBytes+fs.AvailBytes > 0 {
				fs.UsedRatio = round(float64(fs.UsedBytes)/float64(fs.UsedBytes+fs.AvailBytes), 4)
			}
			fs.Inodes, fs.InodesFree = st.Files, st.Ffree
			if st.Files > 0 && st.Files >= st.Ffree {
				fs.InodesUsedRatio = round(float64(st.Files-st.Ffree)/float64(st.Files), 4)
			}
		}
		d.Filesystems = append(d.Filesystems, fs)
	}
	return d, nil
}

// DiskDevice is one block device's counters and its utilisation over the sample.
type DiskDevice struct {
	Name            string  `json:"name"`
	ReadsCompleted  uint64  `json:"reads_completed"`
	WritesCompleted uint64  `json:"writes_completed"`
	IOInProgress    uint64  `json:"io_in_progress"`
	IOTimeMS        uint64  `json:"io_time_ms"`
	WeightedIOMS    uint64  `json:"weighted_io_time_ms"`
	UtilRatio       float64 `json:"util_ratio"`
}

// DiskIO is the CPU iowait share and per-device IO over one sample.
type DiskIO struct {
	SampleSeconds float64      `json:"sample_seconds"`
	IOWaitRatio   float64      `json:"iowait_ratio"`
	Devices       []DiskDevice `json:"devices"`
}

func (d *DiskIO) Metrics() []Metric {
	// The iowait share is also in the cpu collector's metrics; here it is
	// only in the JSON report, so the exposition has no duplicate series.
	var ms []Metric
	for _, v := range d.Devices {
		dl := l("device", v.Name)
		ms = append(ms,
			counter("kubemate_host_disk_reads_completed_total", "Reads completed.", float64(v.ReadsCompleted), dl),
			counter("kubemate_host_disk_writes_completed_total", "Writes completed.", float64(v.WritesCompleted), dl),
			counter("kubemate_host_disk_io_time_seconds_total", "Time spent doing IO.", float64(v.IOTimeMS)/1000, dl),
			counter("kubemate_host_disk_io_time_weighted_seconds_total", "Weighted time spent doing IO.", float64(v.WeightedIOMS)/1000, dl),
			gauge("kubemate_host_disk_io_in_progress", "IOs currently in progress.", float64(v.IOInProgress), dl),
			gauge("kubemate_host_disk_util_ratio", "Share of the sample the device was busy (0..1).", v.UtilRatio, dl),
		)
	}
	return ms
}

var skipDiskPrefixes = []string{"loop", "ram", "fd", "sr", "zram", "nbd"}

func parseDiskstats(data []byte) []DiskDevice {
	var out []DiskDevice
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 14 {
			continue
		}
		name := f[2]
		skip := false
		for _, p := range skipDiskPrefixes {
			if strings.HasPrefix(name, p) {
				skip = true
			}
		}
		if skip {
			continue
		}
		u := func(i int) uint64 { v, _ := strconv.ParseUint(f[i], 10, 64); return v }
		out = append(out, DiskDevice{
			Name: name, ReadsCompleted: u(3), WritesCompleted: u(7),
			IOInProgress: u(11), IOTimeMS: u(12), WeightedIOMS: u(13),
		})
		if len(out) >= 1024 {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func collectDiskIO(ctx context.Context, e *Env) (Facts, error) {
	before, err := e.readLimited("/proc/diskstats", 4<<20)
	if err != nil {
		return nil, err
	}
	a, b, _, d, err := sampleStat(ctx, e)
	if err != nil {
		return nil, err
	}
	after, err := e.readLimited("/proc/diskstats", 4<<20)
	if err != nil {
		return nil, err
	}
	_, iowait := cpuShares(a, b)
	out := &DiskIO{SampleSeconds: d.Seconds(), IOWaitRatio: round(iowait, 4), Devices: parseDiskstats(after)}
	prev := map[string]DiskDevice{}
	for _, v := range parseDiskstats(before) {
		prev[v.Name] = v
	}
	if ms := float64(d.Milliseconds()); ms > 0 {
		for i, v := range out.Devices {
			if p, ok := prev[v.Name]; ok && v.IOTimeMS >= p.IOTimeMS {
				out.Devices[i].UtilRatio = round(clamp01(float64(v.IOTimeMS-p.IOTimeMS)/ms), 4)
			}
		}
	}
	return out, nil
}
