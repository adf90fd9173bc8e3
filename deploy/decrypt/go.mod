module kubemate.local/decrypt

go 1.26
