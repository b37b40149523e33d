"""Access keys and replay protection for signed requests (engine serve), and the store's file mode.

Keys look like the service's (LTAI + 20 letters and digits, 30-character secret); a revoked or
unknown key has no secret; a SignatureNonce is accepted once per key while it lives, even when
several processes on one store race for it; the store file, which holds the secrets, is 0600.
"""

from __future__ import annotations

import json
import re
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner

from animated_previews.cli.main import main
from animated_previews.engine import EngineError, ErrorCode, Service
from animated_previews.engine.store.nonces import use_nonce
from animated_previews.engine.store.schema import MIGRATIONS

KEY_ID = re.compile(r"^LTAI[A-Za-z0-9]{20}$")
SECRET = re.compile(r"^[A-Za-z0-9]{30}$")


@pytest.fixture
def engine(tmp_path):
    with Service(store=tmp_path / "store.db") as e:
        yield e


def test_a_new_key_looks_like_the_services_and_is_listed_with_its_secret_kept(engine):
    first, second = engine.create_access_key(), engine.create_access_key()
    assert KEY_ID.match(first.id) and SECRET.match(first.secret)
    assert first.id != second.id and first.secret != second.secret
    assert first.revoked is None and abs(first.created - time.time()) < 60
    assert [k.id for k in engine.access_keys()] == [first.id, second.id]
    assert engine.access_key_secret(first.id) == first.secret
    assert engine.access_key_secret("LTAInosuchkey00000000000") is None


def test_a_revoked_key_has_no_secret_and_stays_listed(engine):
    key = engine.create_access_key()
    revoked = engine.revoke_access_key(key.id)
    assert revoked.id == key.id and revoked.revoked is not None
    assert engine.access_key_secret(key.id) is None
    assert engine.revoke_access_key(key.id).revoked == revoked.revoked  # revoking again keeps the first time
    [listed] = engine.access_keys()
    assert listed.revoked == revoked.revoked
    utc = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    assert engine.access_key_info(listed) == {"AccessKeyId": key.id, "Status": "Revoked",
                                              "CreationTime": utc(key.created), "RevokeTime": utc(revoked.revoked)}
    assert "secret" not in json.dumps(engine.access_key_info(listed)).lower()


def test_revoking_an_unknown_key_is_access_key_not_found(engine):
    with pytest.raises(EngineError) as unknown:
        engine.revoke_access_key("LTAInosuchkey00000000000")
    assert unknown.value.code is ErrorCode.ACCESS_KEY_NOT_FOUND
    assert unknown.value.code.value == "AccessKeyNotFound" and "LTAInosuchkey" in unknown.value.message


def test_a_nonce_is_used_once_per_key_until_it_expires(engine):
    assert engine.use_nonce("LTAIa", "n-1", ttl_s=60) is True
    assert engine.use_nonce("LTAIa", "n-1", ttl_s=60) is False  # a replay
    assert engine.use_nonce("LTAIb", "n-1", ttl_s=60) is True  # another key's nonces are its own
    assert engine.use_nonce("LTAIa", "n-2", ttl_s=60) is True


def test_an_expired_nonce_is_pruned_and_may_be_used_again(engine):
    conn = engine.connection
    assert use_nonce(conn, "LTAIa", "old", 10, now=1000.0) is True
    assert use_nonce(conn, "LTAIa", "old", 10, now=1005.0) is False
    assert use_nonce(conn, "LTAIa", "other", 10, now=1011.0) is True  # this call prunes "old"
    assert [r["nonce"] for r in conn.execute("SELECT nonce FROM nonces WHERE key_id = 'LTAIa'")] == ["other"]
    assert use_nonce(conn, "LTAIa", "old", 10, now=1012.0) is True


RACER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from animated_previews.engine.store.db import open_store
    from animated_previews.engine.store.nonces import use_nonce
    store, start = Path(sys.argv[1]), float(sys.argv[2])
    conn = open_store(store)
    while time.time() < start:
        time.sleep(0.001)
    won = [n for n in range(40) if use_nonce(conn, "LTAIrace", f"nonce-{n}", 60)]
    print(json.dumps(won))
