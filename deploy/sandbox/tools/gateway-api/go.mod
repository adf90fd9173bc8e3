module kubemate.local/sandbox/tools/gateway-api

go 1.26.0

// Only the CRD manifests of this module are used (config/crd/standard).
require sigs.k8s.io/gateway-api v1.6.3
