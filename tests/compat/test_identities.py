"""Identities and personal access tokens through the stock databricks-sdk: SCIM users, groups (nested) and service
principals, `w.current_user.me`, `w.tokens`, `w.token_management`; and what a token may not do (401 for every bad
token, 403 for a non-admin changing identities)."""
import json
import os
import subprocess
import time
import uuid

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, PermissionDenied, ResourceAlreadyExists, InvalidParameterValue, Unauthenticated
from databricks.sdk.service import iam

from conftest import KILN, TOKEN

SCIM = "/api/2.0/preview/scim/v2"
PATCH_OP = [iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP]


def admin(kiln):
    return WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat")


def as_token(kiln, token):
    return WorkspaceClient(host=kiln.url, token=token, auth_type="pat")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


def issue(kiln, user_name, lifetime=None):
    """An admin hands `user_name` a token (Kiln's on-behalf-of accepts user_name besides application_id)."""
    body = {"user_name": user_name, "comment": "test"}
    if lifetime:
        body["lifetime_seconds"] = lifetime
    r = requests.post(kiln.url + "/api/2.0/token-management/on-behalf-of/tokens", json=body,
                      headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    return r.json()["token_value"]


def test_the_admin_token_is_the_bootstrap_admin(kiln):
    me = admin(kiln).current_user.me()
    assert me.user_name == "admin"
    assert "admins" in {g.display for g in me.groups}
    groups = list(admin(kiln).groups.list(filter='displayName eq "admins"'))
    assert len(groups) == 1 and me.id in {m.value for m in groups[0].members}


def test_users_round_trip(kiln):
    w = admin(kiln)
    name = unique("ada")
    created = w.users.create(user_name=name, display_name="Ada Lovelace",
                             emails=[iam.ComplexValue(value=name, primary=True)],
                             name=iam.Name(given_name="Ada", family_name="Lovelace"))
    assert created.id and created.user_name == name and created.active
    got = w.users.get(created.id)
    assert got.display_name == "Ada Lovelace" and got.emails[0].value == name and got.name.family_name == "Lovelace"
    # Filters as the SDK documents them; user names compare case-insensitively.
    assert [u.id for u in w.users.list(filter=f'userName eq "{name.upper()}"')] == [created.id]
    assert created.id in [u.id for u in w.users.list(filter='displayName co "lovelace" and active eq true')]
    assert created.id not in [u.id for u in w.users.list(filter='displayName sw "zzz"')]
    # Only the attributes asked for come back (id always).
    slim = list(w.users.list(filter=f'userName eq "{name}"', attributes="userName"))[0]
    assert slim.user_name == name and slim.display_name is None and slim.id == created.id

    w.users.patch(created.id, schemas=PATCH_OP, operations=[
        iam.Patch(op=iam.PatchOp.REPLACE, path="displayName", value="Countess of Lovelace"),
        iam.Patch(op=iam.PatchOp.ADD, path="entitlements", value=[{"value": "allow-cluster-create"}]),
    ])
    got = w.users.get(created.id)
    assert got.display_name == "Countess of Lovelace" and [e.value for e in got.entitlements] == ["allow-cluster-create"]
    w.users.update(created.id, user_name=name, display_name="Ada", active=True)
    got = w.users.get(created.id)
    assert got.display_name == "Ada" and not got.entitlements and not got.emails

    with pytest.raises(ResourceAlreadyExists):
        w.users.create(user_name=name.upper())
    w.users.delete(created.id)
    with pytest.raises(NotFound):
        w.users.get(created.id)


def test_lists_page_to_the_end_and_stop(kiln):
    w = admin(kiln)
    prefix = uuid.uuid4().hex[:6]
    ids = {w.users.create(user_name=f"{prefix}-{i}@example.com").id for i in range(7)}
    # The SDK pages itself with startIndex/count until it gets an empty Resources page.
    assert {u.id for u in w.users.list(filter=f'userName sw "{prefix}"', count=3)} == ids
    r = requests.get(kiln.url + SCIM + "/Users", params={"filter": f'userName sw "{prefix}"', "startIndex": 6, "count": 3},
                     headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert r["totalResults"] == 7 and r["startIndex"] == 6 and r["itemsPerPage"] == 2 and len(r["Resources"]) == 2
    r = requests.get(kiln.url + SCIM + "/Users", params={"filter": f'userName sw "{prefix}"', "startIndex": 8},
                     headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert r["Resources"] == [] and r["totalResults"] == 7
    names = [u.user_name for u in w.users.list(filter=f'userName sw "{prefix}"', sort_by="userName", sort_order=iam.ListSortOrder.DESCENDING)]
    assert names == sorted(names, reverse=True)
    for user_id in ids:
        w.users.delete(user_id)


def test_groups_nest_and_members_move_with_patch(kiln):
    w = admin(kiln)
    ada = w.users.create(user_name=unique("ada"))
    bob = w.users.create(user_name=unique("bob"))
    data = w.groups.create(display_name=f"data-{uuid.uuid4().hex[:6]}", members=[iam.ComplexValue(value=ada.id)])
    eng = w.groups.create(display_name=f"eng-{uuid.uuid4().hex[:6]}", members=[iam.ComplexValue(value=data.id)])
    assert {g.display for g in w.users.get(ada.id).groups} == {data.display_name}
    w.groups.patch(data.id, schemas=PATCH_OP, operations=[iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": bob.id}])])
    assert {m.value for m in w.groups.get(data.id).members} == {ada.id, bob.id}
    w.groups.patch(data.id, schemas=PATCH_OP, operations=[iam.Patch(op=iam.PatchOp.REMOVE, path=f'members[value eq "{ada.id}"]')])
    assert {m.value for m in w.groups.get(data.id).members} == {bob.id}
    # A group inside itself, directly or through another, is refused and changes nothing.
    with pytest.raises(InvalidParameterValue):
        w.groups.patch(data.id, schemas=PATCH_OP, operations=[iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": eng.id}])])
    assert {m.value for m in w.groups.get(data.id).members} == {bob.id}
    with pytest.raises(InvalidParameterValue):
        w.groups.patch(data.id, schemas=PATCH_OP, operations=[iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": "42"}])])
    # Nested membership reaches the user: bob is in data, data is in eng.
    token = issue(kiln, w.users.get(bob.id).user_name)
    me = as_token(kiln, token).current_user.me()
    assert me.id == bob.id
    w.groups.delete(eng.id)
    w.groups.delete(data.id)
    assert not w.users.get(bob.id).groups
    for u in (ada, bob):
        w.users.delete(u.id)


def test_service_principals_and_their_tokens(kiln):
    w = admin(kiln)
    sp = w.service_principals.create(display_name="etl bot")
    assert sp.application_id and sp.active
    assert [s.id for s in w.service_principals.list(filter=f'applicationId eq "{sp.application_id}"')] == [sp.id]
    obo = w.token_management.create_obo_token(application_id=sp.application_id, lifetime_seconds=600, comment="etl")
    bot = as_token(kiln, obo.token_value)
    assert bot.current_user.me().id == sp.id
    infos = [t for t in w.token_management.list() if t.token_id == obo.token_info.token_id]
    assert len(infos) == 1 and infos[0].owner_id == int(sp.id) and infos[0].created_by_username == "admin"
    # Disabling the principal revokes its tokens (the SDK drops a `value` of False: Databricks documents the list form).
    w.service_principals.patch(sp.id, schemas=PATCH_OP, operations=[iam.Patch(op=iam.PatchOp.REPLACE, path="active", value=[{"value": "false"}])])
    assert w.service_principals.get(sp.id).active is False
    with pytest.raises(Unauthenticated):
        bot.current_user.me()
    w.service_principals.delete(sp.id)


def test_tokens_a_user_makes_and_the_ones_that_fail(kiln):
    w = admin(kiln)
    name = unique("carol")
    user = w.users.create(user_name=name)
    carol = as_token(kiln, issue(kiln, name))
    made = carol.tokens.create(comment="laptop", lifetime_seconds=3600)
    assert made.token_value.startswith("dapi") and len(made.token_value) == 68
    assert made.token_info.expiry_time > made.token_info.creation_time
    laptop = as_token(kiln, made.token_value)
    assert laptop.current_user.me().user_name == name
    # The list shows ids and comments, never values.
    listed = list(carol.tokens.list())
    assert {t.comment for t in listed} == {"laptop", "test"}
    raw = requests.get(kiln.url + "/api/2.0/token/list", headers={"Authorization": f"Bearer {made.token_value}"}).text
    assert made.token_value not in raw and made.token_value[4:] not in raw
    # Revoked: the next call is 401.
    carol.tokens.delete(made.token_info.token_id)
    with pytest.raises(Unauthenticated):
        laptop.current_user.me()
    # Expired.
    short = as_token(kiln, carol.tokens.create(lifetime_seconds=1).token_value)
    short.current_user.me()
    time.sleep(1.6)
    with pytest.raises(Unauthenticated):
        short.current_user.me()
    # Malformed and unknown tokens.
    for bad in ["dapi", "dapi" + "0" * 64, "not-a-token", "Bearer", "x" * 5000]:
        r = requests.get(kiln.url + SCIM + "/Me", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED", (bad, r.text)
    # A user's own tokens are theirs: another user's token id is not found.
    admin_token = w.tokens.create(comment="admin's")
    with pytest.raises(NotFound):
        carol.tokens.delete(admin_token.token_info.token_id)
    w.tokens.delete(admin_token.token_info.token_id)
    # Deleting the user revokes what is left.
    w.users.delete(user.id)
    with pytest.raises(Unauthenticated):
        carol.current_user.me()
    # No token value reaches the server's log.
    log = open(os.path.join(kiln.home, "server.log"), encoding="utf-8", errors="replace").read()
    assert made.token_value not in log and admin_token.token_value not in log


def test_only_admins_change_identities(kiln):
    w = admin(kiln)
    name = unique("dave")
    user = w.users.create(user_name=name)
    dave = as_token(kiln, issue(kiln, name))
    # Reading is for everyone signed in.
    assert dave.users.get(user.id).user_name == name
    assert any(g.display_name == "admins" for g in dave.groups.list())
    with pytest.raises(PermissionDenied):
        dave.users.create(user_name=unique("eve"))
    with pytest.raises(PermissionDenied):
        dave.groups.patch(next(iter(dave.groups.list(filter='displayName eq "admins"'))).id, schemas=PATCH_OP,
                          operations=[iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": user.id}])])
    with pytest.raises(PermissionDenied):
        list(dave.token_management.list())
    assert not dave.current_user.me().groups
    # Once in admins (a nested group counts), dave may.
    ops = w.groups.create(display_name=f"ops-{uuid.uuid4().hex[:6]}", members=[iam.ComplexValue(value=user.id)])
    admins = next(iter(w.groups.list(filter='displayName eq "admins"')))
    w.groups.patch(admins.id, schemas=PATCH_OP, operations=[iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": ops.id}])])
    eve = dave.users.create(user_name=unique("eve"))
    # The bootstrap admin stays: not deleted, not disabled, not taken out of admins.
    me = w.current_user.me()
    with pytest.raises(InvalidParameterValue):
        w.users.delete(me.id)
    with pytest.raises(InvalidParameterValue):
        w.groups.patch(admins.id, schemas=PATCH_OP, operations=[iam.Patch(op=iam.PatchOp.REMOVE, path=f'members[value eq "{me.id}"]')])
    w.groups.patch(admins.id, schemas=PATCH_OP, operations=[iam.Patch(op=iam.PatchOp.REMOVE, path=f'members[value eq "{ops.id}"]')])
    with pytest.raises(PermissionDenied):
        dave.users.delete(eve.id)
    for u in (eve, user):
        w.users.delete(u.id)
    w.groups.delete(ops.id)


def test_bad_scim_input_is_a_clear_400(kiln):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for params in [{"filter": 'userName eq "unterminated'}, {"filter": "userName like \"a\""}, {"startIndex": 0}, {"sortOrder": "sideways"}]:
        r = requests.get(kiln.url + SCIM + "/Users", params=params, headers=headers)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (params, r.text)
    for body in [{}, {"userName": ""}, {"userName": 5.5, "emails": "x"}, {"userName": "x@y.z", "active": "maybe"},
                 {"userName": "x@y.z", "groups": [{"value": "404"}]}]:
        r = requests.post(kiln.url + SCIM + "/Users", json=body, headers=headers)
        assert r.status_code == 400, (body, r.text)
    assert not list(admin(kiln).users.list(filter='userName eq "x@y.z"'))
    r = requests.patch(kiln.url + SCIM + "/Users/1", json={"Operations": []}, headers=headers)
    assert r.status_code == 404
    r = requests.post(kiln.url + "/api/2.0/token/create", json={"lifetime_seconds": -5}, headers=headers)
    assert r.status_code == 400


def test_cli_manages_users_groups_and_tokens(kiln):
    env = dict(os.environ, KILN_URL=kiln.url, KILN_TOKEN=TOKEN)

    def kiln_cli(*args):
        out = subprocess.run([KILN, *args], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    name = unique("frank")
    created = json.loads(kiln_cli("users", "create", name, "--display-name", "Frank", "--json"))
    assert created["userName"] == name
    table = kiln_cli("users", "list", "--filter", f'userName eq "{name}"')
    assert name in table and "Frank" in table and "ID" in table.splitlines()[0]
    group = json.loads(kiln_cli("groups", "create", f"g-{uuid.uuid4().hex[:6]}", "--json"))
    kiln_cli("groups", "add-member", group["displayName"], name)
    assert [m["value"] for m in json.loads(kiln_cli("groups", "get", group["displayName"], "--json"))["members"]] == [created["id"]]
    token = json.loads(kiln_cli("tokens", "create", "--for", name, "--lifetime", "600", "--json"))["token_value"]
    assert as_token(kiln, token).current_user.me().user_name == name
    kiln_cli("users", "disable", name)
    with pytest.raises(Unauthenticated):
        as_token(kiln, token).current_user.me()
    kiln_cli("groups", "remove-member", group["displayName"], name)
    kiln_cli("groups", "delete", group["displayName"])
    kiln_cli("users", "delete", name)
    out = subprocess.run([KILN, "users", "get", name], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "no user" in out.stderr.lower()
    sp = json.loads(kiln_cli("service-principals", "create", "nightly", "--json"))
    assert sp["applicationId"] in kiln_cli("service-principals", "list")
    kiln_cli("service-principals", "delete", sp["applicationId"])


def test_a_disabled_user_loses_their_web_session(kiln):
    """A web session is checked against the identity store every few seconds: disabling the user ends it."""
    import re
    w = admin(kiln)
    name = unique("gil")
    user = w.users.create(user_name=name)
    web = requests.Session()
    csrf = re.search(r'name="csrf" value="([^"]+)"', web.get(kiln.url + "/ui/login").text).group(1)
    r = web.post(kiln.url + "/ui/login", data={"csrf": csrf, "token": issue(kiln, name), "next": "/ui/experiments"}, allow_redirects=False)
    assert r.status_code == 303
    assert web.get(kiln.url + "/ui/experiments", allow_redirects=False).status_code == 200
    w.users.patch(user.id, schemas=PATCH_OP, operations=[iam.Patch(op=iam.PatchOp.REPLACE, path="active", value=[{"value": "false"}])])
    time.sleep(5.5)
    r = web.get(kiln.url + "/ui/experiments", allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"].startswith("/ui/login")
    w.users.delete(user.id)
