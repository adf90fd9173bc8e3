module kubemate.local/agent

go 1.26.0
