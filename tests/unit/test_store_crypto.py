"""Secrets at rest: the SecretBox format, key handling, and that no secret shows in any text."""

from __future__ import annotations

import base64
import os
import secrets
import stat
import threading
from pathlib import Path

import pytest

from blingsync.bling.auth import StoredTokens
from blingsync.bling.secrets import Secret
from blingsync.config import ConfigError
from blingsync.store import CredentialsUnreadable, SecretBox, SecretKeyError
from blingsync.store.crypto import (
    GENERATE_KEY_HINT,
    KEY_FILE_NAME,
    DecryptionFailed,
    credentials_aad,
    credentials_from_json,
    credentials_to_json,
    open_credentials,
    parse_key,
    seal_credentials,
)
from blingsync.store.records import V2Credentials, V3Credentials

SECRET = "client-secret-0123456789ABCDEF"
API_KEY = "api-key-fedcba9876543210fedcba98"
TOKENS = StoredTokens(Secret("access-token-aaaaaaaaaaaaaaaaaaaa"),
                      Secret("refresh-token-bbbbbbbbbbbbbbbbbbbb"), expires_at=1_790_000_000.25, scope=(1, 2))


def key_text(key: bytes | None = None) -> str:
    return base64.urlsafe_b64encode(key or secrets.token_bytes(32)).decode()


def test_round_trip_and_fresh_nonces() -> None:
    box = SecretBox.generate()
    one, two = box.encrypt(b"hello", b"ad"), box.encrypt(b"hello", b"ad")
    assert one != two  # random nonce
    assert box.decrypt(one, b"ad") == box.decrypt(two, b"ad") == b"hello"
    assert one[0] == 1 and one[1:5] == bytes.fromhex(box.key_id)
    assert b"hello" not in one


def test_associated_data_binds_the_blob() -> None:
    box = SecretBox.generate()
    blob = box.encrypt(b"secret", credentials_aad(1))
    with pytest.raises(DecryptionFailed, match="copied from another account"):
        box.decrypt(blob, credentials_aad(2))


def test_altered_or_foreign_blobs_fail() -> None:
    box = SecretBox.generate()
    blob = bytearray(box.encrypt(b"secret", b"ad"))
    blob[-1] ^= 1
    with pytest.raises(DecryptionFailed, match="fail authentication"):
        box.decrypt(bytes(blob), b"ad")
    with pytest.raises(DecryptionFailed, match="not in a format"):
        box.decrypt(b"\x02" + bytes(blob[1:]), b"ad")
    with pytest.raises(DecryptionFailed, match="not in a format"):
        box.decrypt(b"", b"ad")


def test_wrong_key_is_named_by_key_ids() -> None:
    writer, reader = SecretBox.generate(), SecretBox.generate()
    blob = writer.encrypt(b"secret", b"ad")
    with pytest.raises(DecryptionFailed) as caught:
        reader.decrypt(blob, b"ad")
    assert writer.key_id in caught.value.why and reader.key_id in caught.value.why


def test_previous_keys_still_read_and_rotation_is_visible() -> None:
    old_key, new_key = secrets.token_bytes(32), secrets.token_bytes(32)
    old_blob = SecretBox(old_key).encrypt(b"secret", b"ad")
    rotated = SecretBox(new_key, previous=[old_key])
    assert rotated.decrypt(old_blob, b"ad") == b"secret"
    assert rotated.needs_rotation(old_blob)
    new_blob = rotated.encrypt(b"secret", b"ad")
    assert not rotated.needs_rotation(new_blob)
    assert SecretBox(new_key).decrypt(new_blob, b"ad") == b"secret"


def test_credentials_are_sealed_per_account() -> None:
    box = SecretBox.generate()
    v3 = V3Credentials("client-id", SECRET, TOKENS)
    blob = seal_credentials(box, 7, v3)
    for plain in (SECRET, "access-token", "refresh-token", "client-id"):
        assert plain.encode() not in blob
    assert open_credentials(box, 7, blob) == v3
    with pytest.raises(DecryptionFailed):
        open_credentials(box, 8, blob)
    assert credentials_from_json(credentials_to_json(V2Credentials(API_KEY))) == V2Credentials(API_KEY)
    assert credentials_from_json(credentials_to_json(V3Credentials("c", "s"))) == V3Credentials("c", "s")


