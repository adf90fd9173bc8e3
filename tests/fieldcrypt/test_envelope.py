"""The envelope (apps/fieldcrypt/envelope.py): what it refuses to open."""

import pytest

from apps.fieldcrypt import envelope


@pytest.fixture
def key():
    return envelope.new_key()


def test_a_sealed_value_opens_for_its_field_and_key_version_only(key):
    token = envelope.seal(key, 3, "DB_PASSWORD", "s3cr3t-Pa55")

    assert token.startswith("kmenc:v1:3:") and "s3cr3t" not in token
    assert envelope.open_({3: key}, "DB_PASSWORD", token) == "s3cr3t-Pa55"
    assert envelope.seal(key, 3, "DB_PASSWORD", "s3cr3t-Pa55") != token  # a fresh nonce each time
    with pytest.raises(envelope.EnvelopeError, match="sealed for another field"):
        envelope.open_({3: key}, "API_TOKEN", token)
    with pytest.raises(envelope.EnvelopeError, match="key version 3, which is gone"):
        envelope.open_({4: key}, "DB_PASSWORD", token)
    with pytest.raises(envelope.EnvelopeError, match="sealed for another field"):
        envelope.open_({3: envelope.new_key()}, "DB_PASSWORD", token)


@pytest.mark.parametrize("position", [-1, -20, 15])
def test_an_altered_ciphertext_does_not_open(key, position):
    token = envelope.seal(key, 1, "F", "value")
    flipped = "A" if token[position] != "A" else "B"
    altered = token[:position] + flipped + (token[position + 1 :] if position != -1 else "")

    with pytest.raises(envelope.EnvelopeError):
        envelope.open_({1: key}, "F", altered)


def test_oversized_or_foreign_values_get_a_sentence(key):
    with pytest.raises(envelope.EnvelopeError, match="at most 1 MiB"):
        envelope.seal(key, 1, "BIG", "x" * (1024 * 1024 + 1))
    with pytest.raises(envelope.EnvelopeError, match="not encrypted by Kubemate"):
        envelope.open_({1: key}, "F", "plain")
    with pytest.raises(envelope.EnvelopeError, match="not a number"):
        envelope.open_({1: key}, "F", "kmenc:v1:one:abc")
