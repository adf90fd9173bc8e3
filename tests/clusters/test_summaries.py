from apps.clusters.inventory.pages.tables import hpa_metrics_text
from apps.clusters.inventory.summaries import row_fields, strip


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
        "spec": {
            "containers": [{"name": "importer", "image": "registry.bank.example/importer:3.1"}],
            "nodeName": "node-001",
        },
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
    assert fields["summary"] == {
        "ready": "0/1",
        "restarts": 7,
        "node": "node-001",
        "ip": "",
        "images": ["registry.bank.example/importer:3.1"],
    }


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


def test_an_autoscaler_row_carries_each_target_and_the_current_reading():
    hpa = {
        "metadata": {"name": "web", "namespace": "shop", "uid": "6f1c1d8e-1111-4a5b-9c0d-000000000003"},
        "spec": {
            "minReplicas": 2,
            "maxReplicas": 5,
            "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"averageUtilization": 70}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"averageValue": "200Mi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "queue"}, "target": {"averageValue": "5"}}},
            ],
        },
        "status": {
            "currentReplicas": 2,
            "desiredReplicas": 3,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 72}}},
                {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "150Mi"}}},
            ],
        },
    }

    summary = row_fields("HorizontalPodAutoscaler", hpa)["summary"]

    assert summary["metrics"] == [
        {"name": "cpu", "target_percent": 70, "target_value": None, "current_percent": 72, "current_value": None},
        {
            "name": "memory",
            "target_percent": None,
            "target_value": "200Mi",
            "current_percent": None,
            "current_value": "150Mi",
        },
    ]
    assert hpa_metrics_text(summary["metrics"]) == "cpu 72% / 70%, memory 150Mi / 200Mi"
    assert hpa_metrics_text([{"name": "cpu", "target_percent": 70}]) == "cpu ? / 70%"
