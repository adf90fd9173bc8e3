from apps.clusters.inventory.summaries import byte_count, millicores, row_fields, strip


def test_quantities_convert_to_millicores_and_bytes():
    assert [millicores(q) for q in ("250m", "2", "123456789n", "1500u", "0.5")] == [250, 2000, 123, 2, 500]
    assert [byte_count(q) for q in ("512Mi", "1Gi", "1000", "2k", "1.5Ki")] == [536870912, 1073741824, 1000, 2000, 1536]


def test_node_metrics_rows_carry_usage():
    fields = row_fields(
        "NodeMetrics",
        {
            "metadata": {"name": "node-000", "uid": "6f1c1d8e-1111-4a5b-9c0d-000000000001"},
            "usage": {"cpu": "1500m", "memory": "2Gi"},
        },
    )
    assert fields["summary"] == {"cpu_millicores": 1500, "memory_bytes": 2147483648}


def test_crash_looping_pod_is_named_by_its_waiting_reason():
    pod = {
        "metadata": {"name": "importer", "namespace": "payments", "uid": "6f1c1d8e-1111-4a5b-9c0d-000000000002"},
        "spec": {"containers": [{"name": "importer"}], "nodeName": "node-001"},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "importer",
                    "ready": False,
                    "restartCount": 7,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                }
            ],
        },
    }
    fields = row_fields("Pod", pod)
    assert fields["status"] == "CrashLoopBackOff"
    assert fields["summary"] == {"ready": "0/1", "restarts": 7, "node": "node-001", "ip": ""}


def test_secrets_are_stored_without_data_or_applied_configuration():
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": "db",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"data":{"p":"aHVudGVy"}}'},
            "managedFields": [{"manager": "kubectl"}],
        },
        "data": {"password": "aHVudGVyMg=="},
        "stringData": {"x": "y"},
    }
    stored = strip("Secret", secret)
    assert stored == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "annotations": {}},
        "type": "Opaque",
        "keys": ["password"],
    }
