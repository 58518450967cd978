"""Databricks' registry review workflow (transition requests and comments) through the official databricks-sdk
client, and the version history Kiln records for it."""

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceAlreadyExists
from databricks.sdk.service.ml import ActivityType
from mlflow import MlflowClient

from conftest import TOKEN


@pytest.fixture()
def version(model_run):
    run_id, name = model_run
    client = MlflowClient()
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.transition_model_version_stage(name, "1", "Production")
    return name


@pytest.fixture()
def workspace(kiln):
    return WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat")


def test_request_approve_with_archiving(workspace, version, kiln):
    name = version
    registry = workspace.model_registry
    created = registry.create_transition_request(name=name, version="2", stage="Production", comment="ready to ship")
    assert created.request.to_stage == "Production" and created.request.comment == "ready to ship"
    with pytest.raises(ResourceAlreadyExists):
        registry.create_transition_request(name=name, version="2", stage="Production")
    open_requests = list(registry.list_transition_requests(name=name, version="2"))
    assert [r.to_stage for r in open_requests] == ["Production"]

    approved = registry.approve_transition_request(name=name, version="2", stage="Production",
                                                   archive_existing_versions=True, comment="ship it")
    assert approved.activity.activity_type == ActivityType.APPROVED_REQUEST
    assert approved.activity.from_stage == "None" and approved.activity.to_stage == "Production"
    client = MlflowClient()
    assert client.get_model_version(name, "2").current_stage == "Production"
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert list(registry.list_transition_requests(name=name, version="2")) == []

    history = requests.get(f"{kiln.url}/api/2.0/kiln/registry/activities", params={"name": name, "version": "2"},
                           headers={"Authorization": f"Bearer {TOKEN}"}).json()["activities"]
    assert [a["activity_type"] for a in history] == ["REQUESTED_TRANSITION", "APPROVED_REQUEST"]
    assert history[1]["user_id"] == "admin" and history[1]["comment"] == "ship it"
    archived = requests.get(f"{kiln.url}/api/2.0/kiln/registry/activities", params={"name": name, "version": "1"},
                            headers={"Authorization": f"Bearer {TOKEN}"}).json()["activities"]
    assert [(a["activity_type"], a.get("from_stage"), a.get("to_stage")) for a in archived] == [
        ("APPLIED_TRANSITION", "None", "Production"), ("SYSTEM_TRANSITION", "Production", "Archived")]


def test_reject_and_cancel_leave_the_stage(workspace, version):
    name = version
    registry = workspace.model_registry
    registry.create_transition_request(name=name, version="2", stage="Staging")
    rejected = registry.reject_transition_request(name=name, version="2", stage="Staging", comment="needs work")
    assert rejected.activity.activity_type == ActivityType.REJECTED_REQUEST
    assert MlflowClient().get_model_version(name, "2").current_stage == "None"
    with pytest.raises(NotFound):
        registry.approve_transition_request(name=name, version="2", stage="Staging", archive_existing_versions=False)

    registry.create_transition_request(name=name, version="2", stage="Archived")
    registry.delete_transition_request(name=name, version="2", stage="Archived", creator="admin", comment="never mind")
    assert list(registry.list_transition_requests(name=name, version="2")) == []
    assert MlflowClient().get_model_version(name, "2").current_stage == "None"


def test_comments(workspace, version, kiln):
    name = version
    registry = workspace.model_registry
    created = registry.create_comment(name=name, version="1", comment="looks good")
    assert created.comment.comment == "looks good" and created.comment.id
    updated = registry.update_comment(id=created.comment.id, comment="looks great")
    assert updated.comment.comment == "looks great"
    history = requests.get(f"{kiln.url}/api/2.0/kiln/registry/activities", params={"name": name, "version": "1"},
                           headers={"Authorization": f"Bearer {TOKEN}"}).json()["activities"]
    assert ("NEW_COMMENT", "looks great") in [(a["activity_type"], a.get("comment")) for a in history]
    registry.delete_comment(id=created.comment.id)
    with pytest.raises(NotFound):
        registry.update_comment(id=created.comment.id, comment="gone")


def test_alias_history(client_env, version, kiln):
    name = version
    client = MlflowClient()
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "champion", "2")
    client.delete_registered_model_alias(name, "champion")
    changes = requests.get(f"{kiln.url}/api/2.0/kiln/registry/alias-history", params={"name": name},
                           headers={"Authorization": f"Bearer {TOKEN}"}).json()["changes"]
    assert [(c["alias"], c.get("from_version"), c.get("to_version")) for c in changes] == [
        ("champion", None, "1"), ("champion", "1", "2"), ("champion", "2", None)]
    assert all(c["user_id"] == "admin" for c in changes)