""")


def test_processes_racing_for_the_same_nonces_each_win_a_nonce_once(tmp_path):
    store = tmp_path / "store.db"
    Service(store=store).close()
    start = time.time() + 1.0
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(store), str(start)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outputs]
    wins = [n for out, _ in outputs for n in json.loads(out)]
    assert sorted(wins) == list(range(40))  # every nonce accepted exactly once across the four


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_store_is_readable_by_its_owner_only(tmp_path):
    store = tmp_path / "new" / "store.db"
    with Service(store=store) as engine:
        engine.create_access_key()
        assert _mode(store) == 0o600
        siblings = [p for p in (store.with_name("store.db-wal"), store.with_name("store.db-shm")) if p.exists()]
        assert siblings, "WAL mode keeps -wal and -shm files while the store is open"
        assert {p.name: _mode(p) for p in siblings} == {p.name: 0o600 for p in siblings}


def test_an_existing_store_keeps_its_mode(tmp_path):
    store = tmp_path / "shared.db"
    sqlite3.connect(store).close()
    store.chmod(0o640)  # shared with a group of worker accounts on purpose
    Service(store=store).close()
    assert _mode(store) == 0o640


def test_a_version_2_store_gains_the_key_tables_and_keeps_its_rows(tmp_path):
    store = tmp_path / "old.db"
    conn = sqlite3.connect(store)
    for _, script in MIGRATIONS[:2]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO config (key, value) VALUES ('base_url', 'https://cdn.test/')")
    conn.commit()
    conn.close()
    with Service(store=store) as engine:
        assert engine.settings() == {"base_url": "https://cdn.test/"}
        key = engine.create_access_key()
        assert engine.access_key_secret(key.id) == key.secret
        assert engine.use_nonce(key.id, "n", 60) is True


# -- engine keys ---------------------------------------------------------------------------------

@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "store" / "engine.db"))

    def invoke(*args: str, code: int = 0):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    return invoke


def test_keys_create_list_revoke_on_the_command_line(run, tmp_path):
    created = json.loads(run("keys", "create", "--json").stdout)
    assert set(created) == {"AccessKeyId", "AccessKeySecret"}
    assert KEY_ID.match(created["AccessKeyId"]) and SECRET.match(created["AccessKeySecret"])
    human = run("keys", "create").stdout
    other_id = re.search(r"AccessKeyId: (\S+)", human).group(1)
    assert SECRET.match(re.search(r"AccessKeySecret: (\S+)", human).group(1))

    listed = run("keys", "list", "--json").stdout
    assert created["AccessKeySecret"] not in listed
    assert [(k["AccessKeyId"], k["Status"]) for k in json.loads(listed)["AccessKeys"]] == [
        (created["AccessKeyId"], "Active"), (other_id, "Active")]
    table = run("keys", "list").stdout
    assert created["AccessKeyId"] in table and created["AccessKeySecret"] not in table

    revoked = json.loads(run("keys", "revoke", created["AccessKeyId"], "--json").stdout)
    assert revoked["AccessKeyId"] == created["AccessKeyId"] and revoked["Status"] == "Revoked"
    assert [k["Status"] for k in json.loads(run("keys", "list", "--json").stdout)["AccessKeys"]] == ["Revoked", "Active"]
    with Service(store=tmp_path / "store" / "engine.db") as engine:
        assert engine.access_key_secret(created["AccessKeyId"]) is None

    unknown = json.loads(run("keys", "revoke", "LTAInope", "--json", code=1).stdout)
    assert unknown["Code"] == "AccessKeyNotFound"
    assert "AccessKeyNotFound" in run("keys", "revoke", "LTAInope", code=1).stderr


def test_keys_take_store(run, tmp_path):
    other = tmp_path / "other.db"
    created = json.loads(run("keys", "create", "--json", "--store", other).stdout)
    assert json.loads(run("keys", "list", "--json").stdout)["AccessKeys"] == []
    assert [k["AccessKeyId"] for k in json.loads(run("keys", "list", "--json", "--store", other).stdout)["AccessKeys"]] == [
        created["AccessKeyId"]]
