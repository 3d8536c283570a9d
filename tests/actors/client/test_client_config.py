"""Credentials in docker's config.json: auths, helpers, X-Registry-Auth, atomic writes."""

import base64
import json
import os
import stat

import pytest

from actors.client import config


@pytest.mark.parametrize(("address", "key"), [
    ("", config.HUB_ADDRESS), ("docker.io", config.HUB_ADDRESS),
    ("https://index.docker.io/v1/", config.HUB_ADDRESS), ("index.docker.io", config.HUB_ADDRESS),
    ("myreg:5000", "myreg:5000"), ("https://myreg:5000/v2/", "myreg:5000"),
])
def test_registry_keys(address, key):
    assert config.normalize_registry(address) == key


def test_store_get_remove_keeps_other_settings(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"psFormat": "{{.ID}}", "auths": {}}))
    stored = config.ConfigFile(str(tmp_path))
    stored.store_auth("myreg:5000", "bob", "pa:ss")
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["psFormat"] == "{{.ID}}"
    assert base64.b64decode(data["auths"]["myreg:5000"]["auth"]) == b"bob:pa:ss"
    assert stat.S_IMODE(os.stat(tmp_path / "config.json").st_mode) == 0o600
    again = config.ConfigFile(str(tmp_path))
    assert again.get_auth("https://myreg:5000") == {"serveraddress": "myreg:5000",
                                                    "username": "bob", "password": "pa:ss"}
    assert again.get_auth("other") == {}
    assert again.remove_auth("myreg:5000") is True
    assert again.remove_auth("myreg:5000") is False
    assert not list(tmp_path.glob("*.tmp"))


def test_identity_token_is_stored_instead_of_the_password(tmp_path):
    stored = config.ConfigFile(str(tmp_path))
    stored.store_auth("docker.io", "bob", "secret", identity_token="tok")
    entry = json.loads((tmp_path / "config.json").read_text())["auths"][config.HUB_ADDRESS]
    assert entry["identitytoken"] == "tok"
    assert base64.b64decode(entry["auth"]) == b"bob:"


def test_invalid_config_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(config.ConfigError, match="is not valid JSON"):
        config.ConfigFile(str(tmp_path))


def test_registry_auth_header_encodings(tmp_path):
    assert config.registry_auth_header(str(tmp_path), "docker.io") == "e30="
    config.ConfigFile(str(tmp_path)).store_auth("reg:1", "u", "p")
    header = config.registry_auth_header(str(tmp_path), "reg:1")
    assert json.loads(base64.urlsafe_b64decode(header)) == {
        "serveraddress": "reg:1", "username": "u", "password": "p"}


def test_credential_helper_is_used(tmp_path, monkeypatch):
    store = tmp_path / "helper-store.json"
    helper = tmp_path / "bin" / "docker-credential-fake"
    helper.parent.mkdir()
    helper.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"path = {str(store)!r}\n"
        "try:\n    data = json.load(open(path))\nexcept FileNotFoundError:\n    data = {}\n"
        "action = sys.argv[1]\n"
        "payload = sys.stdin.read()\n"
        "if action == 'store':\n"
        "    item = json.loads(payload); data[item['ServerURL']] = item\n"
        "elif action == 'get':\n"
        "    if payload.strip() not in data:\n"
        "        print('credentials not found in native keychain'); sys.exit(1)\n"
        "    print(json.dumps(data[payload.strip()]))\n"
        "elif action == 'erase':\n"
        "    data.pop(payload.strip(), None)\n"
        "json.dump(data, open(path, 'w'))\n"
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:{os.environ['PATH']}")
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "fake"}))
    stored = config.ConfigFile(str(tmp_path))
    assert stored.uses_helper("reg:1")
    assert stored.get_auth("reg:1") == {}
    stored.store_auth("reg:1", "u", "p")
    assert json.loads(store.read_text())["reg:1"]["Secret"] == "p"
    assert config.ConfigFile(str(tmp_path)).get_auth("reg:1") == {
        "serveraddress": "reg:1", "username": "u", "password": "p"}
    assert stored.remove_auth("reg:1")
    assert json.loads(store.read_text()) == {}
