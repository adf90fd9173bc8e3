// Command velero is Velero's own command (github.com/vmware-tanzu/velero/cmd/velero at the version in go.mod,
// the same few lines) with one change for a server run outside a cluster: the metrics server that
// controller-runtime's manager starts by default on ":8080" (every interface; Velero sets no address for it and
// has no flag for it) is off, or on the address in $VELERO_MANAGER_METRICS_ADDRESS. In a pod that port is private;
// on a host, two servers (two test sessions, the demo and a test run) or anything else on 8080 would make the
// second one exit with "failed to start metrics server: ... address already in use". Velero's own metrics stay on
// --metrics-address.
package main

import (
	"os"
	"path/filepath"

	"github.com/vmware-tanzu/velero/pkg/cmd"
	"github.com/vmware-tanzu/velero/pkg/cmd/velero"
	"k8s.io/klog/v2"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

func main() {
	defer klog.Flush()

	metricsserver.DefaultBindAddress = "0" // "0" turns controller-runtime's metrics server off
	if address := os.Getenv("VELERO_MANAGER_METRICS_ADDRESS"); address != "" {
		metricsserver.DefaultBindAddress = address
	}

	baseName := filepath.Base(os.Args[0])
	err := velero.NewCommand(baseName).Execute()
	cmd.CheckError(err)
}