def test_nothing_secret_in_any_text() -> None:
    box = SecretBox.generate()
    texts = [
        repr(box), str(box),
        repr(V3Credentials("client-id", SECRET, TOKENS)), str(V3Credentials("client-id", SECRET, TOKENS)),
        repr(V2Credentials(API_KEY)),
        str(CredentialsUnreadable("marca", "they were encrypted with another secret key")),
    ]
    try:
        open_credentials(SecretBox.generate(), 1, seal_credentials(box, 1, V2Credentials(API_KEY)))
    except DecryptionFailed as exc:
        texts += [str(exc), repr(exc)]
    joined = "\n".join(texts)
    for secret in (SECRET, API_KEY, "access-token-aaaa", "refresh-token-bbbb"):
        assert secret not in joined
    assert "client-id" in joined  # not a secret, and useful in a log


# --- keys -------------------------------------------------------------------------------------


def test_parse_key_accepts_urlsafe_base64_of_32_bytes() -> None:
    key = secrets.token_bytes(32)
    assert parse_key(key_text(key), "X") == key
    assert parse_key(key_text(key).rstrip("=") + "\n", "X") == key


@pytest.mark.parametrize("bad", ["not a key!", "c2hvcnQ=", key_text(secrets.token_bytes(31)),
                                 base64.b64encode(b"\xfb" * 32).decode(), "çãõ"])
def test_parse_key_refuses_anything_else_saying_how_to_make_one(bad: str) -> None:
    with pytest.raises(SecretKeyError) as caught:
        parse_key(bad, "BLINGSYNC_SECRET_KEY")
    message = str(caught.value)
    assert isinstance(caught.value, ConfigError)
    assert message.startswith("BLINGSYNC_SECRET_KEY") and GENERATE_KEY_HINT in message
    assert bad not in message


def test_hint_command_generates_a_valid_key() -> None:
    generated = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()  # what the hint runs
    assert "secrets.token_bytes(32)" in GENERATE_KEY_HINT
    assert len(parse_key(generated, "X")) == 32


def test_from_settings_prefers_the_environment_key(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    warnings: list[str] = []
    box = SecretBox.from_settings(key_text(key), tmp_path, warnings.append)
    assert box.decrypt(SecretBox(key).encrypt(b"x", b""), b"") == b"x"
    assert warnings == [] and not (tmp_path / KEY_FILE_NAME).exists()
    with pytest.raises(SecretKeyError, match="BLINGSYNC_SECRET_KEY"):
        SecretBox.from_settings("tooshort", tmp_path, warnings.append)


def test_from_settings_creates_a_private_key_file_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    warnings: list[str] = []
    first = SecretBox.from_settings(None, data_dir, warnings.append)
    path = data_dir / KEY_FILE_NAME
    assert path.exists()
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [warning] = warnings
    assert str(path) in warning and "credentials" in warning and "BLINGSYNC_SECRET_KEY" in warning
    assert path.read_text().strip() not in warning

    second = SecretBox.from_settings("", data_dir, warnings.append)  # empty variable = unset
    assert second.key_id == first.key_id and len(warnings) == 1
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE_NAME]  # no temporary file left


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_key_file_readable_by_others_is_reported(tmp_path: Path) -> None:
    SecretBox.from_settings(None, tmp_path, lambda _: None)
    (tmp_path / KEY_FILE_NAME).chmod(0o644)
    warnings: list[str] = []
    SecretBox.from_settings(None, tmp_path, warnings.append)
    assert len(warnings) == 1 and "chmod 600" in warnings[0]


def test_a_broken_key_file_is_named(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE_NAME).write_text("garbage")
    with pytest.raises(SecretKeyError, match=f"the secret key file {tmp_path / KEY_FILE_NAME}"):
        SecretBox.from_settings(None, tmp_path, lambda _: None)


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    boxes: list[SecretBox] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        boxes.append(SecretBox.from_settings(None, tmp_path, lambda _: None))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({box.key_id for box in boxes}) == 1 and len(boxes) == 8
