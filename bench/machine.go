package bench

import (
	"bufio"
	"os"
	"runtime"
	"strings"
)

// Machine describes where the numbers were taken. Load is the 1, 5 and 15
// minute load averages: on a shared machine, read every figure with it.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	Load       string `json:"load"`
	Hostname   string `json:"hostname,omitempty"`
}

// ReadMachine reads the machine description (Linux /proc; fields it cannot
// read stay empty).
func ReadMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
		Load: LoadAverage()}
	m.Hostname, _ = os.Hostname()
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(data))
	} else {
		m.Kernel = runtime.GOOS
	}
	m.CPU = cpuModel()
	return m
}

// LoadAverage returns "1m 5m 15m" from /proc/loadavg, or "".
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
