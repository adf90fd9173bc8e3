module kubemate.local/sandbox/tools/prometheus-operator

go 1.26.0

// Only the CRD manifests of this module are used (example/prometheus-operator-crd): PrometheusRule and
// AlertmanagerConfig, the objects Kubemate writes for alert rules and notifications.
require github.com/prometheus-operator/prometheus-operator v0.94.0
