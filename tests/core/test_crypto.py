import pytest
from cryptography.fernet import Fernet

from apps.core import crypto


def test_encrypt_round_trip_and_ciphertext_hides_the_value():
    token = crypto.encrypt("token-abc123")
    assert "token-abc123" not in token
    assert crypto.decrypt(token) == "token-abc123"


def test_rotation_keeps_old_values_readable_and_rotate_moves_to_new_key(settings):
    old = Fernet.generate_key().decode()
    new = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    token = crypto.encrypt("kubeconfig")
    settings.ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(token) == "kubeconfig"
    rotated = crypto.rotate(token)
    settings.ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == "kubeconfig"
    with pytest.raises(crypto.DecryptionFailed, match="cannot be decrypted"):
        crypto.decrypt(token)
